"""retrieval_lm/finetune.py end to end with the tiny random Llama (single process, CPU)."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest
import torch

import finetune

REPO = Path(__file__).resolve().parents[2]



@pytest.fixture(autouse=True)
def fresh_accelerate_state():
    """accelerate keeps process-wide singletons; each in-process run starts clean."""
    from accelerate.state import AcceleratorState, GradientState

    yield
    AcceleratorState._reset_state(True)
    GradientState._reset_state()


@pytest.fixture
def train_file(tmp_path) -> str:
    records = [{"instruction": f"What is item {i % 4}?", "input": "",
                "output": f"[Retrieval]<paragraph>Item {i % 4}\nItem {i % 4} is a thing.</paragraph>"
                          f"[Relevant]Item {i % 4} is a thing.[Fully supported][Utility:5]"}
               for i in range(16)]
    path = tmp_path / "train.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return str(path)


def run(tiny_model_path, train_file, out, *extra) -> int:
    argv = ["--model_name_or_path", tiny_model_path, "--use_special_tokens", "--train_file",
            train_file, "--max_seq_length", "64", "--per_device_train_batch_size", "4",
            "--learning_rate", "5e-3", "--logging_steps", "1", "--output_dir", str(out), *extra]
    return finetune.main(argv)


def losses(out) -> list[float]:
    return [json.loads(line)["loss"] for line in (Path(out) / "train_log.jsonl").read_text().splitlines()]


def test_finetune_lowers_loss_and_reloads_for_generation(tiny_model_path, train_file, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from selfrag.prompts import format_prompt
    from selfrag.tokens import RETRIEVAL, reflection_token_ids

    out = tmp_path / "out"
    assert run(tiny_model_path, train_file, out, "--max_train_steps", "24",
               "--batching", "length_grouped") == 0
    history = losses(out)
    assert len(history) == 24
    assert sum(history[-4:]) / 4 < history[0] - 3.0, history
    model = AutoModelForCausalLM.from_pretrained(out).eval()
    tokenizer = AutoTokenizer.from_pretrained(out)
    ids = reflection_token_ids(tokenizer)
    prompt = tokenizer(format_prompt("What is item 2?"), return_tensors="pt")
    generated = model.generate(**prompt, max_new_tokens=3, do_sample=False)
    first = int(generated[0, prompt["input_ids"].shape[1]])
    assert first == ids.id(RETRIEVAL)


def test_resume_from_checkpoint_matches_uninterrupted_run(tiny_model_path, train_file, tmp_path):
    from safetensors.torch import load_file

    full, resumed = tmp_path / "full", tmp_path / "resumed"
    assert run(tiny_model_path, train_file, full, "--max_train_steps", "6",
               "--checkpointing_steps", "3") == 0
    assert (full / "step_3" / "optimizer.safetensors").is_file()
    assert not list(full.rglob("*.pkl")) and not list(full.rglob("*.bin"))  # no pickle on disk
    assert run(tiny_model_path, train_file, resumed, "--max_train_steps", "6",
               "--resume_from_checkpoint", str(full / "step_3")) == 0
    a, b = load_file(full / "model.safetensors"), load_file(resumed / "model.safetensors")
    for name in a:
        torch.testing.assert_close(a[name], b[name], atol=1e-6, rtol=1e-5)
    assert losses(resumed) == pytest.approx(losses(full)[3:], rel=1e-5)


def test_saved_model_and_checkpoint_files_get_the_usual_modes(tiny_model_path, train_file,
                                                              tmp_path):
    # issue 12 item 13: save_pretrained wrote model.safetensors 0600
    import os
    import stat

    out = tmp_path / "out"
    old = os.umask(0o022)
    try:
        assert run(tiny_model_path, train_file, out, "--max_train_steps", "1",
                   "--checkpointing_steps", "1") == 0
    finally:
        os.umask(old)
    assert (out / "model.safetensors").is_file() and (out / "step_1").is_dir()
    for item in [out, *out.rglob("*")]:
        assert stat.S_IMODE(item.stat().st_mode) == (0o755 if item.is_dir() else 0o644), item


def test_packed_batching_trains_too(tiny_model_path, train_file, tmp_path):
    out = tmp_path / "packed"
    assert run(tiny_model_path, train_file, out, "--num_train_epochs", "2", "--batching",
               "packed", "--faithful", "--checkpointing_steps", "epoch") == 0
    assert losses(out)[-1] < losses(out)[0]
    assert sorted(p.name for p in out.glob("epoch_*")) == ["epoch_0", "epoch_1"]


def test_flash_attention_without_a_gpu_is_a_clear_error(tiny_model_path, train_file, tmp_path,
                                                        capsys):
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    assert run(tiny_model_path, train_file, tmp_path / "fa", "--use_flash_attn") == 2
    assert "--use_flash_attn needs the flash-attn package" in capsys.readouterr().err


def test_lora_trains_adapters_and_the_reflection_token_rows(tiny_model_path, train_file, tmp_path):
    from safetensors.torch import load_file

    from selfrag.offline_models import load_lora_model, load_model
    from selfrag.tokens import REFLECTION_TOKENS

    out = tmp_path / "lora"
    assert run(tiny_model_path, train_file, out, "--max_train_steps", "4", "--use_lora",
               "--lora_rank", "4") == 0
    assert (out / "adapter_config.json").is_file()
    assert not (out / "model.safetensors").exists()
    assert any("trainable_tokens" in k for k in load_file(out / "adapter_model.safetensors"))
    merged, tokenizer = load_lora_model(str(out), base_model=tiny_model_path)
    base = load_model(tiny_model_path).get_input_embeddings().weight
    tuned = merged.get_input_embeddings().weight
    new = [tokenizer.convert_tokens_to_ids(t) for t in REFLECTION_TOKENS]
    changed = (tuned - base).abs().sum(dim=1) > 0
    assert changed[new].all()
    assert changed.sum() == len(new)  # the rest of the embedding matrix stays frozen


@pytest.mark.parametrize("case", ["bad data", "output is a file"])
def test_data_and_output_folder_are_checked_before_the_model_loads(train_file, tmp_path, capsys,
                                                                   case):
    # issue 12 item 10: finetune.py read its data only after loading the model
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"instruction": "a", "output": "b"}) + "\n{}\n")
    out = tmp_path / "out"
    if case == "output is a file":
        out.write_text("x")
    code = run(str(tmp_path / "no-such-model"), str(bad) if case == "bad data" else train_file, out)
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {bad}, line 2: " if case == "bad data"
                          else f"error: --output_dir {out}: is a file, not a folder"), err


def test_bad_training_line_is_one_clear_error(tiny_model_path, tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"instruction": "a", "output": "b"}) + "\n"
                   + json.dumps({"instruction": "a"}) + "\n")
    assert run(tiny_model_path, str(bad), tmp_path / "o", "--max_train_steps", "1") == 2
    err = capsys.readouterr().err
    assert "bad.jsonl, line 2" in err and "'output'" in err


def script_flags(name: str) -> list[str]:
    """The finetune.py flags a launch script passes (the FINETUNE_ARGS array of the launcher it
    sources), filled in with the script's own settings."""
    script = (REPO / "retrieval_lm" / name).read_text()
    text = (REPO / "retrieval_lm" / "finetune_launch.sh").read_text()
    start = text.index("FINETUNE_ARGS=(") + len("FINETUNE_ARGS=(")
    command = text[start:text.index("\n)\n", start)].replace('"$@"', "")
    values = {"BATCH_SIZE_PER_GPU": "1", "GRADIENT_ACC_STEPS": "32",
              **dict(re.findall(r"^(MODEL_SIZE|MODEL|MAX_SEQ_LENGTH)=(\S+)$", script, re.M))}
    command = re.sub(r"\$\{?(\w+)\}?", lambda m: values[m.group(1)], command)
    return shlex.split(command)


