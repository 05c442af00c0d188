"""Two-process training on CPU with real sharding: FSDP2 (critic) and DeepSpeed ZeRO-3 (generator).

HF Trainer and accelerate silently fall back to DDP for FSDP on CPU; these tests check from each
rank's own report that parameters really are split in two.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from support.ports import free_port

REPO = Path(__file__).resolve().parents[2]

# The original README's critic command line, model and paths aside.
README_CRITIC_FLAGS = ['--bf16', 'True', '--num_train_epochs', '3', '--per_device_train_batch_size', '1', '--gradient_accumulation_steps', '8', '--learning_rate', '2e-5', '--weight_decay', '0', '--warmup_ratio', '0.01', '--lr_scheduler_type', 'cosine', '--save_steps', '300', '--save_total_limit', '1', '--logging_steps', '10'] + ["--fsdp", "full_shard auto_wrap"]



def launch(command: list[str], tmp_path: Path, timeout: int = 300) -> str:
    env = dict(os.environ, OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false",
               HF_HUB_OFFLINE="1")
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-6000:]
    return output


def critic_data(path: Path, n: int = 32) -> str:
    items = [{"instruction": "When given instruction and evidence, evaluate whether the evidence "
                             "is relevant. Respond with [Relevant] or [Irrelevant].",
              "input": f"Task instruction: question {i}\nEvidence: passage {i}",
              "output": "[Relevant]" if i % 2 else "[Irrelevant]"} for i in range(n)]
    path.write_text(json.dumps(items))
    return str(path)


def rank_shares(output: str, what: str) -> dict[int, float]:
    found = re.findall(rf"{what}.*?rank (\d) holds \d+/\d+ parameter values \(([\d.]+)%\)", output)
    return {int(rank): float(share) for rank, share in found}


def assert_reloads_and_generates(folder: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from selfrag.tokens import reflection_token_ids

    model = AutoModelForCausalLM.from_pretrained(folder)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    reflection_token_ids(tokenizer)
    out = model.generate(**tokenizer("### Instruction:\nhi", return_tensors="pt"),
                         max_new_tokens=2, do_sample=False)
    assert out.shape[1] > 2


def test_critic_readme_command_under_torchrun_shards_with_fsdp2(tiny_model_path, tmp_path):
    out = tmp_path / "critic"
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
               f"--master_port={free_port()}", "data_creation/train_special_tokens.py",
               "--model_name_or_path", tiny_model_path,
               "--data_path", critic_data(tmp_path / "critic.json"), "--output_dir", str(out),
               *README_CRITIC_FLAGS, "--num_train_epochs", "1", "--model_max_length", "128",
               "--save_steps", "1", "--logging_steps", "1"]
    output = launch(command, tmp_path)
    shares = rank_shares(output, "FSDP2")
    assert sorted(shares) == [0, 1], output[-3000:]
    assert all(45 < share < 55 for share in shares.values()), shares
    # The (tied) embedding of 49167 rows is a DTensor split by rows between the two ranks.
    assert re.search(r"rank 0 holds.*input embedding DTensor local shape \[24584, 64\] of "
                     r"\[49167, 64\]", output), output[-3000:]
    assert re.search(r"rank 1 holds.*input embedding DTensor local shape \[24583, 64\]", output)
    assert '"engine": "FSDP2Engine", "world_size": 2' in output
    # 32 examples / 2 ranks / 8 accumulation = 2 steps; save_total_limit 1 keeps the last.
    assert [p.name for p in out.glob("checkpoint-*")] == ["checkpoint-2"]
    assert list((out / "checkpoint-2").glob("*.distcp"))
    assert_reloads_and_generates(out)


def test_deepspeed_zero3_two_processes_with_the_original_config(plain_tiny_model_path, tmp_path):
    """The original GPU path on CPU; the base model lacks the reflection tokens, so they are
    added to ZeRO-3-partitioned embeddings."""
    pytest.importorskip("deepspeed", reason="deepspeed not installed "
                        "(DS_BUILD_OPS=0 pip install -c constraints.txt deepspeed)")
    records = [{"instruction": f"What is item {i % 4}?",
                "output": f"[Retrieval]<paragraph>Item {i % 4}\nA thing.</paragraph>[Relevant]"
                          f"Item {i % 4} is a thing.[Fully supported][Utility:5]"} for i in range(16)]
    data = tmp_path / "train.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in records))
    out = tmp_path / "ds"
    command = [sys.executable, "-m", "accelerate.commands.launch", "--num_machines", "1",
               "--num_processes", "2", "--main_process_port", str(free_port()), "--use_deepspeed",
               "--deepspeed_config_file", "retrieval_lm/stage3_no_offloading_accelerate.conf",
               "retrieval_lm/finetune.py", "--model_name_or_path", plain_tiny_model_path,
               "--use_special_tokens", "--train_file", str(data), "--max_seq_length", "64",
               "--per_device_train_batch_size", "2", "--gradient_accumulation_steps", "2",
               "--max_train_steps", "4", "--learning_rate", "5e-3", "--logging_steps", "1",
               "--checkpointing_steps", "2", "--output_dir", str(out)]
    output = launch(command, tmp_path)
    shares = rank_shares(output, "DeepSpeed")
    assert sorted(shares) == [0, 1] and all(45 < s < 55 for s in shares.values()), output[-3000:]
    losses = [json.loads(line)["loss"] for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert len(losses) == 4 and losses[-1] < losses[0]
    ranks = sorted(p.name for p in (out / "step_2").rglob("*zero_pp_rank_*optim_states*"))
    assert len(ranks) == 2, list((out / "step_2").rglob("*"))  # one optimizer partition per rank
    assert "reflection tokens: 16 added to the tokenizer (49152 -> 49168)" in output
    assert_reloads_and_generates(out)


def test_fsdp2_checkpoint_resumes_under_torchrun(tiny_model_path, tmp_path):
    """A sharded (torch.distributed.checkpoint) critic checkpoint continues where it stopped."""
    data = critic_data(tmp_path / "critic.json", n=16)

    def command(out: Path, *extra: str) -> list[str]:
        return [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
                f"--master_port={free_port()}", "data_creation/train_special_tokens.py",
                "--model_name_or_path", tiny_model_path, "--data_path", data,
                "--output_dir", str(out), "--per_device_train_batch_size", "2",
                "--gradient_accumulation_steps", "1", "--learning_rate", "1e-3",
                "--model_max_length", "128", "--logging_steps", "1", "--save_steps", "2",
                "--lr_scheduler_type", "constant", "--fsdp", "full_shard auto_wrap", *extra]

    first, second = tmp_path / "first", tmp_path / "second"
    launch(command(first, "--num_train_epochs", "1"), tmp_path)  # 16 / 2 ranks / 2 = 4 steps
    assert (first / "checkpoint-2").is_dir() and (first / "checkpoint-4").is_dir()
    output = launch(command(second, "--num_train_epochs", "2", "--resume_from_checkpoint",
                            str(first / "checkpoint-2")), tmp_path)
    assert "resumed from" in output
    steps = [json.loads(x)["step"] for x in (second / "train_log.jsonl").read_text().splitlines()]
    assert steps == [3, 4, 5, 6, 7, 8]
    first_log = [json.loads(x)["loss"] for x in (first / "train_log.jsonl").read_text().splitlines()]
    second_log = [json.loads(x)["loss"] for x in (second / "train_log.jsonl").read_text().splitlines()]
    # Same weights, optimizer state, LR and data at steps 3-4: the same losses.
    assert second_log[:2] == pytest.approx(first_log[2:4], rel=1e-4)
