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
from selfrag.reproduce.experiment import FULL, SMOKE, Experiment


def main(argv: list[str] | None = None) -> None:
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
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    sizes = SMOKE if args.smoke else FULL
    if args.no_ablation:
        sizes = replace(sizes, ablation=False)
    if args.gen_epochs is not None:
        sizes = replace(sizes, gen_epochs=args.gen_epochs)
    Experiment(args.out_dir, sizes, seed=args.seed).run()


if __name__ == "__main__":
    sys.exit(run_main(main))
