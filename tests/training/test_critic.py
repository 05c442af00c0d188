"""data_creation/train_special_tokens.py: the original HF-style command line on transformers 5."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import train_special_tokens as critic_cli

REPO = Path(__file__).resolve().parents[2]


README_FLAGS = ["--bf16", "True", "--num_train_epochs", "3", "--per_device_train_batch_size", "1", "--gradient_accumulation_steps", "8", "--learning_rate", "2e-5", "--weight_decay", "0", "--warmup_ratio", "0.01", "--lr_scheduler_type", "cosine", "--save_steps", "300", "--save_total_limit", "1", "--logging_steps", "10"]


@pytest.fixture(autouse=True)
def fresh_accelerate_state():
    from accelerate.state import AcceleratorState, GradientState, PartialState

    yield
    AcceleratorState._reset_state(True)
    GradientState._reset_state()
    PartialState._reset_state()


@pytest.fixture
def data_path(tmp_path) -> str:
    items = [{"instruction": "Is the evidence relevant? Answer [Relevant] or [Irrelevant].",
              "input": f"Task instruction: q{i}\nEvidence: {'cats purr' if i % 2 else 'stocks fell'}",
              "output": "[Relevant]" if i % 2 else "[Irrelevant]"} for i in range(16)]
    path = tmp_path / "critic_train.json"
    path.write_text(json.dumps(items))
    return str(path)


def test_readme_flags_map_onto_the_training_config(tmp_path):
    from transformers import HfArgumentParser

    from selfrag.training.critic import train_config_from_hf

    parser = HfArgumentParser((critic_cli.ModelArguments, critic_cli.DataArguments,
                               critic_cli.CriticTrainingArguments))
    argv = critic_cli._with_cpu_flag(["--output_dir", str(tmp_path), "--data_path", "x.json",
                                      *README_FLAGS, "--fsdp", "full_shard auto_wrap",
                                      "--separated", "True"])
    model_args, _data_args, args = parser.parse_args_into_dataclasses(argv)
    assert model_args.model_name_or_path == "facebook/opt-125m" and args.model_max_length == 512
    assert args.fsdp and args.fsdp_config["reshard_after_forward"] is True
    config = train_config_from_hf(args, args.warmup_ratio, args.model_max_length, args.batching)
    assert (config.lr_scheduler_type, config.warmup_ratio, config.checkpointing_steps,
            config.keep_last, config.logging_steps, config.checkpoint_prefix) == (
        "cosine", 0.01, 300, 1, 10, "checkpoint-")
    assert (config.per_device_train_batch_size, config.gradient_accumulation_steps,
            config.learning_rate, config.num_train_epochs) == (1, 8, 2e-5, 3)


def test_old_training_argument_names_are_accepted(tmp_path):
    from transformers import HfArgumentParser

    from selfrag.training.critic import modern_training_argv

    argv = modern_training_argv(["--output_dir", str(tmp_path), "--data_path", "x.json",
                                 "--evaluation_strategy", "no", "--per_gpu_train_batch_size=2",
                                 "--fsdp_transformer_layer_cls_to_wrap", "LlamaDecoderLayer",
                                 "--overwrite_output_dir", "True", "--logging_dir", "logs"])
    assert argv[4:6] == ["--eval_strategy", "no"] and argv[6] == "--per_device_train_batch_size=2"
    parser = HfArgumentParser((critic_cli.ModelArguments, critic_cli.DataArguments,
                               critic_cli.CriticTrainingArguments))
    *_, args = parser.parse_args_into_dataclasses(critic_cli._with_cpu_flag(argv))
    assert str(getattr(args.eval_strategy, "value", args.eval_strategy)) == "no"
    assert args.per_device_train_batch_size == 2


def test_critic_trains_single_process_and_reloads(tiny_model_path, data_path, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = tmp_path / "critic"
    argv = ["--model_name_or_path", tiny_model_path, "--data_path", data_path,
            "--output_dir", str(out), *README_FLAGS, "--bf16", "False", "--num_train_epochs", "1",
            "--gradient_accumulation_steps", "2", "--learning_rate", "5e-3", "--logging_steps", "1",
            "--use_special_token", "True", "--use_context_markups", "True"]
    assert critic_cli.main(argv) == 0
    log = [json.loads(x) for x in (out / "train_log.jsonl").read_text().splitlines()]
    assert len(log) == 8 and log[-1]["loss"] < log[0]["loss"]
    assert AutoModelForCausalLM.from_pretrained(out) is not None
    assert "[Relevant]" in AutoTokenizer.from_pretrained(out).get_vocab()


def test_trainable_layers_leave_the_lower_layers_as_they_were(tiny_model_path, data_path,
                                                              tmp_path):
    from transformers import AutoModelForCausalLM

    out = tmp_path / "critic"
    argv = ["--model_name_or_path", tiny_model_path, "--data_path", data_path,
            "--output_dir", str(out), "--num_train_epochs", "1", "--learning_rate", "5e-3",
            "--per_device_train_batch_size", "4", "--use_special_token", "True",
            "--trainable_layers", "1"]
    assert critic_cli.main(argv) == 0
    before, after = (AutoModelForCausalLM.from_pretrained(p).get_decoder().layers
                     for p in (tiny_model_path, out))
    for layer, frozen in ((0, True), (1, False)):
        same = [bool(torch.equal(a, b)) for a, b in zip(before[layer].parameters(),
                                                        after[layer].parameters())]
        assert all(same) if frozen else not any(same), layer


def test_critic_reports_a_bad_record(tiny_model_path, tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"instruction": "a", "output": "b"}, {"input": "x", "output": "y"}]))
    argv = ["--model_name_or_path", tiny_model_path, "--data_path", str(bad),
            "--output_dir", str(tmp_path / "o")]
    assert critic_cli.main(argv) == 2
    assert "bad.json, line 2: field 'instruction': missing" in capsys.readouterr().err


@pytest.mark.parametrize("case", ["bad data", "output is a file"])
def test_data_and_output_folder_are_checked_before_the_model_loads(tmp_path, capsys, data_path,
                                                                   case):
    # issue 12 item 10: the model path does not exist, so any load would fail differently
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"instruction": "a", "output": "b"}, {"input": "x", "output": "y"}]))
    out = tmp_path / "o"
    if case == "output is a file":
        out.write_text("x")
    argv = ["--model_name_or_path", str(tmp_path / "no-such-model"), "--data_path",
            str(bad) if case == "bad data" else data_path, "--output_dir", str(out)]
    assert critic_cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.endswith("bad.json, line 2: field 'instruction': missing\n" if case == "bad data"
                        else f"error: --output_dir {out}: is a file, not a folder\n"), err
