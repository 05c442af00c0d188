#!/usr/bin/env bash
# Fine-tune the Self-RAG 7B generator as in the paper and the original script: Llama-2-7B, 4 GPUs,
# DeepSpeed ZeRO-3, bf16, total batch 128 (1 per GPU x 4 GPUs x 32 accumulation steps).
# Run from retrieval_lm/ with train.jsonl (selfrag/selfrag_train_data) next to it.
set -euo pipefail
MODEL_SIZE=7B
MODEL=meta-llama/Llama-2-7b-hf
MAX_SEQ_LENGTH=2048
# shellcheck source=retrieval_lm/finetune_launch.sh
. "$(dirname "${BASH_SOURCE[0]}")/finetune_launch.sh"
