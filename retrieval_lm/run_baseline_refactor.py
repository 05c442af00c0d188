r"""``run_baseline_refactor.py``: the script the original README runs for baselines but never
shipped. It is the same command as ``run_baseline_lm.py``: same flags, same output.

    python retrieval_lm/run_baseline_refactor.py --model_name smollm2-135m \
        --input_file eval_data/health_claims_processed.head100.jsonl --task fever \
        --metric accuracy --max_new_tokens 10 --result_fp out/baseline_pubhealth.jsonl
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from retrieval_lm.run_baseline_lm import build_parser, main  # noqa: F401

if __name__ == "__main__":
    sys.exit(main())
