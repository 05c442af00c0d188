"""Batch mode of passage_retrieval.py: add ``ctxs`` to every item of a JSON/JSONL file.

The original README documents ``--data FILE --output_dir DIR --n_docs 20`` but the script never
had it (spec §8.6, issue #65). Each item's query is its ``question`` (else ``instruction``); the
item gets ``ctxs``: a list of ``{id, title, text, score}``, best first. The output has the input's
file name and format. Finished queries are appended to ``DIR/.{name}.partial.jsonl`` in chunks, so
an interrupted run resumes; the output file appears only when every item is done.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from tqdm.auto import tqdm

from selfrag.errors import InputError, SelfRagError
from selfrag.io import read_records, write_atomic, write_json_atomic
from selfrag.retrieval.retriever import Retriever

logger = logging.getLogger(__name__)

QUERY_FIELDS = ("question", "instruction")  # spec §8.6


def query_of(path: Path, line: int, record: dict) -> str:
    """The query of one item: ``question``, else ``instruction``."""
    for name in QUERY_FIELDS:
        value = record.get(name)
        if isinstance(value, str) and value.strip():
            return value
    raise InputError(path, "item has no non-empty 'question' or 'instruction' string",
                     line=line, field="question")


def add_ctxs(retriever: Retriever, data: str | os.PathLike, output_dir: str | os.PathLike,
             n_docs: int = 20, chunk_size: int = 1024) -> Path:
    """Retrieve ``n_docs`` passages for every item of ``data`` and write the result.

    Args:
        retriever: a set-up :class:`Retriever`.
        data: a ``.json`` list (or ALCE ``{"data": [...]}``) or a JSONL file.
        output_dir: where the output (same file name) goes.
        n_docs: passages per item.
        chunk_size: queries encoded and saved together (the resume granularity).

    Returns:
        The output path. If it already exists the run is skipped (delete it to redo).

    Raises:
        InputError: unreadable input or an item without a query.
        SelfRagError: ``n_docs`` or ``chunk_size`` below 1.
    """
    if n_docs < 1 or chunk_size < 1:
        raise SelfRagError(f"n_docs must be at least 1 (got {n_docs}), and chunk_size too "
                           f"(got {chunk_size})")
    data, output_dir = Path(data), Path(output_dir)
    output = output_dir / data.name
    if output.exists():
        logger.info("%s exists, nothing to do", output)
        return output
    records = read_records(data)
    queries = [query_of(data, line, record) for line, record in records]
    output_dir.mkdir(parents=True, exist_ok=True)
    partial = output_dir / f".{data.name}.partial.jsonl"
    stamp = output_dir / f".{data.name}.partial.json"
    key = {"data": str(data.resolve()), "size": data.stat().st_size,
           "mtime": data.stat().st_mtime_ns, "n_docs": n_docs}
    done = _resume(partial, stamp, key)
    bar = tqdm(total=len(records), initial=len(done), desc="retrieving", unit="query")
    with partial.open("a", encoding="utf-8") as handle:
        for start in range(len(done), len(records), chunk_size):
            ctxs = retriever.search_batch(queries[start:start + chunk_size], n_docs)
            lines = [json.dumps(c, ensure_ascii=False) + "\n" for c in ctxs]
            handle.write("".join(lines))
            handle.flush()
            os.fsync(handle.fileno())
            done.extend(ctxs)
            bar.update(len(ctxs))
    bar.close()
    items = [{**record, "ctxs": ctx} for (_, record), ctx in zip(records, done)]
    if data.suffix == ".json":
        write_json_atomic(output, items)
    else:
        write_atomic(output, "".join(json.dumps(i, ensure_ascii=False) + "\n" for i in items))
    partial.unlink(missing_ok=True)
    stamp.unlink(missing_ok=True)
    return output


def _resume(partial: Path, stamp: Path, key: dict) -> list[list[dict]]:
    """Read back the complete lines of an earlier run on the same input; else start afresh."""
    if partial.is_file() and stamp.is_file():
        try:
            same = json.loads(stamp.read_text()) == key
        except json.JSONDecodeError:
            same = False
        if same:
            done, good_bytes = [], 0
            with partial.open("rb") as handle:
                for raw in handle:
                    if not raw.endswith(b"\n"):
                        break  # a line cut by an interruption
                    try:
                        done.append(json.loads(raw))
                    except json.JSONDecodeError:
                        break
                    good_bytes += len(raw)
            with partial.open("r+b") as handle:
                handle.truncate(good_bytes)
            if done:
                logger.info("resuming after %d finished queries", len(done))
            return done
    partial.unlink(missing_ok=True)
    write_json_atomic(stamp, key)
    partial.touch()
    return []
