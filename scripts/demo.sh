#!/usr/bin/env bash
# Quick start, step 1: install (into ./.venv) and run Self-RAG on the offline default model.
# Extra arguments go to the demo, e.g. `bash scripts/demo.sh --n_popqa 10`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
# shellcheck disable=SC1091
. .venv/bin/activate
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
exec python -m selfrag.demo "$@"
