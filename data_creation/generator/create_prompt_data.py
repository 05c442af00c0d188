r"""(Sentence x passage) pairs for the IsRel / IsSup critics (the original
``create_prompt_data.py``), split into ``--num_jobs`` files
``prompt_data_batch_{j}.jsonl`` — every pair lands in one (the original dropped the remainder).

    python data_creation/generator/create_prompt_data.py --input_file sentences_with_ctxs.jsonl \
        --multi_need_retrieval_pred_file multi.json --output_dir pairs --num_jobs 4 --top_n 10

Sentence 0 always gets pairs; a later one when its multi-sentence Retrieve label asks for
evidence (unreadable labels are counted, not guessed; ``--faithful``: the original's test,
skip when the raw prediction contains "No Retrieval").
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import _path  # noqa: F401

from selfrag.cli import entry_point
from selfrag.data_creation.generator.predictions import read_label
from selfrag.data_creation.generator.prompt_data import (
    make_pairs,
    select_sentences,
    sentence_key,
    split_jobs,
)
from selfrag.data_creation.generator.records import load_checked
from selfrag.errors import SelfRagError
from selfrag.io import check_output, write_jsonl_atomic

SENTENCE_FIELDS = ("dataset_name", "instruction", "preceding_sentences", "target_output", "q_id",
                   "output", "sent_idx", "ctxs")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--input_file", "--input_files", dest="input_file", type=str, nargs="+",
                   required=True, help="sentence instances with ctxs")
    p.add_argument("--output_dir", type=str, required=True, help="folder of the batch files")
    p.add_argument("--num_jobs", type=int, default=1, help="number of batch files")
    p.add_argument("--top_n", type=int, default=10, help="passages per sentence")
    p.add_argument("--multi_need_retrieval_pred_file", "--multi_need_retrieval_pred_files",
                   dest="multi_pred", type=str, nargs="+", default=None,
                   help="critic results of the multi-sentence Retrieve task")
    p.add_argument("--faithful", action="store_true", help="the original's skip test")
    return p


@entry_point
def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    if args.num_jobs < 1 or args.top_n < 1:
        raise SelfRagError("--num_jobs and --top_n must be at least 1")
    sentences = load_checked(args.input_file, SENTENCE_FIELDS, allow_empty=False)
    check_output(args.output_dir, "--output_dir", folder=True)
    multi = {}
    for record in load_checked(args.multi_pred or [], ["q_id", "sent_idx", "pred"]):
        multi[sentence_key(record)] = {**record, "label": read_label("multi_retrieval", record)}
    kept, counts = select_sentences(sentences, multi, args.faithful)
    pairs = make_pairs(kept, args.top_n)
    for j, part in enumerate(split_jobs(pairs, args.num_jobs)):
        write_jsonl_atomic(Path(args.output_dir) / f"prompt_data_batch_{j}.jsonl", part)
    print(f"sentences {counts}; {len(pairs)} pairs in {args.num_jobs} files -> {args.output_dir}")


if __name__ == "__main__":
    sys.exit(main())
