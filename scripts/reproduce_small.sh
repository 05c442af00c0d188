#!/usr/bin/env bash
# The small-scale Self-RAG experiment end to end (about 70 minutes on 2 CPU cores; resumable):
#   bash scripts/reproduce_small.sh [OUT_DIR] [--smoke] [--no_ablation]
# Stages, their outputs and the results table (OUT_DIR/results.md): see selfrag/reproduce/.
set -euo pipefail
# shellcheck source=scripts/env.sh
. "$(dirname "$0")/env.sh"
exec python -m selfrag.reproduce "$@"
