"""Measurements of the reproduction that run a model directly (no entry point does them).

- :func:`agreement`: how often the trained critic predicts the teacher's label on held-out critic
  SFT instances, per reflection-token type (the paper reports the critic's agreement with GPT-4,
  paper §3.2.1 / Table 4).
- :func:`retrieval_probabilities`: ``p([Retrieval]) / (p([Retrieval]) + p([No Retrieval]))`` at
  the first response position of each instruction (paper A.3), the quantity the adaptive
  threshold is compared with; :func:`first_position_ratios` is the same for any token pair.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence

from selfrag.data_creation.critic.labels import parse_label
from selfrag.data_creation.generator.critic_runs import critic_prompt, generate_predictions
from selfrag.io import read_records

#: Held-out agreement (IsRel and IsSup) the critic needs before its labels train the generator.
CRITIC_GATE = 0.85

#: Critic SFT ``task`` -> label kind (:data:`selfrag.data_creation.critic.labels.KINDS`) and table
#: name.
TASK_KINDS = {"retrieval": ("retrieval", "Retrieve"), "multi_retrieval": ("multi_retrieval_three_way", "Retrieve"),
              "relevance": ("relevance", "IsRel"), "groundness": ("groundness", "IsSup"),
              "groudness": ("groundness", "IsSup"), "utility": ("utility", "IsUse")}


def agreement(model: str, dev_file: str | os.PathLike, journal: str | os.PathLike | None = None,
              batch_size: int = 10) -> dict:
    """Per token type: instances, agreements, share, and the confusion of (teacher, critic)."""
    from selfrag.lm import load_lm

    instances = [r for _, r in read_records(dev_file)]
    prompts = [critic_prompt(r["instruction"], r["input"]) for r in instances]
    lm = load_lm("hf", model, device="cpu", batch_size=batch_size)
    replies = generate_predictions(lm, prompts, batch_size=batch_size, journal_path=journal,
                                   fingerprint={"model": model})
    totals, agreed, confusion = Counter(), Counter(), Counter()
    for instance, reply in zip(instances, replies):
        kind, name = TASK_KINDS[instance["task"]]
        predicted = parse_label(kind, reply).label
        totals[name] += 1
        agreed[name] += predicted == instance["output"]
        confusion[f"{name}: {instance['output']} -> {predicted}"] += 1
    return {name: {"n": totals[name], "agree": agreed[name],
                   "agreement": round(agreed[name] / totals[name], 4)} for name in sorted(totals)} | {
        "confusion": dict(sorted(confusion.items()))}


def first_position_ratios(lm, prompts: Sequence[str], token: str, other: str) -> list[float]:
    """``p(token) / (p(token) + p(other))`` at the first generated position of each prompt."""
    from selfrag.inference.scoring import group_distribution
    from selfrag.lm import GenerationRequest
    from selfrag.tokens import reflection_token_ids

    request = GenerationRequest(1, control_ids=tuple(reflection_token_ids(lm.tokenizer).all_ids))
    return [float(group_distribution(g.control_logprobs[0], (other, token))[1])
            for g in lm.generate(list(prompts), request)]


def retrieval_probabilities(lm, instructions: Sequence[str]) -> list[float]:
    """The adaptive-retrieval score of each instruction (paper A.3), one generated position each."""
    from selfrag.prompts import format_prompt
    from selfrag.tokens import NO_RETRIEVAL, RETRIEVAL

    return first_position_ratios(lm, [format_prompt(i) for i in instructions], RETRIEVAL,
                                 NO_RETRIEVAL)
