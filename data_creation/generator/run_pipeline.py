r"""Generator training data end to end (the steps of the original ``data_creation/generator/``):
every step, resumable, in one work folder.

Ours (the original ran eleven commands by hand). CPU-sized example, critic = the offline default
model, passages from the bundled demo corpus:

    python data_creation/generator/run_pipeline.py --input_file items.jsonl --work_dir work/gen \
        --model_name smollm2-135m --device cpu --demo_retriever --n_docs 5 --top_n 5

Fully offline with the gold-answer judge (PopQA / NQ / TriviaQA / ARC / PubHealth items):

    python data_creation/generator/run_pipeline.py --input_file popqa_items.jsonl \
        --work_dir work/gold --judge gold --demo_retriever

Items: JSONL ``{instruction, output, input, id, dataset_name[, answers]}``. The result is
``<work_dir>/generator_data.jsonl`` (and ``.json``) in the released training format, plus
``summary.json`` (judge, mode, seed, splitter, counts, unparseable predictions). Rerunning the
same command skips finished steps and resumes an interrupted critic step.
"""

from __future__ import annotations

import argparse
import json
import sys

import _path  # noqa: F401

from selfrag.cli import add_retriever_flags, entry_point
from selfrag.data_creation.generator.commands import (
    add_critic_flags,
    build_critic_judge,
    build_retriever,
)
from selfrag.data_creation.generator.gold_judge import GoldJudge
from selfrag.data_creation.generator.pipeline import PipelineConfig, run_pipeline
from selfrag.data_creation.generator.records import load_items
from selfrag.io import check_output
from selfrag.locks import output_lock


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--input_file", type=str, required=True, help="items (JSONL or .json list)")
    p.add_argument("--work_dir", type=str, required=True, help="folder of every step's output")
    p.add_argument("--judge", type=str, default="critic", choices=["critic", "gold"],
                   help="who labels: the critic model, or gold answers (offline, no model)")
    p.add_argument("--faithful", action="store_true",
                   help="the original's prompt, filters and sampling rules (see postprocess_data)")
    p.add_argument("--seed", type=int, default=0, help="seed of every random choice")
    p.add_argument("--n_docs", type=int, default=10, help="passages retrieved per query")
    p.add_argument("--top_n", type=int, default=10, help="passages labelled per sentence")
    p.add_argument("--multi_retrieval_task", type=str, default="multi_retrieval",
                   choices=["multi_retrieval", "multi_retrieval_three_way"],
                   help="per-sentence Retrieve labels: two-way, as in the original, or three-way "
                        "(adds [Continue to Use Evidence])")
    p.add_argument("--splitter", type=str, default="auto",
                   choices=["auto", "en_core_web_sm", "sentencizer"],
                   help="spaCy sentence splitter (auto: en_core_web_sm when installed)")
    add_critic_flags(p, model_required=False)
    add_retriever_flags(p)
    return p


@entry_point
def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    config = PipelineConfig(args.input_file, args.work_dir, faithful=args.faithful,
                            seed=args.seed, n_docs=args.n_docs, top_n=args.top_n,
                            multi_retrieval_task=args.multi_retrieval_task,
                            splitter=args.splitter)
    items = load_items(args.input_file)  # checked before any model loads
    check_output(args.work_dir, "--work_dir", folder=True)
    with output_lock(args.work_dir, "--work_dir"):  # one run per work folder, before any load
        judge = (GoldJudge(items, args.input_file) if args.judge == "gold"
                 else build_critic_judge(args, args.faithful))
        summary = run_pipeline(config, judge, build_retriever(args))
    print(json.dumps({k: summary[k] for k in ("judge", "mode", "items", "kept", "output")}))


if __name__ == "__main__":
    sys.exit(main())
