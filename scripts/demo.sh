#!/usr/bin/env bash
# Quick start, step 1: install (into ./.venv) and run Self-RAG on the offline default model.
# Extra arguments go to the demo, e.g. `bash scripts/demo.sh --n_popqa 10`.
set -euo pipefail
# shellcheck source=scripts/env.sh
. "$(dirname "$0")/env.sh"
exec python -m selfrag.demo "$@"
