r"""Critic inference over a file of items (the original ``run_reward_vllm.py``).

Flags are the original's. Unlike it: any backend of ``selfrag.lm`` (``--backend hf`` on CPU/GPU,
``vllm`` on GPU), the critic's *training* prompt (``--faithful``: the original's Alpaca
preamble), every item saved (the original lost the last partial batch), no literal ``None`` for
missing preceding sentences, a journal beside ``--result_fp`` so an interrupted run resumes.
Predictions are read with the project's label parser: each record gets ``pred``, ``label``
(``null`` when unreadable — counted and printed), ``problem`` and ``judge``.

    python data_creation/generator/run_reward_vllm.py --input_file items.jsonl \
        --model_name smollm2-135m --device cpu --task retrieval \
        --inst_mode retrieval_instruction --input_mode retrieval_input --result_fp ret.json

``--split train`` scores a critic on its own SFT data (``{instruction, input, output, task}``):
items of ``--task`` only, with a ``correct`` flag per item and the accuracy printed.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

import _path  # noqa: F401

from selfrag.cli import entry_point
from selfrag.data_creation.critic.labels import parse_label
from selfrag.data_creation.critic.templates import INPUT_TEMPLATES, INSTRUCTIONS
from selfrag.data_creation.generator.commands import add_critic_flags, build_critic_judge
from selfrag.data_creation.generator.critic_runs import (
    TASKS,
    critic_prompt,
    generate_predictions,
    labelled,
)
from selfrag.errors import SelfRagError
from selfrag.io import check_output, read_records, write_json_atomic
from selfrag.locks import output_lock

UNUSED = ("--alias", "--n_examples", "--sample", "--top_k", "--int8bit", "--k_shots", "--metric")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--input_file", type=str, required=True, help="items (.json list or JSONL)")
    p.add_argument("--task", type=str, required=True, choices=sorted(TASKS),
                   help="critic task (groudness: the original's spelling of groundness)")
    p.add_argument("--inst_mode", type=str, default=None, choices=sorted(INSTRUCTIONS),
                   help="critic instruction (default: the task's)")
    p.add_argument("--input_mode", type=str, default=None, choices=sorted(INPUT_TEMPLATES),
                   help="input template (default: the task's)")
    p.add_argument("--result_fp", type=str, required=True, help="output JSON list")
    p.add_argument("--split", type=str, default="test",
                   help="'train': score on critic SFT data; anything else: label items")
    p.add_argument("--prev_result_fp", type=str, default=None,
                   help="earlier results: their items are skipped and they are kept in front")
    p.add_argument("--faithful", action="store_true",
                   help="the original's Alpaca inference prompt and literal 'None' preceding")
    add_critic_flags(p)
    for flag in UNUSED:  # accepted for compatibility; the original never read them either
        p.add_argument(flag, type=str, default=None, help="accepted, unused (as in the original)")
    return p


@entry_point
def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    task = TASKS[args.task]
    items = [record for _, record in read_records(args.input_file, allow_empty=False)]
    previous = []
    if args.prev_result_fp:
        previous = [record for _, record in read_records(args.prev_result_fp, allow_empty=True)]
        items = items[len(previous):]
    if args.split == "train":
        items = [item for item in items if item.get("task") == args.task]
        if not items:
            raise SelfRagError(f"{args.input_file}: no items with task {args.task!r}")
    check_output(args.result_fp, "--result_fp")  # before the critic loads
    with output_lock(args.result_fp, "--result_fp"):  # one run per output, before any load
        judge = build_critic_judge(args, args.faithful)
        journal = Path(args.result_fp + ".journal.jsonl")
        if args.split == "train":
            prompts = [critic_prompt(str(i.get("instruction", "")), str(i.get("input", "")),
                                     args.faithful) for i in items]
            preds = generate_predictions(judge.lm, prompts, max_new_tokens=args.max_new_tokens,
                                         batch_size=args.batch_size, journal_path=journal,
                                         fingerprint=judge.fingerprint())
            results = [labelled(item, pred, task.kind, judge.name) for item, pred in zip(items, preds)]
            for record in results:
                record["correct"] = (record["label"] is not None and record["label"] == parse_label(
                    task.kind, str(record.get("output", ""))).label)
            print(f"accuracy: {sum(r['correct'] for r in results) / len(results):.4f}")
        else:
            results = judge.label(args.task, items, source=args.input_file, journal_path=journal,
                                  inst_mode=args.inst_mode, input_mode=args.input_mode)
        write_json_atomic(args.result_fp, previous + results)
        journal.unlink(missing_ok=True)
    problems = Counter(r["problem"] for r in results if r["label"] is None)
    print(f"{len(results)} predictions, {sum(problems.values())} unparseable {dict(problems)}")


if __name__ == "__main__":
    sys.exit(main())
