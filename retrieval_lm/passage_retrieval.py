r"""Retrieve passages for one query (``--query``) or for every item of a file (``--data``).

Batch mode, as documented by the original README but missing from its script (issue #65)::

    python retrieval_lm/passage_retrieval.py --passages eval_data/corpus/corpus.jsonl \
        --passages_embeddings "demo_embeddings/*" --data eval_data/popqa_longtail.jsonl \
        --output_dir retrieved --n_docs 20

adds ``ctxs`` ({id, title, text, score}) to every item that has ``question`` or ``instruction``
and writes ``retrieved/popqa_longtail.jsonl``; an interrupted run resumes. ``--query`` prints the
top documents of one query.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from selfrag.cli import entry_point, flag_error
from selfrag.io import check_output
from selfrag.locks import output_lock
from selfrag.retrieval.encoder import DEFAULT_ENCODER
from selfrag.retrieval.file_retrieval import (
    add_ctxs,
    finished_output,
    load_queries,
    retrieval_settings,
)
from selfrag.retrieval.retriever import Retriever


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--query", help="one query: print its top --n_docs passages")
    mode.add_argument("--data", help="JSON/JSONL file whose items (with 'question' or "
                                     "'instruction') get 'ctxs'")
    p.add_argument("--passages", required=True, help="passage file (DPR TSV or JSONL)")
    p.add_argument("--passages_embeddings", required=True,
                   help='glob of embedding shards, e.g. "wikipedia_embeddings/*"')
    p.add_argument("--output_dir", help="--data mode: folder of the output (same file name)")
    p.add_argument("--n_docs", type=int, default=100, help="passages retrieved per query")
    p.add_argument("--validation_workers", type=int, default=32,
                   help="unused; kept for compatibility with the original")
    p.add_argument("--per_gpu_batch_size", type=int, default=64, help="queries per encoder batch")
    p.add_argument("--save_or_load_index", action="store_true",
                   help="load the index saved next to the embeddings, or build and save it")
    p.add_argument("--model_name_or_path", default=DEFAULT_ENCODER,
                   help=f"query encoder (must be the passages' encoder); default {DEFAULT_ENCODER}")
    p.add_argument("--no_fp16", action="store_true", help="keep the encoder in fp32 on GPU")
    p.add_argument("--question_maxlength", type=int, default=512,
                   help="truncate queries to this many tokens")
    p.add_argument("--indexing_batch_size", type=int, default=1_000_000,
                   help="vectors added to the index per chunk")
    p.add_argument("--projection_size", type=int, default=None,
                   help="embedding dimension (original default 768); checked against the "
                        "encoder when given, inferred otherwise")
    p.add_argument("--n_subquantizers", type=int, default=0,
                   help="> 0: product-quantised index PQ{n}x{n_bits} (original option)")
    p.add_argument("--n_bits", type=int, default=8, help="bits per PQ sub-quantizer code")
    p.add_argument("--index_factory", default="Flat",
                   help='faiss index_factory string, e.g. "Flat", "IVF4096,PQ64", '
                        '"OPQ96_768,IVF1024,PQ96x4fsr,Refine(PQ96)"; ending in ",DiskRefine(int8)" '
                        'or ",DiskRefine(fp16)": candidates from the faiss part (in RAM) are '
                        're-ranked exactly with vectors memory-mapped from disk (kept in the index '
                        'folder; ignored with --n_subquantizers)')
    p.add_argument("--search_params", default="",
                   help='search parameters, e.g. "nprobe=32,k_factor_rf=8"; DiskRefine: '
                        '"nprobe=32,shortlist=256" (candidates re-ranked per query)')
    p.add_argument("--index_dir", default=None,
                   help="folder of the saved index (default: next to the embeddings)")
    p.add_argument("--allow_pickle_embeddings", action="store_true",
                   help="also read the original's pickle embedding shards (only trusted files)")
    p.add_argument("--lang", nargs="*", default=None,
                   help="unused; kept for compatibility with the original")
    p.add_argument("--dataset", default="none",
                   help="unused; kept for compatibility with the original")
    p.add_argument("--lowercase", action="store_true", help="lowercase queries before encoding")
    p.add_argument("--normalize_text", action="store_true",
                   help="normalise queries as the original's src/normalize_text.py does")
    args = p.parse_args(argv)
    if args.data and not args.output_dir:
        p.error("--data needs --output_dir")
    for flag in ("n_docs", "per_gpu_batch_size", "question_maxlength", "indexing_batch_size"):
        if getattr(args, flag) < 1:  # checked before the index is built or anything written
            raise flag_error(f"--{flag}", "must be at least 1")
    return args


@entry_point
def main(argv=None) -> None:
    args = parse_args(argv)
    if args.data:  # a finished (or stale) output is found before the index is built
        settings = retrieval_settings(args)
        done = finished_output(args.data, args.output_dir, args.n_docs, settings)
        if done is not None:
            print(f"{done} is up to date (same input and settings); delete it to redo")
            return
        load_queries(args.data)  # a bad or empty input fails before the index is built
        check_output(args.output_dir, "--output_dir", folder=True)
        with output_lock(Path(args.output_dir) / Path(args.data).name):  # before the index
            retriever = Retriever(args)
            retriever.setup_retriever()
            output = add_ctxs(retriever, args.data, args.output_dir, n_docs=args.n_docs,
                              settings=settings)
        print(f"wrote {output}")
        return
    retriever = Retriever(args)
    retriever.setup_retriever()
    for rank, doc in enumerate(retriever.search_document(args.query, args.n_docs), 1):
        print(json.dumps({"rank": rank, **doc}, ensure_ascii=False))


if __name__ == "__main__":
    sys.exit(main())
