"""Crash-safe progress journals: long runs resume without repeating finished work.

A journal is a JSONL file next to the final output. Its first line is a header holding a
fingerprint of the run's settings; each further line holds one finished unit of work, written
with a single ``write`` and an ``fsync``. A line torn by a crash is ignored on reload, so its
unit is simply done again. A journal written under other settings is refused rather than mixed in.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from selfrag.errors import SelfRagError


class Journal:
    def __init__(self, path: str | os.PathLike, fingerprint: dict):
        self.path = Path(path)
        self.fingerprint = json.loads(json.dumps(fingerprint, sort_keys=True, default=str))

    def load(self) -> list[dict]:
        """Units finished by an earlier run with the same settings (empty if none)."""
        if not self.path.is_file():
            return []
        lines = self.path.read_text(encoding="utf-8").splitlines()
        try:
            header = json.loads(lines[0]) if lines else None
        except json.JSONDecodeError:
            header = None
        if header is None:
            return []
        if header.get("fingerprint") != self.fingerprint:
            raise SelfRagError(
                f"{self.path} holds progress of a run with other settings; delete it to start "
                "over, or rerun with the settings it was written with"
            )
        units = []
        for line in lines[1:]:
            try:
                units.append(json.loads(line))
            except json.JSONDecodeError:
                break  # torn by a crash: this and anything after is redone
        return units

    def append(self, unit: dict) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fresh = not self.path.is_file() or self.path.stat().st_size == 0
        text = json.dumps(unit, ensure_ascii=False) + "\n"
        if fresh:
            text = json.dumps({"fingerprint": self.fingerprint}) + "\n" + text
        else:
            self._drop_torn_tail()
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())

    def _drop_torn_tail(self) -> None:
        data = self.path.read_bytes()
        if data and not data.endswith(b"\n"):
            self.path.write_bytes(data[: data.rfind(b"\n") + 1])

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)
