r"""Self-RAG short-form inference (PopQA, TriviaQA, PubHealth, ARC-Challenge).

Flags and defaults are the original script's, so its README command lines work:

    python retrieval_lm/run_short_form.py --model_name selfrag/selfrag_llama2_7b \
        --input_file eval_data/popqa_longtail_w_gs.jsonl --mode adaptive_retrieval \
        --max_new_tokens 100 --threshold 0.2 --output_file out.json --metric match \
        --ndocs 10 --use_groundness --use_utility --use_seqscore --dtype half

CPU-sized example on the offline default model and a bundled file:

    python retrieval_lm/run_short_form.py --model_name smollm2-135m \
        --input_file eval_data/popqa_longtail_w_gs.head100.jsonl --ndocs 5 \
        --max_new_tokens 20 --threshold 0.2 --output_file out/popqa.json --metric match

``--faithful`` reproduces the original's retrieval decisions and raw answers (README table).
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from selfrag import cli
from selfrag.evaluation.tasks import SHORT_FORM_TASKS
from selfrag.inference.short_form_run import ShortFormRun, load_run_examples, run_short_form

SEED = 633  # the original's global seed


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    cli.add_model_flags(p)
    p.add_argument("--input_file", type=str, required=True, help=".json list or JSONL of queries")
    p.add_argument("--output_file", type=str, required=True, help="result JSON (written atomically)")
    p.add_argument("--task", type=str, default=None, choices=SHORT_FORM_TASKS,
                   help="fever/pubhealth and arc_c are closed-set; others (or none) are open QA")
    p.add_argument("--metric", type=str, default="match", choices=["match", "accuracy", "em", "f1"],
                   help="per-query metric against the gold answers")
    cli.add_inference_flags(p)
    return p


@cli.entry_point
def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    cli.check_inference_flags(args)
    random.seed(SEED)
    run = ShortFormRun(args.input_file, args.output_file, cli.short_form_config(args),
                       ndocs=args.ndocs, metric=args.metric, chunk_size=args.chunk_size)
    output = cli.run_inference(args, SEED, run, load_run_examples, run_short_form)
    if output["metric_mean"] is not None:
        print(f"{args.metric}: {output['metric_mean']:.4f}")
    print(f"Retrieval Frequencies: {output['retrieval_frequency']:.4f}")


if __name__ == "__main__":
    sys.exit(main())
