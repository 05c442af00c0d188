r"""Retrieve labels from an LLM judge: from the instruction alone, or per output sentence with --multi_retrieval (and --three_way for [Continue to Use Evidence]) (spec §10.1).

The original script's flags work (`--api_key` is a FILE; OPENAI_API_KEY is read first):

    python data_creation/critic/gpt4_reward/chatgpt_need_retrieval.py --input_files items.jsonl \
        --output_file_name out/retrieval.json --model_name gpt-4 --api_key key.txt --multi_retrieval --three_way

Against any OpenAI-compatible server, e.g. the project's own (`selfrag serve`):

    OPENAI_API_KEY=local python data_creation/critic/gpt4_reward/chatgpt_need_retrieval.py \
        --input_files items.jsonl --output_file_name out/retrieval.json --multi_retrieval --three_way \
        --base_url http://127.0.0.1:8000/v1 --model_name smollm2-135m --concurrency 8

Answers are cached in `<output>.cache.jsonl` as they arrive, so a crashed or interrupted run
is rerun with the same command and pays only for what is missing. Replies without a single
label go to `<output>.invalid.jsonl`; counts, tokens and cost to `<output>.summary.json`.
See :mod:`selfrag.data_creation.critic_labels` for what differs from the original.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from selfrag.cli import entry_point
from selfrag.data_creation.critic_labels import build_parser, run_labelling

LABELLER = "need_retrieval"


@entry_point
def main(argv: list[str] | None = None) -> None:
    args = build_parser(LABELLER, __doc__).parse_args(argv)
    run_labelling(LABELLER, args)


if __name__ == "__main__":
    sys.exit(main())
