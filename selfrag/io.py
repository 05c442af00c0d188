"""Reading JSON/JSONL inputs with located errors, and atomic writes."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from selfrag.errors import InputError


def read_records(path: str | os.PathLike) -> list[tuple[int, dict]]:
    """Read a ``.json`` list or a JSONL file into ``(line_number, record)`` pairs.

    For a ``.json`` file the "line" is the 1-based position of the record in the list. Blank JSONL
    lines are skipped. Every record must be a JSON object.

    Raises:
        InputError: missing file, malformed JSON, or a record that is not an object.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "file not found")
    if path.suffix == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise InputError(path, f"malformed JSON: {err.msg}", line=err.lineno) from None
        if isinstance(data, dict) and isinstance(data.get("data"), list):
            data = data["data"]  # ALCE-style {"data": [...]} files
        if not isinstance(data, list):
            raise InputError(path, "a .json input must hold a list of records")
        records = list(enumerate(data, start=1))
    else:
        records = list(_jsonl(path))
    for number, record in records:
        if not isinstance(record, dict):
            raise InputError(path, "each record must be a JSON object", line=number)
    return records


def _jsonl(path: Path) -> Iterator[tuple[int, object]]:
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                yield number, json.loads(line)
            except json.JSONDecodeError as err:
                raise InputError(path, f"malformed JSON: {err.msg} (column {err.colno})",
                                 line=number) from None


@contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w"):
    """Open a temporary file beside ``path``; on success it is synced and renamed over ``path``,
    on failure removed: ``path`` is never half-written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes it owner-only; a written file gets the usual mode
    try:
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_atomic(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename: never half-written."""
    with atomic_open(path) as handle:
        handle.write(text)


def write_json_atomic(path: str | os.PathLike, obj, indent: int | None = None) -> None:
    write_atomic(path, json.dumps(obj, ensure_ascii=False, indent=indent) + "\n")


def write_jsonl_atomic(path: str | os.PathLike, records: Iterable[dict]) -> None:
    write_atomic(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
