"""The batcher: concurrent jobs share generate calls; a cancelled job is skipped, not fatal."""

from __future__ import annotations

import threading

from selfrag.lm.base import GenerationRequest
from selfrag.lm.scripted import ScriptedLM, Step
from selfrag.serve.batcher import Batcher


def test_cancelled_job_is_skipped_and_the_worker_keeps_serving():
    entered, release = threading.Event(), threading.Event()

    def script(prompt):
        if prompt == "slow":
            entered.set()
            release.wait(10)
        return [Step({prompt.upper(): 1.0})]

    lm = ScriptedLM(script)
    batcher = Batcher(lm, window=0.0)
    request = GenerationRequest(max_new_tokens=2)
    slow = batcher.submit(["slow"], request)
    assert entered.wait(10)
    gone = batcher.submit(["gone"], request)  # queued behind the running batch
    assert gone.cancel()  # its client went away
    release.set()
    assert slow.result(10)[0].text == "SLOW"
    assert batcher.submit(["next"], request).result(10)[0].text == "NEXT"
    batcher.close()
    assert "gone" not in lm.prompts_seen


def test_jobs_waiting_together_share_one_generate_call():
    lm = ScriptedLM(lambda prompt: [Step({prompt: 1.0})])
    batcher = Batcher(lm, window=0.2)
    request = GenerationRequest(max_new_tokens=1)
    futures = [batcher.submit([f"p{i}"], request) for i in range(5)]
    assert [f.result(10)[0].text for f in futures] == [f"p{i}" for i in range(5)]
    other = batcher.submit(["q"], GenerationRequest(max_new_tokens=1, temperature=0.5))
    other.result(10)
    batcher.close()
    assert lm.calls[0] == [f"p{i}" for i in range(5)]
    assert lm.calls[1] == ["q"]  # other settings: a batch of its own
