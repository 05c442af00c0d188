"""Dynamic batching: requests that arrive together share one ``generate`` call.

HTTP handlers submit prompts and wait on a future; one worker thread owns the model. When it
takes a job it also drains whatever else is queued (up to ``max_batch`` prompts, waiting at most
``window`` seconds for stragglers), groups the jobs by their generation settings, and runs each
group as one batch. While a batch is running, new requests queue up and form the next one, so
throughput grows with the number of concurrent clients instead of serialising them.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field

from selfrag.lm.base import Generation, GenerationRequest, LanguageModel

logger = logging.getLogger(__name__)


@dataclass
class _Job:
    prompts: list[str]
    request: GenerationRequest
    future: Future = field(default_factory=Future)


class Batcher:
    """Serialises access to ``lm`` and batches concurrent requests.

    Args:
        lm: any backend of :mod:`selfrag.lm`.
        max_batch: most prompts gathered into one round.
        window: seconds to wait for more requests after the first one of a round arrives.
    """

    def __init__(self, lm: LanguageModel, max_batch: int = 64, window: float = 0.01):
        self.lm, self.max_batch, self.window = lm, max_batch, window
        self.batches_run = 0
        self._queue: queue.Queue[_Job | None] = queue.Queue()
        self._thread = threading.Thread(target=self._work, name="selfrag-batcher", daemon=True)
        self._thread.start()

    def submit(self, prompts: Sequence[str], request: GenerationRequest) -> Future:
        """Queue ``prompts``; the future resolves to their generations, in order."""
        job = _Job(list(prompts), request)
        self._queue.put(job)
        return job.future

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=30)

    def _work(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            jobs, closing = self._gather(job)
            groups: dict[GenerationRequest, list[_Job]] = {}
            for item in jobs:
                # A request whose client went away may have cancelled its future: skip it. Once
                # running, a future can no longer be cancelled, so its result can always be set.
                if item.future.set_running_or_notify_cancel():
                    groups.setdefault(item.request, []).append(item)
            for request, group in groups.items():
                self._run(request, group)
            if closing:
                return

    def _gather(self, first: _Job) -> tuple[list[_Job], bool]:
        jobs, size = [first], len(first.prompts)
        deadline = time.monotonic() + self.window
        while size < self.max_batch:
            try:
                job = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if job is None:
                return jobs, True
            jobs.append(job)
            size += len(job.prompts)
        return jobs, False

    def _run(self, request: GenerationRequest, jobs: list[_Job]) -> None:
        prompts = [p for job in jobs for p in job.prompts]
        try:
            generations: list[Generation] = self.lm.generate(prompts, request)
        except Exception as err:  # handed to every waiting request, which answers 500
            logger.exception("generation failed for a batch of %d prompts", len(prompts))
            for job in jobs:
                job.future.set_exception(err)
            return
        self.batches_run += 1
        start = 0
        for job in jobs:
            job.future.set_result(generations[start:start + len(job.prompts)])
            start += len(job.prompts)
