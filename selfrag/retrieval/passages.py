"""Passage corpora: DPR TSV (``id<TAB>text<TAB>title``) and JSONL (``id``, ``title``, ``text``).

As in the original ``src/data.load_passages``, a ``.jsonl`` file holds one object per line; anything
else is read as DPR TSV whose header row (first column ``id``) is skipped. Ids are always kept as
strings. Unlike the original, a ragged row, a missing field or a duplicated id is an error that
names the file and line.
"""

from __future__ import annotations

import csv
import os
import sys
from pathlib import Path

from selfrag.errors import InputError
from selfrag.io import read_lines, read_records
from selfrag.retrieval.normalize import normalize_text

Passage = dict  # {"id": str, "title": str, "text": str}
_TSV_COLUMNS = ("id", "text", "title")  # DPR psgs_w100.tsv column order


def load_passages(path: str | os.PathLike) -> list[Passage]:
    """Read a passage corpus into a list of ``{"id", "title", "text"}`` dicts, in file order.

    Args:
        path: a ``.jsonl`` file, or a DPR-style TSV file (any other suffix).

    Raises:
        InputError: missing or empty file, malformed line, ragged TSV row, missing/empty id,
            missing text, or an id that occurs twice.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "passage file not found")
    rows = _read_jsonl(path) if path.suffix == ".jsonl" else _read_tsv(path)
    passages: list[Passage] = []
    first_line: dict[str, int] = {}
    for line, passage in rows:
        pid = passage["id"]
        if pid in first_line:
            raise InputError(path, f"duplicate passage id {pid!r} (first seen on line "
                             f"{first_line[pid]})", line=line, field="id")
        first_line[pid] = line
        passages.append(passage)
    if not passages:
        raise InputError(path, "no passages (the corpus is empty)")
    return passages


def _read_jsonl(path: Path):
    for line, record in read_records(path, allow_empty=False):
        pid = record.get("id")
        if pid is None or (isinstance(pid, str) and not pid.strip()):
            raise InputError(path, "missing or empty passage id", line=line, field="id")
        if not isinstance(pid, (str, int)) or isinstance(pid, bool):
            raise InputError(path, "passage id must be a string or an integer", line=line,
                             field="id")
        text = record.get("text")
        if not isinstance(text, str):
            raise InputError(path, "missing passage text (a string)", line=line, field="text")
        title = record.get("title") or ""
        if not isinstance(title, str):
            raise InputError(path, "title must be a string", line=line, field="title")
        yield line, {"id": str(pid), "title": title, "text": text}


def _read_tsv(path: Path):
    csv.field_size_limit(sys.maxsize)
    reader = csv.reader((text for _, text in read_lines(path)), delimiter="\t")
    for row in reader:
        line = reader.line_num
        if not row or (len(row) == 1 and not row[0].strip()):
            continue
        if line == 1 and row[0] == "id":  # header row
            continue
        if len(row) != len(_TSV_COLUMNS):
            raise InputError(path, f"expected {len(_TSV_COLUMNS)} tab-separated columns "
                             f"(id, text, title), found {len(row)}", line=line)
        pid, text, title = row
        if not pid.strip():
            raise InputError(path, "empty passage id", line=line, field="id")
        yield line, {"id": pid, "title": title, "text": text}


def passage_text(passage: Passage, use_title: bool = True, lowercase: bool = False,
                 normalize: bool = False) -> str:
    """The string that is embedded for a passage: ``title + " " + text`` (as the original).

    Args:
        passage: a passage dict.
        use_title: prepend the title when it is non-empty (``--no_title`` turns this off).
        lowercase: lowercase the result (``--lowercase``).
        normalize: apply :func:`~selfrag.retrieval.normalize.normalize_text` (``--normalize_text``).
    """
    title = passage.get("title") or ""
    text = f"{title} {passage['text']}" if use_title and title else passage["text"]
    return prepare_text(text, lowercase=lowercase, normalize=normalize)


def prepare_text(text: str, lowercase: bool = False, normalize: bool = False) -> str:
    """Apply the optional lowercasing and normalisation shared by passages and queries."""
    if lowercase:
        text = text.lower()
    if normalize:
        text = normalize_text(text)
    return text
