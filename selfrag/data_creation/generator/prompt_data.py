"""(Sentence x passage) pairs for the IsRel and IsSup critics (the original
``create_prompt_data.py``).

Which sentences get passages: sentence 0 always (its Retrieve decision is the initial one);
a later sentence when its multi-sentence Retrieve label asks for evidence (``[Retrieval]``, or
``[Continue to Use Evidence]``). An unparseable label gives no pairs and is counted (the instance
cannot be assembled). ``faithful=True`` applies the original's test instead: a later sentence is
skipped when its raw prediction contains "No Retrieval".

Each pair: ``{id, q_id, instruction, output, evidence: "title\\ntext", title, text, score, p_idx,
target_output, preceding_sentences, sent_idx, dataset_name}``. For task datasets the task
instruction is put back in front (``TASK_INST + "## Input:\\n\\n"``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from selfrag.prompts import long_form_instruction, passage_text
from selfrag.tokens import CONTINUE_EVIDENCE, NO_RETRIEVAL, RETRIEVAL


def sentence_key(record: Mapping) -> str:
    """``q_id#sent_idx``: the key of a sentence across files."""
    return f"{record['q_id']}#{int(record['sent_idx'])}"


def needs_passages(sentence: Mapping, multi: Mapping | None, faithful: bool = False) -> bool | None:
    """Whether a sentence instance gets (sentence x passage) pairs; ``None``: unparseable label.

    Args:
        sentence: a sentence instance.
        multi: its multi-sentence Retrieve record (``pred``, ``label``), absent for sentence 0.
    """
    if int(sentence["sent_idx"]) == 0:
        return True
    if multi is None:
        return None
    if faithful:
        return NO_RETRIEVAL.strip("[]") not in multi["pred"]
    if multi["label"] is None:
        return None
    return multi["label"] in (RETRIEVAL, CONTINUE_EVIDENCE)


def select_sentences(sentences: Sequence[Mapping], multi_by_key: Mapping[str, Mapping],
                     faithful: bool = False) -> tuple[list[dict], dict]:
    """The sentence instances that need passages, and counts (kept, no retrieval, unparseable)."""
    kept, counts = [], {"kept": 0, "no_retrieval": 0, "unparseable": 0}
    for sentence in sentences:
        decision = needs_passages(sentence, multi_by_key.get(sentence_key(sentence)), faithful)
        if decision is None:
            counts["unparseable"] += 1
        elif decision:
            counts["kept"] += 1
            kept.append(dict(sentence))
        else:
            counts["no_retrieval"] += 1
    return kept, counts


def make_pairs(retrieved: Sequence[Mapping], top_n: int = 10) -> list[dict]:
    """One pair per sentence and each of its first ``top_n`` passages (``ctxs``)."""
    pairs = []
    for sentence in retrieved:
        instruction = long_form_instruction(sentence["instruction"], sentence["dataset_name"])
        for p_idx, ctx in enumerate(sentence.get("ctxs", [])[:top_n]):
            pairs.append({
                "id": sentence["q_id"], "q_id": sentence["q_id"], "instruction": instruction,
                "output": sentence["output"], "evidence": passage_text(ctx),
                "title": ctx.get("title") or "", "text": ctx["text"],
                "score": float(ctx.get("score") or 0.0), "p_idx": p_idx,
                "target_output": sentence["target_output"],
                "preceding_sentences": sentence.get("preceding_sentences"),
                "sent_idx": int(sentence["sent_idx"]), "dataset_name": sentence["dataset_name"],
            })
    return pairs


def split_jobs(records: Sequence, num_jobs: int) -> list[list]:
    """``records`` in ``num_jobs`` consecutive parts whose sizes differ by at most one.

    Every record lands in a part (the original dropped the last ``len % num_jobs``).
    """
    if num_jobs < 1:
        raise ValueError("num_jobs must be at least 1")
    size, extra = divmod(len(records), num_jobs)
    parts, start = [], 0
    for j in range(num_jobs):
        end = start + size + (1 if j < extra else 0)
        parts.append(list(records[start:end]))
        start = end
    return parts
