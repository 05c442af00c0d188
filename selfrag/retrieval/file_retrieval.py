"""Batch mode of passage_retrieval.py: add ``ctxs`` to every item of a JSON/JSONL file.

The original README documents ``--data FILE --output_dir DIR --n_docs 20`` but the script never
had it (issue #65). Each item's query is its ``question`` (else ``instruction``); the
item gets ``ctxs``: a list of ``{id, title, text, score}``, best first. The output has the input's
file name and format. Finished queries are appended to ``DIR/.{name}.partial.jsonl`` in chunks, so
an interrupted run resumes; the output file appears only when every item is done. Both the partial
work and the finished output are keyed by the input's content hash, ``n_docs`` and the retriever
settings (``DIR/.{name}.done.json``): a rerun with the same ones skips, one with other ones
refuses to keep (or to resume) results that no longer match.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from tqdm.auto import tqdm

from selfrag.errors import InputError, SelfRagError
from selfrag.io import file_digest, read_records, write_atomic, write_json_atomic
from selfrag.locks import output_lock
from selfrag.retrieval.retriever import Retriever

logger = logging.getLogger(__name__)

QUERY_FIELDS = ("question", "instruction")  # question first, else instruction


def query_of(path: Path, line: int, record: dict) -> str:
    """The query of one item: ``question``, else ``instruction``."""
    for name in QUERY_FIELDS:
        value = record.get(name)
        if isinstance(value, str) and value.strip():
            return value
    raise InputError(path, "item has no non-empty 'question' or 'instruction' string",
                     line=line, field="question")


def load_queries(data: str | os.PathLike) -> tuple[list[tuple[int, dict]], list[str]]:
    """The records of ``data`` and their queries, checked (no model needed).

    Raises:
        InputError: unreadable or empty input, or an item without a query.
    """
    records = read_records(data, allow_empty=False)
    return records, [query_of(Path(data), line, record) for line, record in records]


#: Retriever settings (``Retriever.args``) that change which passages an item gets.
RETRIEVAL_SETTINGS = ("passages", "passages_embeddings", "model_name_or_path", "index_factory",
                      "n_subquantizers", "n_bits", "search_params", "index_dir",
                      "question_maxlength", "lowercase", "normalize_text", "projection_size")


def retrieval_settings(args) -> dict:
    """What of ``args`` decides the output, plus the corpus file's size and modification time
    (cheaper than hashing a 13 GB corpus; its embeddings are checked when the index loads)."""
    settings = {name: getattr(args, name, None) for name in RETRIEVAL_SETTINGS}
    passages = getattr(args, "passages", None)
    if passages and Path(passages).is_file():
        stat = Path(passages).stat()
        settings["passages_file"] = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    return json.loads(json.dumps(settings, default=str))


def output_key(data: Path, n_docs: int, settings: dict) -> dict:
    """Everything the output depends on: the input's content, ``n_docs``, the retriever."""
    return {"data_sha256": file_digest(data), "n_docs": n_docs, "retriever": settings}


def finished_output(data: str | os.PathLike, output_dir: str | os.PathLike, n_docs: int,
                    settings: dict) -> Path | None:
    """The output path when an earlier run with the same input and settings finished it;
    ``None`` when there is none yet (and nothing stale is in the way).

    Raises:
        InputError: the input is missing.
        SelfRagError: the output exists but was written from another input or other settings
            (or by something else): it would silently be kept, so it is refused.
    """
    data, output_dir = Path(data), Path(output_dir)
    if not data.is_file():
        raise InputError(data, "file not found")
    output, done = output_dir / data.name, output_dir / f".{data.name}.done.json"
    if not output.exists():
        return None
    key = output_key(data, n_docs, settings)
    try:
        previous = json.loads(done.read_text(encoding="utf-8")) if done.is_file() else None
    except (json.JSONDecodeError, UnicodeDecodeError):
        previous = None
    if previous == key:
        return output
    why = ("no record of the run that wrote it" if previous is None
           else "written with another " + ", ".join(_changes(previous, key)))
    raise SelfRagError(f"{output} exists ({why}); delete it or choose another --output_dir")


def _changes(previous: dict, key: dict) -> list[str]:
    names = []
    if previous.get("data_sha256") != key["data_sha256"]:
        names.append("input content")
    if previous.get("n_docs") != key["n_docs"]:
        names.append("--n_docs")
    old, new = previous.get("retriever") or {}, key["retriever"]
    names += ["passage file" if k == "passages_file" else f"--{k}"
              for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]
    return names


def add_ctxs(retriever: Retriever, data: str | os.PathLike, output_dir: str | os.PathLike,
             n_docs: int = 20, chunk_size: int = 1024, settings: dict | None = None) -> Path:
    """Retrieve ``n_docs`` passages for every item of ``data`` and write the result.

    Args:
        retriever: a set-up :class:`Retriever`.
        data: a ``.json`` list (or ALCE ``{"data": [...]}``) or a JSONL file.
        output_dir: where the output (same file name) goes.
        n_docs: passages per item.
        chunk_size: queries encoded and saved together (the resume granularity).
        settings: what of the retriever decides the output (default:
            :func:`retrieval_settings` of ``retriever.args``).

    Returns:
        The output path. If a run with the same input content and settings finished it, the
        run is skipped (delete it to redo).

    Raises:
        InputError: unreadable or empty input, or an item without a query.
        SelfRagError: ``n_docs`` or ``chunk_size`` below 1, or a stale output (see
            :func:`finished_output`).
    """
    if n_docs < 1 or chunk_size < 1:
        raise SelfRagError(f"n_docs must be at least 1 (got {n_docs}), and chunk_size too "
                           f"(got {chunk_size})")
    settings = retrieval_settings(retriever.args) if settings is None else settings
    data, output_dir = Path(data), Path(output_dir)
    output = output_dir / data.name
    with output_lock(output):  # one run per output
        if finished_output(data, output_dir, n_docs, settings) is not None:
            logger.info("%s exists from the same input and settings, nothing to do", output)
            return output
        records, queries = load_queries(data)
        output_dir.mkdir(parents=True, exist_ok=True)
        partial = output_dir / f".{data.name}.partial.jsonl"
        stamp = output_dir / f".{data.name}.partial.json"
        key = output_key(data, n_docs, settings)
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
        write_json_atomic(output_dir / f".{data.name}.done.json", key)
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
