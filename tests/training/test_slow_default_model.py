"""Fine-tuning the real offline default model (SmolLM2-135M) for a few steps: minutes on CPU."""

from __future__ import annotations

from pathlib import Path

import pytest

import finetune

REPO = Path(__file__).resolve().parents[2]


SAMPLE = str(Path(__file__).resolve().parents[2] / "eval_data" / "selfrag_train_sample50.jsonl")


@pytest.mark.slow
def test_smollm2_finetunes_on_released_examples_and_reloads(tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from selfrag.prompts import format_prompt
    from selfrag.tokens import reflection_token_ids

    out = tmp_path / "smollm2"
    argv = ["--model_name_or_path", "smollm2-135m", "--use_special_tokens", "--train_file", SAMPLE,
            "--max_seq_length", "128", "--per_device_train_batch_size", "2",
            "--max_train_steps", "3", "--learning_rate", "1e-4", "--logging_steps", "1",
            "--batching", "length_grouped", "--output_dir", str(out)]
    assert finetune.main(argv) == 0
    model = AutoModelForCausalLM.from_pretrained(out).eval()
    tokenizer = AutoTokenizer.from_pretrained(out)
    ids = reflection_token_ids(tokenizer)
    assert model.get_input_embeddings().weight.shape[0] >= max(ids.all_ids) + 1
    prompt = tokenizer(format_prompt("Who wrote Hamlet?"), return_tensors="pt")
    generated = model.generate(**prompt, max_new_tokens=4, do_sample=False)
    assert generated.shape[1] > prompt["input_ids"].shape[1]
