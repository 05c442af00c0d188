r"""IsUse labels (perceived utility 1-5, stored as [Utility:k]) from an LLM judge, as in the
original `chatgpt_utility.py`.

The original script's flags work (`--api_key` is a FILE; OPENAI_API_KEY is read first):

    python data_creation/critic/gpt4_reward/chatgpt_utility.py --input_files items.jsonl \
        --output_file_name out/utility.json --model_name gpt-4 --api_key key.txt

Against any OpenAI-compatible server, e.g. the project's own (`selfrag serve`):

    OPENAI_API_KEY=local python data_creation/critic/gpt4_reward/chatgpt_utility.py \
        --input_files items.jsonl --output_file_name out/utility.json \
        --base_url http://127.0.0.1:8000/v1 --model_name smollm2-135m --concurrency 8
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from selfrag.data_creation.critic.judge_run import labeller_command

main = labeller_command("utility", __doc__)

if __name__ == "__main__":
    sys.exit(main())
