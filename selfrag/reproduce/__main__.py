"""``python -m selfrag.reproduce OUT_DIR [--smoke]``: the small-scale Self-RAG experiment.

Runs every stage of :mod:`selfrag.reproduce.experiment` in OUT_DIR, skipping the stages already
done there; rerun the same command after an interruption to continue.
"""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import replace

from selfrag.cli import run_main
from selfrag.reproduce.experiment import FULL, SMOKE, Experiment, Sizes


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m selfrag.reproduce", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out_dir", nargs="?", default="runs/reproduce_small",
                   help="experiment folder (default runs/reproduce_small)")
    p.add_argument("--smoke", action="store_true",
                   help="tiny-random-llama and a handful of items per stage (minutes): checks "
                        "that the stages connect, not a result")
    p.add_argument("--seed", type=int, default=0, help="seed of every random choice")
    p.add_argument("--gen_epochs", type=int, default=None,
                   help=f"generator training epochs (default {FULL.gen_epochs}); changing it "
                        "reruns the generator and later stages only")
    p.add_argument("--no_ablation", action="store_true", help="skip the sequence-score ablation")
    p.add_argument("--until", metavar="STAGE",
                   help="stop after this stage (e.g. critic_eval for a critic study)")
    critic = p.add_argument_group("critic (changing one reruns the critic stages and what follows)")
    critic.add_argument("--critic_labels", type=_label_caps, default=None, metavar="TYPE=N,...",
                        help="teacher labels per type in the critic's SFT data, e.g. IsRel=500,"
                             "IsSup=300 (types: " + ", ".join(LABEL_FLAGS) + "; default "
                             + ",".join(f"{name}={FULL.critic_caps[flag]}"
                                        for name, flag in LABEL_FLAGS.items()) + ")")
    critic.add_argument("--critic_epochs", type=int, default=None,
                        help=f"critic training epochs (default {FULL.critic_epochs})")
    critic.add_argument("--critic_lr", type=float, default=None,
                        help=f"critic learning rate (default {FULL.critic_lr})")
    critic.add_argument("--critic_layers", type=int, default=None,
                        help="train only the critic's top N decoder layers, 0 for all (default "
                             f"{FULL.critic_layers or 0})")
    critic.add_argument("--critic_stratify", action=argparse.BooleanOptionalAction, default=None,
                        help="balance the critic's labels within each dataset (not only overall), "
                             "so that the dataset alone does not predict the label (default "
                             f"{'on' if FULL.critic_stratify else 'off'})")
    critic.add_argument("--critic_heldout", type=int, default=None,
                        help="unused IsRel and IsSup labels the critic is also scored on "
                             f"(default {FULL.critic_heldout}; 0: none)")
    return p


def sizes_from(args: argparse.Namespace) -> Sizes:
    """:data:`FULL` (or :data:`SMOKE`) with the command line's changes."""
    sizes = SMOKE if args.smoke else FULL
    if args.no_ablation:
        sizes = replace(sizes, ablation=False)
    if args.gen_epochs is not None:
        sizes = replace(sizes, gen_epochs=args.gen_epochs)
    if args.critic_labels:
        sizes = replace(sizes, critic_caps={**sizes.critic_caps, **args.critic_labels})
    for name in ("critic_epochs", "critic_lr", "critic_stratify", "critic_heldout"):
        if getattr(args, name) is not None:
            sizes = replace(sizes, **{name: getattr(args, name)})
    if args.critic_layers is not None:
        sizes = replace(sizes, critic_layers=args.critic_layers or None)
    return sizes


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    Experiment(args.out_dir, sizes_from(args), seed=args.seed).run(until=args.until)


#: ``--critic_labels`` type names -> the ``combine_chat_gpt_reward.py`` flag of their file.
LABEL_FLAGS = {"IsRel": "rel_file", "IsSup": "multi_ground_file", "Retrieve": "ret_file",
               "IsUse": "ut_file"}


def _label_caps(text: str) -> dict:
    caps = {}
    for part in text.split(","):
        name, _, number = part.partition("=")
        if name.strip() not in LABEL_FLAGS or not number.strip().isdigit():
            raise argparse.ArgumentTypeError(
                f"{part!r}: expected TYPE=N with TYPE one of {', '.join(LABEL_FLAGS)}")
        caps[LABEL_FLAGS[name.strip()]] = int(number)
    return caps


if __name__ == "__main__":
    sys.exit(run_main(main))
