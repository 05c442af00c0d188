r"""Self-RAG long-form inference with segment-level beam search (ASQA, ELI5, FactScore).

Flags and defaults are the original script's; its README commands work, e.g.

    python retrieval_lm/run_long_form_static.py --model_name selfrag/selfrag_llama2_7b \
        --ndocs 5 --max_new_tokens 300 --threshold 0.2 --use_grounding --use_utility \
        --use_seqscore --task asqa --input_file eval_data/asqa_eval_gtr_top100.json \
        --output_file out/asqa.json --max_depth 7 --mode always_retrieve

CPU-sized example on the offline default model and a bundled file:

    python retrieval_lm/run_long_form_static.py --model_name smollm2-135m --task factscore \
        --input_file eval_data/factscore_bio.head20.jsonl --ndocs 3 --max_new_tokens 30 \
        --max_depth 3 --beam_width 2 --threshold 0.2 --output_file out/bio.jsonl

With --passages/--passages_embeddings (or --demo_retriever) every retrieval step searches
again with the question plus the text written so far. ``--faithful`` reproduces the original
tree search, quirks included (README table).
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from selfrag import cli
from selfrag.evaluation.long_form_tasks import LONG_FORM_TASKS
from selfrag.inference.long_form_run import (
    LongFormRun,
    asqa_scores,
    load_run_examples,
    run_long_form,
)

SEED = 633


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    cli.add_model_flags(p)
    p.add_argument("--input_file", type=str, required=True,
                   help="ASQA/ELI5: ALCE JSON list with question+docs; FactScore: JSONL with input+ctxs")
    p.add_argument("--output_file", type=str, required=True,
                   help="ALCE result JSON (asqa/eli5) or JSONL (factscore), written atomically")
    p.add_argument("--task", type=str, required=True, choices=LONG_FORM_TASKS, help="which task")
    p.add_argument("--ignore_cont", action="store_true",
                   help="drop segments judged [No support / Contradictory] from the answer")
    cli.add_inference_flags(p)
    p.set_defaults(chunk_size=16)
    return p


@cli.entry_point
def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    cli.check_inference_flags(args)
    random.seed(SEED)
    run = LongFormRun(args.input_file, args.output_file, args.task, cli.long_form_config(args),
                      args.chunk_size)
    records = cli.run_inference(args, SEED, run, load_run_examples, run_long_form)
    scores = asqa_scores(records) if args.task != "factscore" else None
    if scores:
        print(f"ASQA str-em {scores['str_em']:.2f}  ROUGE-L {scores['rougeL']:.2f}  "
              f"({scores['count']} questions)")
    print(f"wrote {len(records)} answers to {args.output_file}")


if __name__ == "__main__":
    sys.exit(main())
