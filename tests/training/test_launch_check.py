"""The GPU launch scripts check what they need up front and fail in one line."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from selfrag.training.launch_check import launch_problems

ROOT = Path(__file__).resolve().parents[2]


def test_nothing_missing_when_gpus_tools_file_and_model_are_there(tmp_path, tiny_model_path,
                                                                   monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "train.jsonl").write_text("{}\n")
    args = ["--model_name_or_path", tiny_model_path, "--train_file", "train.jsonl"]
    problems = launch_problems(4, args, gpu_count=4)
    # accelerate and DeepSpeed are installed here (requirements.txt)
    assert problems == []


def test_every_missing_piece_is_named(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    args = ["--model_name_or_path", "meta-llama/Llama-2-7b-hf", "--use_flash_attn",
            "--train_file", "train.jsonl", "--train_file", "later.jsonl"]  # the last one counts
    problems = launch_problems(4, args, gpu_count=1)
    assert problems[0].startswith("4 GPUs (found 1")
    assert any("flash-attn" in p for p in problems)
    assert any(str(tmp_path / "later.jsonl") in p for p in problems)
    assert any("meta-llama/Llama-2-7b-hf" in p and "not in the Hugging Face cache" in p
               for p in problems)


@pytest.mark.parametrize("script", ["script_finetune_7b.sh", "script_finetune_13b.sh"])
def test_launch_script_stops_in_one_line_before_starting_processes(tmp_path, script):
    # A fake environment: no GPU (this machine), an `accelerate` that records being called,
    # no train.jsonl, no network. The script must stop before `accelerate launch`.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    called = tmp_path / "accelerate_called"
    fake = bin_dir / "accelerate"
    fake.write_text(f"#!/bin/sh\ntouch {called}\n")
    fake.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
           "HF_HUB_OFFLINE": "1", "CUDA_VISIBLE_DEVICES": ""}
    env.pop("PYTHONPATH", None)
    result = subprocess.run(["bash", str(ROOT / "retrieval_lm" / script)], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 2 and not called.exists()
    errors = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(errors) == 1 and errors[0].startswith(f"error: {script} cannot start, missing: ")
    assert "4 GPUs (found 0" in errors[0] and "train.jsonl" in errors[0]
