"""Crash-safe progress journals: long runs resume without repeating finished work.

:func:`run_in_chunks` is the one chunk -> journal -> assemble loop of every resumable run.

A journal is a JSONL file next to the final output. Its first line is a header holding a
fingerprint of what determines the run's results: every flag that changes outputs, the content
hash of each input file (:func:`input_identity`) and the model's identity
(:func:`model_identity`). Each further line holds one finished unit of work, written with a single
``write`` and an ``fsync``. A line torn by a crash is ignored on reload, so its unit is simply done
again. A journal written for another input, model or settings is refused, naming what differs,
rather than mixed in.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from tqdm.auto import tqdm

from selfrag.errors import SelfRagError
from selfrag.io import file_digest

Item = TypeVar("Item")
Result = TypeVar("Result")


def input_identity(path: str | os.PathLike | None) -> dict | None:
    """An input file's identity: its content hash (an edited file is another input)."""
    if not path or not Path(path).is_file():
        return None
    return {"path": str(path), "sha256": file_digest(path)}


def model_identity(name_or_path: str | None) -> dict | str | None:
    """A model's identity: a hub id (or offline alias) as given; a local folder or file by the
    size and modification time of each of its files, so retraining into the same folder is
    another model (hashing tens of GB of weights at every start would cost minutes)."""
    if not name_or_path:
        return name_or_path
    from selfrag.offline_models import BASE_MODEL, SELFRAG_MODEL, TINY_RANDOM_MODEL, resolve_model

    if name_or_path in (BASE_MODEL, SELFRAG_MODEL, TINY_RANDOM_MODEL):
        name_or_path = resolve_model(name_or_path)  # built folders (their names carry digests)
    path = Path(name_or_path)
    if not path.exists():
        return name_or_path
    files = [path] if path.is_file() else sorted(
        p for p in path.rglob("*") if p.is_file()
        and not any(part.startswith(".") for part in p.relative_to(path).parts))
    return {"path": str(path.resolve()), "files": {
        (p.name if p == path else str(p.relative_to(path))): [p.stat().st_size, p.stat().st_mtime_ns]
        for p in files}}


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
            old = header.get("fingerprint") or {}
            changed = sorted(k for k in set(old) | set(self.fingerprint)
                             if old.get(k) != self.fingerprint.get(k))
            raise SelfRagError(
                f"{self.path} holds progress of a run with other settings or inputs (different: "
                f"{', '.join(_describe(k) for k in changed)}); delete it to start over, or "
                "rerun with the inputs and settings it was written with"
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


def run_in_chunks(items: Sequence[Item], work: Callable[[Sequence[Item]], list],
                  finish: Callable[[list], Result], *, chunk_size: int,
                  journal_path: str | os.PathLike, fingerprint: dict) -> Result:
    """Run ``work`` over ``items`` in chunks of ``chunk_size``, journaling each finished chunk,
    then ``finish`` with every item's output, in order; the journal goes once ``finish`` returns.

    ``work`` maps a chunk to one JSON-serialisable output per item; ``finish`` assembles and
    writes the run's outputs and returns what the run returns. A rerun with the same
    ``fingerprint`` (see :class:`Journal`) does only the chunks its journal lacks. Chunk
    boundaries are fixed by item index, so a resumed run batches exactly as an uninterrupted one
    would and writes an identical file.
    """
    journal = Journal(journal_path, fingerprint)
    # a unit without "outputs" (written in another layout) is simply done again
    done = {unit["chunk"]: unit["outputs"] for unit in journal.load() if "outputs" in unit}
    starts = range(0, len(items), chunk_size)
    with tqdm(total=len(items), desc="queries", unit="q") as bar:
        for number, start in enumerate(starts):
            chunk = items[start:start + chunk_size]
            if number not in done:
                done[number] = work(chunk)
                journal.append({"chunk": number, "outputs": done[number]})
            bar.update(len(chunk))
    result = finish([output for number in range(len(starts)) for output in done[number]])
    journal.remove()
    return result


def _describe(key: str) -> str:
    if key == "inputs":
        return "input file content"
    if key == "model":
        return "model (other weights or files)"
    return f"--{key}" if key.isidentifier() else key
