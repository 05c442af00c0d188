# Sourced by script_finetune_7b.sh and script_finetune_13b.sh, which set MODEL_SIZE, MODEL and
# MAX_SEQ_LENGTH: 4 GPUs, DeepSpeed ZeRO-3, bf16, total batch 128 (1 per GPU x 4 GPUs x 32
# accumulation steps), the original scripts' finetune.py flags; extra arguments go to finetune.py.
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# This checkout's selfrag, whichever one is installed.
export PYTHONPATH="$(dirname "$HERE")${PYTHONPATH:+:$PYTHONPATH}"
export CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES:-0,1,2,3}
NUM_GPUS=4
BATCH_SIZE_PER_GPU=1
TOTAL_BATCH_SIZE=128
GRADIENT_ACC_STEPS=$((TOTAL_BATCH_SIZE / NUM_GPUS / BATCH_SIZE_PER_GPU))
echo "Self-RAG ${MODEL_SIZE}: ${NUM_GPUS} GPUs x ${BATCH_SIZE_PER_GPU} per GPU x ${GRADIENT_ACC_STEPS} accumulation steps"

FINETUNE_ARGS=(
    --model_name_or_path $MODEL
    --use_flash_attn
    --tokenizer_name $MODEL
    --use_slow_tokenizer
    --train_file train.jsonl
    --max_seq_length $MAX_SEQ_LENGTH
    --preprocessing_num_workers 16
    --per_device_train_batch_size $BATCH_SIZE_PER_GPU
    --gradient_accumulation_steps $GRADIENT_ACC_STEPS
    --learning_rate 2e-5
    --lr_scheduler_type linear
    --warmup_ratio 0.03
    --weight_decay 0.
    --num_train_epochs 3
    --output_dir output/self_rag_${MODEL_SIZE}/
    --with_tracking
    --report_to tensorboard
    --logging_steps 1
    --use_special_tokens
    "$@"
)

# Everything the launch needs, checked in one line before 4 processes start.
"${PYTHON:-python}" -m selfrag.training.launch_check --script "$(basename "$0")" --num_gpus "$NUM_GPUS" \
    -- "${FINETUNE_ARGS[@]}"

accelerate launch \
    --mixed_precision bf16 \
    --num_machines 1 \
    --num_processes "$NUM_GPUS" \
    --use_deepspeed \
    --deepspeed_config_file "$HERE/stage3_no_offloading_accelerate.conf" \
    "$HERE/finetune.py" "${FINETUNE_ARGS[@]}"
