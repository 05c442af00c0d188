"""A crash-safe cache of judge replies, one JSONL line per answered request, and a cost tally.

Why a per-request cache rather than a :class:`selfrag.resume.Journal` of chunks: judge requests
are paid one by one, so each answer is kept the moment it arrives. The key is a hash of
everything that decides the answer (model, endpoint, prompt, temperature, max_tokens), so a
rerun — after a crash, a kill -9, or with more items — never pays twice for the same request,
and the same cache may serve several runs. Lines are appended and fsynced under a lock (the
labellers write from several threads); a line torn by a crash is ignored on reload, so that
request alone is made again.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

from selfrag.lm.openai_completions import Completion


def request_key(model: str, api: str, prompt: str, temperature: float | None,
                max_tokens: int) -> str:
    """The cache key of one judge request."""
    text = json.dumps([model, api, prompt, temperature, max_tokens], ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class ReplyCache:
    """Judge replies by request key, backed by an append-only JSONL file.

    Each line is ``{"key", "reply", "prompt_tokens", "completion_tokens"}``; prompts are not
    stored (the key identifies them), and neither is anything about the API key.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._lock = threading.Lock()
        self._entries: dict[str, dict] = {}
        self.torn_lines = 0
        if self.path.is_file():
            for line in self.path.read_text(encoding="utf-8").splitlines():
                try:
                    entry = json.loads(line)
                    self._entries[entry["key"]] = entry
                except (json.JSONDecodeError, KeyError, TypeError):
                    self.torn_lines += 1  # a crash mid-write: that request is made again

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: str) -> bool:
        return key in self._entries

    def get(self, key: str) -> dict | None:
        return self._entries.get(key)

    def put(self, key: str, completion: Completion) -> None:
        """Keep one answer: appended, flushed and fsynced before this returns."""
        entry = {"key": key, "reply": completion.text, "prompt_tokens": completion.prompt_tokens,
                 "completion_tokens": completion.completion_tokens}
        text = json.dumps(entry, ensure_ascii=False) + "\n"
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._end_with_newline()
            with self.path.open("a", encoding="utf-8") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            self._entries[key] = entry

    def _end_with_newline(self) -> None:
        """Cut a torn last line so the next entry starts on a line of its own."""
        if not self.path.is_file():
            return
        with self.path.open("rb+") as handle:
            size = handle.seek(0, os.SEEK_END)
            if size == 0:
                return
            handle.seek(size - 1)
            if handle.read(1) == b"\n":
                return
            data = self.path.read_bytes()
            handle.truncate(data.rfind(b"\n") + 1)


@dataclass
class Tally:
    """Requests, retries and tokens of this run (thread-safe), and the cost they imply.

    Prices are in dollars per 1,000 tokens; ``None`` when not given (cost unknown).
    """

    price_per_1k_input: float | None = None
    price_per_1k_output: float | None = None
    requests: int = 0
    retries: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, completion: Completion) -> None:
        with self._lock:
            self.requests += 1 + completion.retries
            self.retries += completion.retries
            self.prompt_tokens += completion.prompt_tokens
            self.completion_tokens += completion.completion_tokens

    @property
    def cost(self) -> float | None:
        if self.price_per_1k_input is None and self.price_per_1k_output is None:
            return None
        return (self.prompt_tokens * (self.price_per_1k_input or 0.0)
                + self.completion_tokens * (self.price_per_1k_output or 0.0)) / 1000

    def as_dict(self) -> dict:
        return {"requests": self.requests, "retries": self.retries,
                "prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
                "cost_usd": None if self.cost is None else round(self.cost, 6)}
