#!/usr/bin/env bash
# Fine-tune the Self-RAG 13B generator as in the paper and the original script: Llama-2-13B, 4 GPUs,
# DeepSpeed ZeRO-3, bf16, total batch 128 (1 per GPU x 4 GPUs x 32 accumulation steps).
# max_seq_length 1536 as in the original script (the paper says 1,524).
# Run from retrieval_lm/ with train.jsonl (selfrag/selfrag_train_data) next to it.
set -euo pipefail
MODEL_SIZE=13B
MODEL=meta-llama/Llama-2-13b-hf
MAX_SEQ_LENGTH=1536
# shellcheck source=retrieval_lm/finetune_launch.sh
. "$(dirname "${BASH_SOURCE[0]}")/finetune_launch.sh"
