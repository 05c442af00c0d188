"""Retrieval queries and sentence-level instances (the original ``create_retrieval_data.py``).

Step 3 (:func:`initial_queries`): one query per item, ``instruction + " " + output`` — the paper
retrieves with the input and the *entire* output. Step 5 (:func:`sentence_instances`): the output
is split into sentences, each becoming an instance for the multi-sentence Retrieve critic and,
later, for per-sentence retrieval.

Fixed here: the original meant to skip instances whose initial Retrieve decision is "no" but
compared a string with ``False``, so it never did; here they are skipped (``faithful=True`` keeps
every instance). Preceding sentences are the output's own text up to the sentence (the original
re-joined stripped sentences with single spaces).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from selfrag.data_creation.generator.sentences import Sentence, Splitter
from selfrag.prompts import passage_text
from selfrag.tokens import RETRIEVAL

#: Datasets whose instruction starts with a task instruction to strip (as the original).
TASK_DATASETS = ("nq", "wow", "fever", "tqa", "arc_easy", "arc_hard", "obqa", "qrecc", "race",
                 "asqa")
_INPUT_MARKERS = ("## Input:\n\n", "\n\nInput: ")


def question_part(instruction: str, dataset: str) -> str:
    """For task datasets, the text after the task instruction (``## Input:`` block); else all."""
    if dataset in TASK_DATASETS:
        for marker in _INPUT_MARKERS:
            if marker in instruction:
                return instruction.split(marker, 1)[1]
    return instruction


def initial_queries(items: Sequence[Mapping]) -> list[dict]:
    """Step 3: ``{question: instruction + " " + output, answers: [output], q_id, dataset_name}``."""
    queries = []
    for item in items:
        instruction = question_part(item["instruction"], item["dataset_name"])
        queries.append({"question": f"{instruction} {item['output']}", "answers": [item["output"]],
                        "q_id": item["id"], "dataset_name": item["dataset_name"]})
    return queries


def sentence_instruction(item: Mapping) -> str:
    """The instruction of sentence instances: question part plus a non-empty ``input``."""
    instruction = question_part(item["instruction"], item["dataset_name"])
    return f"{instruction} {item['input']}" if item.get("input") else instruction


def preceding_text(sentences: Sequence[Sentence], k: int, faithful: bool = False) -> str | None:
    """The output before sentence ``k`` (``None`` for the first). ``faithful``: the original's
    single-space re-join of the stripped sentences."""
    if k == 0:
        return None
    if faithful:
        return " ".join(s.text for s in sentences[:k])
    return "".join(s.text + s.separator for s in sentences[:k]).rstrip()


def sentence_instances(items: Sequence[Mapping], initial_ctxs: Mapping[str, Sequence[Mapping]],
                       initial_labels: Mapping[str, str | None], splitter: Splitter,
                       faithful: bool = False) -> tuple[list[dict], list[dict], dict]:
    """Step 5: sentence instances and one ``_splitted`` record per item.

    Args:
        items: the input items.
        initial_ctxs: ``q_id`` -> passages of the initial retrieval (best first).
        initial_labels: ``id`` -> initial Retrieve label (a token or ``None`` if unparseable).
        splitter: the sentence splitter.
        faithful: keep every item (the original's filter never fired) and the original's
            preceding-sentence text.

    Returns:
        ``(sentence records, splitted records, counts)``.
    """
    sentences_out, splitted, counts = [], [], {"items": 0, "skipped_no_retrieval": 0,
                                               "sentences": 0, "short_sentences": 0}
    for item in items:
        q_id = item["id"]
        if not faithful and initial_labels.get(q_id) != RETRIEVAL:
            counts["skipped_no_retrieval"] += 1
            continue
        counts["items"] += 1
        sentences = splitter.split(item["output"])
        instruction = sentence_instruction(item)
        ctxs = initial_ctxs.get(q_id) or []
        evidence = item.get("evidence") or (passage_text(ctxs[0]) if ctxs else None)
        splitted.append({
            "q_id": q_id, "dataset_name": item["dataset_name"], "instruction": instruction,
            "output": item["output"], "splitted_output": [s.text for s in sentences],
            "separators": [s.separator for s in sentences],
            "skipped": {str(k): s.skipped for k, s in enumerate(sentences)},
            "splitter": splitter.name,
        })
        for k, sentence in enumerate(sentences):
            if sentence.skipped:
                counts["short_sentences"] += 1
                continue
            counts["sentences"] += 1
            sentences_out.append({
                "question": f"{instruction} {sentence.text}", "answers": [sentence.text],
                "output": item["output"], "target_output": sentence.text,
                "instruction": instruction,
                "preceding_sentences": preceding_text(sentences, k, faithful), "q_id": q_id,
                "sent_idx": k, "evidence": evidence, "dataset_name": item["dataset_name"],
            })
    return sentences_out, splitted, counts
