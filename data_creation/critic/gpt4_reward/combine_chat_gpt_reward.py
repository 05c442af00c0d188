r"""Critic SFT data from the judge labels of the chatgpt_*.py scripts, built as the original did.

The original's command line works; every file flag is optional, so any subset of label types
can be combined:

    python data_creation/critic/gpt4_reward/combine_chat_gpt_reward.py \
        --ut_file out/utility.json --ret_file out/retrieval.json \
        --multi_ret_file out/multi_retrieval.json --multi_ground_file out/groundness.json \
        --rel_file out/relevance.json --output_file_name out/critic

writes ``out/critic_train.json`` and ``out/critic_dev.json`` (the first ``--dev_size`` instances
after a shuffle seeded by ``--seed``), ready for ``data_creation/train_special_tokens.py
--data_path out/critic_train.json``. Records of the original labellers are read too. See
:mod:`selfrag.data_creation.critic.sft_instances` for the conversion rules and what
``--faithful`` keeps.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from selfrag.cli import entry_point, flag_error
from selfrag.data_creation.critic.sft_instances import (
    DEFAULT_DEV_SIZE,
    FILE_TYPES,
    SftOptions,
    build_critic_sft,
    describe,
)
from selfrag.io import check_output

FILE_HELP = {
    "ut_file": "IsUse labels (chatgpt_utility.py)",
    "ret_file": "input-only Retrieve labels (chatgpt_need_retrieval.py)",
    "multi_ret_file": "sentence-level Retrieve labels (chatgpt_need_retrieval.py --multi_retrieval)",
    "multi_ground_file": "IsSup labels (chatgpt_groundness.py)",
    "rel_file": "IsRel labels (chatgpt_relevance.py)",
}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    for name in FILE_TYPES:
        p.add_argument(f"--{name}", type=str, nargs="+", default=[],
                       help=f"{FILE_HELP[name]}: .json lists or JSONL")
    p.add_argument("--output_file_name", type=str, required=True,
                   help="prefix of <name>_train.json and <name>_dev.json")
    # Ours.
    p.add_argument("--seed", type=int, default=42, help="seed of the shuffle (and --faithful)")
    p.add_argument("--dev_size", type=int, default=DEFAULT_DEV_SIZE,
                   help="instances in the dev split (the first ones after the shuffle)")
    p.add_argument("--faithful", action="store_true",
                   help="the original's quirks: [Relevant] kept with probability 0.7, IsSup "
                        "template without preceding sentences, task 'groudness'")
    return p


@entry_point
def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    files = {name: getattr(args, name) for name in FILE_TYPES}
    if not any(files.values()):
        raise flag_error("--ut_file/--ret_file/--multi_ret_file/--multi_ground_file/--rel_file",
                         "give at least one labelled file")
    if args.dev_size < 0:
        raise flag_error("--dev_size", "must not be negative")
    options = SftOptions(seed=args.seed, dev_size=args.dev_size, faithful=args.faithful)
    for split in ("train", "dev"):
        check_output(f"{args.output_file_name}_{split}.json", "--output_file_name")
    stats = build_critic_sft(files, args.output_file_name, options)
    print(describe(stats, args.output_file_name))


if __name__ == "__main__":
    sys.exit(main())
