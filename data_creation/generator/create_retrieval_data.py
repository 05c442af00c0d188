r"""Retrieval queries, or sentence-level instances (the original
``create_retrieval_data.py``).

Without ``--multiple_sent`` (step 3): one query per item, ``instruction + " " + output``:

    python data_creation/generator/create_retrieval_data.py --input_files items.jsonl \
        --output_file queries.jsonl

With ``--multiple_sent`` (step 5): the outputs split into sentences (spaCy), one instance per
labelled sentence, written to ``--output_file`` and ``<output_file>_splitted``. Items whose
initial Retrieve label (``--need_retrieval_files``, critic results) is not ``[Retrieval]`` are
skipped — the original's filter for this never fired (``--faithful`` keeps them all):

    python data_creation/generator/create_retrieval_data.py --multiple_sent \
        --input_files items.jsonl --need_retrieval_files ret.json \
        --initial_retrieval_file queries_with_ctxs.jsonl --output_file sentences.jsonl
"""

from __future__ import annotations

import argparse
import sys

import _path  # noqa: F401

from selfrag.cli import entry_point
from selfrag.data_creation.generator.predictions import read_label
from selfrag.data_creation.generator.records import item_key, load_checked, load_items
from selfrag.data_creation.generator.retrieval_data import initial_queries, sentence_instances
from selfrag.data_creation.generator.sentences import Splitter
from selfrag.errors import SelfRagError
from selfrag.io import check_output, write_jsonl_atomic


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--input_files", type=str, nargs="+", required=True, help="item files")
    p.add_argument("--output_file", type=str, required=True, help="output JSONL")
    p.add_argument("--multiple_sent", action="store_true", help="sentence-level instances")
    p.add_argument("--need_retrieval_files", type=str, nargs="+", default=None,
                   help="critic results of the input-only Retrieve task (with --multiple_sent)")
    p.add_argument("--initial_retrieval_file", type=str, nargs="+", default=None,
                   help="queries with ctxs of the initial retrieval (evidence for step 6)")
    p.add_argument("--faithful", action="store_true",
                   help="keep every item and the original's preceding-sentence text")
    p.add_argument("--splitter", type=str, default="auto",
                   choices=["auto", "en_core_web_sm", "sentencizer"], help="spaCy splitter")
    return p


@entry_point
def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    items = [item for path in args.input_files for item in load_items(path)]
    check_output(args.output_file, "--output_file")
    if not args.multiple_sent:
        write_jsonl_atomic(args.output_file, initial_queries(items))
        print(f"{len(items)} queries -> {args.output_file}")
        return
    labels = {}
    if args.need_retrieval_files:
        labels = {item_key(r): read_label("retrieval", r, args.faithful)
                  for r in load_checked(args.need_retrieval_files, ["pred"])}
    elif not args.faithful:
        raise SelfRagError("--need_retrieval_files is needed to skip items that need no "
                           "retrieval (or pass --faithful to keep them all)")
    ctxs = {}
    if args.initial_retrieval_file:
        ctxs = {item_key(r): r["ctxs"] for r in load_checked(args.initial_retrieval_file,
                                                             ["ctxs"])}
    sentences, splitted, counts = sentence_instances(items, ctxs, labels, Splitter(args.splitter),
                                                     args.faithful)
    write_jsonl_atomic(args.output_file, sentences)
    write_jsonl_atomic(args.output_file + "_splitted", splitted)
    print(f"{counts} -> {args.output_file}")


if __name__ == "__main__":
    sys.exit(main())
