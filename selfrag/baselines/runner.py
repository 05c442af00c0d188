"""A whole baseline run, like the original ``run_baseline_lm.py``: examples in, scored JSONL out,
resumable.

Modes: ``vanilla`` (no passages), ``retrieval`` (top-n passages in the prompt), ``rag_sequence``
and ``rag_token`` (one prompt per passage, marginalised, :mod:`selfrag.baselines.rag`).
Examples are processed in chunks of fixed size; each finished chunk is journaled
(:mod:`selfrag.resume`), and the output JSONL is written atomically at the end, so a killed run
resumes where it stopped and nothing is ever half-written.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from selfrag.baselines.inputs import BaselineExample, build_prompt, format_paragraph
from selfrag.baselines.postprocess import (
    applies_to_item,
    baseline_metric,
    cut_output,
    postprocess_closed,
    uses_closed_postprocessing,
)
from selfrag.baselines.rag import document_weights
from selfrag.errors import SelfRagError
from selfrag.io import write_jsonl_atomic
from selfrag.lm.base import GenerationRequest, LanguageModel
from selfrag.locks import output_lock
from selfrag.prompts import canonical_task
from selfrag.resume import run_in_chunks

logger = logging.getLogger(__name__)

MODES = ("vanilla", "retrieval", "rag_sequence", "rag_token")
RAG_MODES = ("rag_sequence", "rag_token")
#: The original sampled (temperature 0.8, top_p 0.95); the default decodes greedily.
FAITHFUL_TEMPERATURE, FAITHFUL_TOP_P = 0.8, 0.95


@dataclass(frozen=True)
class BaselineConfig:
    """Settings of a baseline run.

    Attributes:
        mode: one of :data:`MODES`.
        prompt_name: a template of the original PROMPT_DICT (already checked).
        task: ``fever``/``arc_c`` get the TASK_INST prefix; ``fever`` maps closed labels.
        top_n: passages per query (retrieval and RAG modes).
        metric: ``em``/``accuracy``/``match``/``f1`` (:func:`baseline_metric`).
        choices: closed-set candidates (``--choices``).
        batch_size: the original's batch size; only the faithful post-processing quirk uses it.
        faithful: reproduce the original's post-processing (and sampling, in the generator).
        chunk_size: examples per resume checkpoint.
    """

    mode: str = "vanilla"
    prompt_name: str = "prompt_no_input"
    task: str | None = None
    top_n: int = 1
    metric: str = "match"
    choices: tuple[str, ...] = ()
    batch_size: int = 5
    faithful: bool = False
    chunk_size: int = 64

    def __post_init__(self):
        if self.mode not in MODES:
            raise SelfRagError(f"--mode: {self.mode!r} is not one of {', '.join(MODES)}")
        for name in ("top_n", "batch_size", "chunk_size"):
            if getattr(self, name) < 1:
                raise SelfRagError(f"--{name}: must be at least 1")


class TextGenerator(Protocol):
    def generate_texts(self, prompts: Sequence[str], desc: str | None = None) -> list[str]: ...


class BackendGenerator:
    """A :class:`~selfrag.lm.base.LanguageModel` as a text generator (greedy, or the original's
    sampling with ``faithful``)."""

    def __init__(self, lm: LanguageModel, max_new_tokens: int, faithful: bool = False,
                 seed: int = 0):
        self.lm = lm
        sampling = {"temperature": FAITHFUL_TEMPERATURE, "top_p": FAITHFUL_TOP_P} if faithful else {}
        self.request = GenerationRequest(max_new_tokens, seed=seed, **sampling)

    def generate_texts(self, prompts: Sequence[str], desc: str | None = None) -> list[str]:
        return [g.text for g in self.lm.generate(prompts, self.request, desc=desc)]


class OpenAIGenerator:
    """:class:`~selfrag.lm.openai_completions.OpenAICompletionClient` as a text generator.
    Default temperature 0; faithful: 0 for the completions API, the server default for chat (as
    the original)."""

    def __init__(self, client, max_new_tokens: int, faithful: bool = False):
        self.client, self.max_new_tokens = client, max_new_tokens
        self.temperature = None if faithful and client.api == "chat" else 0.0

    def generate_texts(self, prompts: Sequence[str], desc: str | None = None) -> list[str]:
        return self.client.complete_texts(prompts, self.max_new_tokens, self.temperature,
                                          desc=desc)


def example_prompts(example: BaselineExample, config: BaselineConfig) -> tuple[list[str], str | None]:
    """The prompt(s) of one example and the paragraph shown: one prompt, or one per passage in
    the RAG modes (each with its single passage)."""
    if config.mode == "vanilla":
        return [build_prompt(config.prompt_name, example.instruction)], None
    if config.mode == "retrieval":
        paragraph = format_paragraph(example.passages)
        return [build_prompt(config.prompt_name, example.instruction, paragraph)], paragraph
    prompts = [build_prompt(config.prompt_name, example.instruction, format_paragraph([p]))
               for p in example.passages]
    return prompts, format_paragraph(example.passages)


def _run_chunk(examples: Sequence[BaselineExample], config: BaselineConfig,
               generator: TextGenerator | None, rag) -> list[dict]:
    if config.mode in RAG_MODES:
        doc_prompts = [example_prompts(e, config)[0] for e in examples]
        weights = [document_weights(e.passages) for e in examples]
        answers = rag.answer_batch(doc_prompts, weights, progress=True)
        return [{"raw": a.text, "rag": a.to_dict()} for a in answers]
    prompts = [example_prompts(e, config)[0][0] for e in examples]
    return [{"raw": text} for text in generator.generate_texts(prompts, desc="generating")]


def run_baseline(config: BaselineConfig, examples: Sequence[BaselineExample], result_fp: str,
                 fingerprint: dict, generator: TextGenerator | None = None, rag=None) -> dict:
    """Run (or resume) a baseline and write ``result_fp`` (JSONL); returns a summary.

    Args:
        generator: produces the text in ``vanilla``/``retrieval`` modes.
        rag: :class:`~selfrag.baselines.rag.RagSequence` or ``RagToken`` for the RAG modes.
    """
    with output_lock(result_fp):
        if config.mode in RAG_MODES and rag is None:
            raise SelfRagError(f"--mode {config.mode} needs a RAG model")
        if config.mode not in RAG_MODES and generator is None:
            raise SelfRagError(f"--mode {config.mode} needs a generator")

        def finish(outputs: list[dict]) -> dict:
            records, summary = assemble_records(config, examples, outputs)
            write_jsonl_atomic(result_fp, records)
            return summary

        return run_in_chunks(examples, lambda chunk: _run_chunk(chunk, config, generator, rag),
                             finish, chunk_size=config.chunk_size,
                             journal_path=result_fp + ".partial", fingerprint=fingerprint)


def final_prediction(raw: str, index: int, n_items: int, config: BaselineConfig) -> str:
    """Cut at the first blank line, then closed-set post-processing, as the original."""
    prediction = cut_output(raw)
    if not config.faithful:
        prediction = prediction.strip()
    task = canonical_task(config.task)
    if (uses_closed_postprocessing(task, config.choices)
            and applies_to_item(index, n_items, config.batch_size, config.faithful)):
        prediction = postprocess_closed(prediction, task, config.choices, config.faithful)
    return prediction


def assemble_records(config: BaselineConfig, examples: Sequence[BaselineExample],
                     outputs: Sequence[dict]) -> tuple[list[dict], dict]:
    """The input records with ``output``, ``golds``, ``metric_result``, ``instruction`` and
    ``paragraph`` added (the original's fields; plus ``metric`` and, for RAG, ``rag``), and the
    summary ``{metric, score, n, ...}``."""
    metric = baseline_metric(config.metric)
    records, results = [], []
    for index, (example, output) in enumerate(zip(examples, outputs)):
        prediction = final_prediction(output["raw"], index, len(examples), config)
        result = metric(prediction, example.golds) if example.golds else None
        record = dict(example.record)
        record.update(output=prediction, golds=example.golds, metric_result=result,
                      instruction=example.instruction, metric=config.metric)
        if config.mode != "vanilla":
            record["paragraph"] = example_prompts(example, config)[1]
        if "rag" in output:
            record["rag"] = output["rag"]
        records.append(record)
        if result is not None:
            results.append(result)
    summary = {"metric": config.metric, "score": sum(results) / len(results) if results else None,
               "n": len(results), "mode": config.mode, "task": canonical_task(config.task)}
    return records, summary