@pytest.mark.parametrize("script, max_len", [("script_finetune_7b.sh", 2048),
                                             ("script_finetune_13b.sh", 1536)])
def test_launch_script_command_lines_parse(script, max_len):
    args = finetune.parse_args(script_flags(script))
    assert args.max_seq_length == max_len and args.use_special_tokens and args.use_flash_attn
    assert (args.learning_rate, args.warmup_ratio, args.gradient_accumulation_steps) == (2e-5, 0.03, 32)
    assert args.report_to == "tensorboard" and args.logging_steps == 1


def test_original_defaults_are_kept():
    args = finetune.parse_args(["--train_file", "x.jsonl", "--output_dir", "o"])
    assert (args.max_seq_length, args.per_device_train_batch_size, args.learning_rate) == (512, 8, 5e-5)
    assert (args.num_train_epochs, args.lr_scheduler_type, args.lora_rank, args.lora_alpha,
            args.lora_dropout, args.report_to) == (3, "linear", 64, 16, 0.1, "all")


def test_tiny_launch_script_command_runs_on_cpu(tiny_model_path, train_file, tmp_path):
    """The 7B script's flags with the tiny model (no flash-attn or DeepSpeed on CPU, 2 steps)."""
    flags = script_flags("script_finetune_7b.sh")
    drop = {"--use_flash_attn"}  # --with_tracking stays: trackers that are not installed are skipped
    replace = {"--model_name_or_path": tiny_model_path, "--tokenizer_name": tiny_model_path,
               "--train_file": train_file, "--max_seq_length": "64",
               "--preprocessing_num_workers": "1", "--gradient_accumulation_steps": "2",
               "--output_dir": str(tmp_path / "script_out"), "--report_to": "tensorboard"}
    argv, skip = [], False
    for i, flag in enumerate(flags):
        if skip:
            skip = False
            continue
        if flag in drop:
            continue
        argv.append(flag)
        if flag in replace:
            argv.append(replace[flag])
            skip = True
    assert finetune.main(argv + ["--max_train_steps", "2"]) == 0
    assert (tmp_path / "script_out" / "config.json").is_file()


def test_base_model_gets_reflection_tokens_and_a_pad_token(plain_tiny_model_path, train_file,
                                                           tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from selfrag.tokens import reflection_token_ids

    out = tmp_path / "from_base"
    assert run(plain_tiny_model_path, train_file, out, "--max_train_steps", "2") == 0
    tokenizer = AutoTokenizer.from_pretrained(out)
    model = AutoModelForCausalLM.from_pretrained(out)
    assert len(tokenizer) == 49152 + 16 and tokenizer.pad_token == "<pad>"
    assert model.get_input_embeddings().weight.shape[0] == len(tokenizer)
    assert reflection_token_ids(tokenizer).all_ids == list(range(49152, 49167))


def test_missing_pad_token_pads_with_eos_and_says_so(plain_tiny_model_path, train_file, tmp_path,
                                                      caplog):
    out = tmp_path / "no_pad"
    argv = ["--model_name_or_path", plain_tiny_model_path, "--train_file", train_file,
            "--max_seq_length", "64", "--per_device_train_batch_size", "4",
            "--max_train_steps", "1", "--output_dir", str(out)]
    with caplog.at_level("WARNING"):
        assert finetune.main(argv) == 0
    assert "no pad token: padding with eos" in caplog.text
