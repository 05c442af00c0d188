r"""Sweep the adaptive-retrieval threshold δ and plot accuracy and retrieval frequency (paper Fig. 3).

The model runs twice in all (always retrieve, never retrieve); every threshold then reuses those
outputs, giving the decisions and answers of separate ``run_short_form.py --threshold δ`` runs.

CPU-sized example on the offline default model and a bundled file:

    python scripts/threshold_sweep.py --model_name smollm2-135m \
        --input_file eval_data/popqa_longtail_w_gs.head100.jsonl --ndocs 3 --max_new_tokens 20 \
        --metric match --output_csv out/sweep_popqa.csv

Writes the CSV (threshold, retrieval_frequency, metric, n), a PNG next to it (or
``--output_png``) and, with ``--output_json``, every threshold's predictions and both branches of
every query.

``--from_json`` re-ranks a previous sweep's candidates under this run's critique weights without
generating anything (the model's tokenizer is loaded, not its weights): e.g. the paper's Table 3
ablation "no critique, sequence score only" from a full-score sweep, with the same flags but
``--use_seqscore --w_rel 0`` and no ``--use_groundness``/``--use_utility``:

    python scripts/threshold_sweep.py --model_name smollm2-135m \
        --input_file eval_data/popqa_longtail_w_gs.head100.jsonl --ndocs 3 --max_new_tokens 20 \
        --metric match --use_seqscore --w_rel 0 --from_json out/sweep_popqa.json \
        --output_csv out/sweep_popqa_seqscore.csv
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from selfrag.cli import (
    add_model_flags,
    build_lm,
    critique_weights,
    flag_error,
    run_fingerprint,
    run_main,
)
from selfrag.evaluation.tasks import SHORT_FORM_TASKS
from selfrag.inference.short_form import ShortFormConfig
from selfrag.inference.short_form_run import ShortFormRun, load_run_examples
from selfrag.io import check_output
from selfrag.locks import output_lock

SEED = 633  # as run_short_form.py
DEFAULT_THRESHOLDS = [round(0.1 * i, 1) for i in range(11)]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_flags(p)
    p.add_argument("--input_file", type=str, required=True, help=".json list or JSONL of queries")
    p.add_argument("--output_csv", type=str, required=True, help="per-threshold results (CSV)")
    p.add_argument("--output_png", type=str, default=None, help="plot (default: CSV name + .png)")
    p.add_argument("--output_json", type=str, default=None,
                   help="optional: every threshold's predictions and retrieval decisions")
    p.add_argument("--thresholds", type=float, nargs="+", default=DEFAULT_THRESHOLDS,
                   help="thresholds δ to evaluate (default 0.0 0.1 ... 1.0)")
    p.add_argument("--task", type=str, default=None, choices=SHORT_FORM_TASKS,
                   help="fever/pubhealth and arc_c are closed-set; others (or none) are open QA")
    p.add_argument("--max_new_tokens", type=int, default=15, help="tokens per continuation")
    p.add_argument("--ndocs", type=int, default=10, help="passages per query taken from ctxs")
    p.add_argument("--use_seqscore", action="store_true", help="add exp(mean token log-prob)")
    p.add_argument("--use_groundness", "--use_grounding", dest="use_groundness",
                   action="store_true", help="add the IsSup score")
    p.add_argument("--use_utility", action="store_true", help="add the IsUse score")
    p.add_argument("--w_rel", type=float, default=1.0, help="weight of IsRel")
    p.add_argument("--w_sup", type=float, default=1.0, help="weight of IsSup")
    p.add_argument("--w_use", type=float, default=1.0, help="weight of IsUse (paper: 0.5)")
    p.add_argument("--metric", type=str, default="match", choices=["match", "accuracy", "em", "f1"],
                   help="per-query metric against the gold answers")
    p.add_argument("--chunk_size", type=int, default=64, help="queries per resume checkpoint")
    p.add_argument("--faithful", action="store_true",
                   help="the released log-prob-ratio rule and raw answers (as run_short_form.py)")
    p.add_argument("--from_json", type=str, default=None,
                   help="re-rank the candidates of this previous --output_json (same flags but "
                        "the critique weights) instead of generating")
    return p


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    if args.ndocs < 1 or args.max_new_tokens < 1:
        raise flag_error("--ndocs/--max_new_tokens", "must be at least 1")
    config = ShortFormConfig(
        mode="adaptive_retrieval", max_new_tokens=args.max_new_tokens, task=args.task,
        faithful=args.faithful,
        weights=critique_weights(args))
    run = ShortFormRun(args.input_file, args.output_csv, config, ndocs=args.ndocs,
                       metric=args.metric, chunk_size=args.chunk_size)
    examples = load_run_examples(run)  # validates the whole file before the model loads
    png = args.output_png or str(Path(args.output_csv).with_suffix(".png"))
    for flag, path in (("--output_csv", args.output_csv), ("--output_png", png),
                       ("--output_json", args.output_json)):
        if path:
            check_output(path, flag)

    from selfrag.baselines.sweep_job import rescore_sweep, run_threshold_sweep
    from selfrag.inference.answers import tokenizer_eos
    from selfrag.offline_models import load_tokenizer

    fingerprint = run_fingerprint(args, ("output_csv", "output_png", "output_json",
                                         "thresholds", "device", "from_json"))
    thresholds = sorted(set(args.thresholds))
    title = f"{Path(args.input_file).stem} ({config.task or 'qa'})"
    with output_lock(args.output_csv, "--output_csv"):  # one run per output, before any load
        if args.from_json:
            eos = tokenizer_eos(load_tokenizer(args.tokenizer_path or args.model_name))
            points = rescore_sweep(run, args.from_json, eos, examples, thresholds, fingerprint,
                                   png, args.output_json, title)
        else:
            points = run_threshold_sweep(run, build_lm(args, SEED), examples, thresholds,
                                         fingerprint, png=png, json_path=args.output_json,
                                         title=title)
    for p in points:
        value = "-" if p.metric_mean is None else f"{p.metric_mean:.4f}"
        print(f"threshold {p.threshold:g}: retrieval {p.retrieval_frequency:.3f}, {args.metric} {value}")


if __name__ == "__main__":
    sys.exit(run_main(main))
