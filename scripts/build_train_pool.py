r"""Cut the small-scale reproduction's training pool out of the shared data (once; committed).

    python scripts/build_train_pool.py --shared ../shared/data

Writes eval_data/train_pool/{popqa,pubhealth,arc_c,distractors}.jsonl (see
selfrag/reproduce/pool.py for what they hold and which lines are never read).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from selfrag.reproduce.pool import build_pool


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shared", default=str(ROOT.parent / "shared" / "data"), help="the shared data folder")
    p.add_argument("--output_dir", default=str(ROOT / "eval_data" / "train_pool"), help="where the pool goes")
    args = p.parse_args()
    counts = build_pool(Path(args.shared), ROOT / "eval_data", Path(args.output_dir))
    for name, n in counts.items():
        print(f"{name}: {n} records")


if __name__ == "__main__":
    main()
