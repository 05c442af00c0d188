"""Measurements of the reproduction that run a model directly (no entry point does them).

- :func:`agreement`: how often the trained critic predicts the teacher's label on held-out critic
  SFT instances, per reflection-token type and optionally per dataset (:func:`tally`; the paper
  reports the critic's agreement with GPT-4, paper §3.2.1 / Table 4).
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
from selfrag.resume import model_identity

#: Held-out agreement (IsRel and IsSup) the critic needs before its labels train the generator.
CRITIC_GATE = 0.85

#: Critic SFT ``task`` -> label kind (:data:`selfrag.data_creation.critic.labels.KINDS`) and table
#: name.
TASK_KINDS = {"retrieval": ("retrieval", "Retrieve"), "multi_retrieval": ("multi_retrieval_three_way", "Retrieve"),
              "relevance": ("relevance", "IsRel"), "groundness": ("groundness", "IsSup"),
              "groudness": ("groundness", "IsSup"), "utility": ("utility", "IsUse")}


def agreement(model: str, dev_file: str | os.PathLike, journal: str | os.PathLike | None = None,
              batch_size: int = 10, groups: Sequence[str] | None = None) -> dict:
    """The critic ``model``'s greedy labels of ``dev_file``'s instances, scored by :func:`tally`."""
    from selfrag.lm import load_lm

    instances = [r for _, r in read_records(dev_file)]
    prompts = [critic_prompt(r["instruction"], r["input"]) for r in instances]
    lm = load_lm("hf", model, device="cpu", batch_size=batch_size)
    replies = generate_predictions(lm, prompts, batch_size=batch_size, journal_path=journal,
                                   fingerprint={"model": model_identity(model)})
    return tally(instances, replies, groups)


def tally(instances: Sequence[dict], replies: Sequence[str],
          groups: Sequence[str] | None = None) -> dict:
    """Per token type: instances, agreements and their share; the confusion of (teacher, critic);
    with ``groups`` (a name per instance, e.g. its dataset) also ``by_group``: the same per
    ``"<type> <group>"``.

    A critic that learned only which label each group usually has shows up in ``by_group``: it
    agrees on a group about as often as that group's majority label occurs.
    """
    totals, agreed, confusion = Counter(), Counter(), Counter()
    for k, (instance, reply) in enumerate(zip(instances, replies, strict=True)):
        kind, name = TASK_KINDS[instance["task"]]
        predicted = parse_label(kind, reply).label
        confusion[f"{name}: {instance['output']} -> {predicted}"] += 1
        for key in [(name, None)] + ([(name, groups[k])] if groups is not None else []):
            totals[key] += 1
            agreed[key] += predicted == instance["output"]

    def score(key):
        return {"n": totals[key], "agree": agreed[key],
                "agreement": round(agreed[key] / totals[key], 4)}

    keys = sorted(totals, key=lambda key: (key[0], key[1] or ""))
    out = {name: score((name, group)) for name, group in keys if group is None}
    if groups is not None:
        out["by_group"] = {f"{name} {group}": score((name, group)) for name, group in keys
                           if group is not None}
    return out | {"confusion": dict(sorted(confusion.items()))}


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
