"""Reading JSON/JSONL inputs with located errors, and atomic writes."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from selfrag.errors import InputError, SelfRagError


def read_records(path: str | os.PathLike, allow_empty: bool = True) -> list[tuple[int, dict]]:
    """Read a ``.json`` list or a JSONL file into ``(line_number, record)`` pairs.

    For a ``.json`` file the "line" is the 1-based position of the record in the list. Blank JSONL
    lines are skipped. Every record must be a JSON object.

    Args:
        allow_empty: accept a file without records (e.g. an earlier step's output, which may
            keep nothing). Every entry point reads its inputs with ``False``: an empty input is
            an error, so that no run writes an empty result and exits 0
            (``tests/integration/test_bad_input_corpus.py`` checks each one).

    Raises:
        InputError: missing file, no records, bytes that are not UTF-8, malformed JSON, a JSON
            array where JSONL was expected (or the reverse), or a record that is not an object.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "file not found")
    if path.suffix == ".json":
        text = read_text(path)
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            if err.msg == "Extra data":
                raise InputError(path, f"{JSON_EXPECTED}; this holds more than one JSON value: if "
                                 "it has one JSON object per line (JSONL), rename it to .jsonl",
                                 line=err.lineno) from None
            raise InputError(path, f"malformed JSON: {err.msg}", line=err.lineno) from None
        if isinstance(data, dict) and isinstance(data.get("data"), list):
            data = data["data"]  # ALCE-style {"data": [...]} files
        if not isinstance(data, list):
            raise InputError(path, JSON_EXPECTED)
        records = list(enumerate(data, start=1))
    else:
        records = list(_jsonl(path))
    for number, record in records:
        if not isinstance(record, dict):
            raise InputError(path, "each record must be a JSON object, not "
                             f"{_json_kind(record)}", line=number)
    if not records and not allow_empty:
        raise InputError(path, "no records (the input is empty)")
    return records


#: What a ``.json`` input holds, and what a JSONL one holds.
JSON_EXPECTED = 'a .json input must hold one JSON list of records (or {"data": [...]})'
JSONL_EXPECTED = "a JSONL input holds one JSON object per line"


def _json_kind(value) -> str:
    names = {list: "a list", str: "a string", bool: "a boolean", int: "a number",
             float: "a number", type(None): "null"}
    return names.get(type(value), type(value).__name__)


def _jsonl(path: Path) -> Iterator[tuple[int, object]]:
    first = True
    for number, line in read_lines(path):
        if not line.strip():
            continue
        array = first and line.lstrip().startswith("[")
        first = False
        try:
            value = json.loads(line)
        except json.JSONDecodeError as err:
            if array:
                raise InputError(path, _ARRAY_IN_JSONL, line=number) from None
            raise InputError(path, f"malformed JSON: {err.msg} (column {err.colno}); "
                             f"{JSONL_EXPECTED}", line=number) from None
        if array and isinstance(value, list):
            raise InputError(path, _ARRAY_IN_JSONL, line=number)
        yield number, value


_ARRAY_IN_JSONL = (f"found a JSON array, but {JSONL_EXPECTED}: write one record per line, or if "
                   "the file is one JSON list, rename it to .json")


def _not_utf8(path: Path, raw: bytes, error: UnicodeDecodeError, line: int, column: int):
    return InputError(path, f"not UTF-8 text (byte 0x{raw[error.start]:02x} at column {column}); "
                      "re-encode the file as UTF-8", line=line)


def read_lines(path: str | os.PathLike) -> Iterator[tuple[int, str]]:
    """The lines of a UTF-8 text file as ``(line_number, text)``, newline kept; a byte that is not
    UTF-8 raises an :class:`InputError` naming the file and the line (a leading BOM is dropped)."""
    path = Path(path)
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                yield number, raw.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError as err:
                raise _not_utf8(path, raw, err, number, err.start + 1) from None


def read_text(path: str | os.PathLike) -> str:
    """A whole UTF-8 text file; bytes that are not UTF-8 raise an :class:`InputError` naming the
    file and the line (a leading BOM is dropped)."""
    path = Path(path)
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line_start = raw.rfind(b"\n", 0, err.start) + 1
        raise _not_utf8(path, raw, err, raw.count(b"\n", 0, err.start) + 1,
                        err.start - line_start + 1) from None


@contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w"):
    """Open a temporary file beside ``path``; on success it is synced and renamed over ``path``,
    on failure removed: ``path`` is never half-written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    set_usual_mode(tmp)  # mkstemp makes it owner-only; a written file gets the usual mode
    try:
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def output_problem(path: str | os.PathLike, folder: bool = False) -> str | None:
    """Why ``path`` cannot be written as an output file (or, with ``folder``, an output folder),
    or ``None`` when it can: checked before a model loads, so the run does not fail at its end."""
    path = Path(path)
    if path.exists():
        if folder and not path.is_dir():
            return "is a file, not a folder"
        if not folder and path.is_dir():
            return "is a folder, not a file"
        home = path if folder else path.parent
    else:
        home = next(p for p in path.absolute().parents if p.exists())
        if not home.is_dir():
            return f"cannot be created: {home} is a file, not a folder"
    if not os.access(home, os.W_OK | os.X_OK):
        return f"cannot be written: no write permission in {home}"
    return None


def check_output(path: str | os.PathLike, flag: str, folder: bool = False) -> None:
    """Raise a :class:`SelfRagError` naming ``flag`` when :func:`output_problem` finds one."""
    problem = output_problem(path, folder)
    if problem:
        raise SelfRagError(f"{flag} {path}: {problem}")


def file_digest(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes (hex): what a resumed or skipped run checks its input against."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def set_usual_mode(path: str | os.PathLike) -> None:
    """Give ``path`` (and, for a folder, everything in it) the mode a plain ``open``/``mkdir``
    would: ``0o666``/``0o777`` less the umask. For files made by ``mkstemp``/``mkdtemp`` (owner
    only) or by libraries that write through them (``save_pretrained``'s safetensors)."""
    umask = os.umask(0)
    os.umask(umask)
    path = Path(path)
    paths = [path, *path.rglob("*")] if path.is_dir() else [path]
    for item in paths:
        if not item.is_symlink():
            os.chmod(item, (0o777 if item.is_dir() else 0o666) & ~umask)


def write_atomic(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename: never half-written."""
    with atomic_open(path) as handle:
        handle.write(text)


def write_json_atomic(path: str | os.PathLike, obj, indent: int | None = None) -> None:
    write_atomic(path, json.dumps(obj, ensure_ascii=False, indent=indent) + "\n")


def write_jsonl_atomic(path: str | os.PathLike, records: Iterable[dict]) -> None:
    write_atomic(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
