"""Input items of the generator-data pipeline and the checked reading of intermediate files.

An input item is what the original's source converters (``data_creation/process_data/``) write:
``{"instruction", "output", "input": "", "id", "dataset_name"}`` plus, optionally, ``answers``
(gold answers for the gold-answer judge) and ``topic``. Everything the pipeline reads is checked
up front; a bad record is an :class:`~selfrag.errors.InputError` naming the file, line and field.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence

from selfrag.errors import InputError
from selfrag.io import read_records

REQUIRED_STRINGS = ("instruction", "output")


def require_string(path: str | os.PathLike, line: int, record: dict, field: str,
                   allow_empty: bool = False) -> str:
    """``record[field]`` as a string, or an InputError naming file, line and field."""
    value = record.get(field)
    if not isinstance(value, str):
        problem = "missing" if value is None else f"must be a string, got {type(value).__name__}"
        raise InputError(path, problem, line=line, field=field)
    if not allow_empty and not value.strip():
        raise InputError(path, "must not be empty", line=line, field=field)
    return value


def check_item(path: str | os.PathLike, line: int, record: dict) -> dict:
    """One input item, normalised: ``id`` a string, ``input`` a string, ``answers`` a list."""
    item = dict(record)
    for field in REQUIRED_STRINGS:
        require_string(path, line, record, field)
    if record.get("input") is not None:
        require_string(path, line, record, "input", allow_empty=True)
    item["input"] = record.get("input") or ""
    if "id" not in record or record["id"] in (None, ""):
        raise InputError(path, "missing", line=line, field="id")
    item["id"] = str(record["id"])
    item["dataset_name"] = str(record.get("dataset_name") or item["id"].rsplit("_", 1)[0])
    answers = record.get("answers")
    if answers is not None:
        if isinstance(answers, str):
            answers = [answers]
        if not isinstance(answers, list) or not all(isinstance(a, str) for a in answers):
            raise InputError(path, "must be a list of strings", line=line, field="answers")
        item["answers"] = answers
    return item


def load_items(path: str | os.PathLike) -> list[dict]:
    """Read and check the input items of a ``.json`` list or JSONL file (ids must be unique)."""
    items, seen = [], {}
    for line, record in read_records(path, allow_empty=False):
        item = check_item(path, line, record)
        if item["id"] in seen:
            raise InputError(path, f"duplicate id {item['id']!r} (first at line {seen[item['id']]})",
                             line=line, field="id")
        seen[item["id"]] = line
        items.append(item)
    return items


def load_checked(paths: str | os.PathLike | Sequence[str | os.PathLike],
                 fields: Iterable[str], allow_empty: bool = True) -> list[dict]:
    """Records of one or more files, each required to have ``fields`` (any JSON value).

    ``allow_empty``: a step's predictions may be empty; a command's main input may not."""
    paths = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    fields = tuple(fields)
    records = []
    for path in paths:
        for line, record in read_records(path, allow_empty=allow_empty):
            for field in fields:
                if field not in record:
                    raise InputError(path, "missing", line=line, field=field)
            records.append(record)
    return records


def item_key(record: dict) -> str:
    """The instance a record belongs to: ``q_id`` in sentence-level files, else ``id``."""
    return str(record.get("q_id", record.get("id")))
