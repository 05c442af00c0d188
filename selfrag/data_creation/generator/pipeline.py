"""The whole generator-data pipeline (the steps of the original ``data_creation/generator/``) in
one work folder, step by step, resumable.

Steps (each writes an inspectable JSONL in the work folder):

====  ==============================  =====================================================
 1    01_retrieval_input_only.jsonl   Retrieve label of each item (input only)
 2    02_utility.jsonl                IsUse label of each (instruction, output)
 3    03_initial_queries.jsonl        query ``instruction + " " + output``
 4    04_initial_retrieval.jsonl      + ``ctxs`` (top ``n_docs``)
 5    05_sentences.jsonl              sentence instances (+ ``05_sentences_splitted.jsonl``)
 6    06_multi_retrieval.jsonl        Retrieve label of each later sentence
 7    07_sentence_retrieval.jsonl     + ``ctxs`` for each sentence that retrieves
 8    08_prompt_data.jsonl            (sentence x passage) pairs, top ``top_n``
 9    09_relevance.jsonl              IsRel of each pair
10    10_groundness.jsonl             IsSup of each Relevant pair (faithful: every pair)
11    generator_data.jsonl / .json    the training instances; summary.json
====  ==============================  =====================================================

A step whose outputs exist and whose fingerprint (settings, judge, and the content of its input
files) matches ``.steps/<step>.json`` is skipped; a critic step interrupted midway resumes from
its journal in ``.journals/``. Outputs are written atomically. Every random choice is seeded.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from selfrag.data_creation.generator.assembly import Assembler, AssemblyInputs
from selfrag.data_creation.generator.judges import Judge
from selfrag.data_creation.generator.prompt_data import make_pairs, select_sentences, sentence_key
from selfrag.data_creation.generator.records import load_items
from selfrag.data_creation.generator.retrieval_data import initial_queries, sentence_instances
from selfrag.data_creation.generator.sentences import Splitter
from selfrag.data_creation.generator.validate import validate_instance
from selfrag.errors import SelfRagError
from selfrag.io import read_records, write_json_atomic, write_jsonl_atomic
from selfrag.locks import output_lock
from selfrag.tokens import RELEVANT

logger = logging.getLogger(__name__)

OUTPUT_NAME = "generator_data"


@dataclass(frozen=True)
class PipelineConfig:
    """Settings of a pipeline run.

    Attributes:
        input_file: items ``{instruction, output, input, id, dataset_name[, answers]}``.
        work_dir: folder of every step's output.
        faithful: the original's rules (critic prompt, filters, sampling), see the modules.
        seed: seed of all random choices.
        n_docs: passages retrieved per query (initial and per sentence).
        top_n: passages per sentence labelled for IsRel / IsSup.
        multi_retrieval_task: ``multi_retrieval`` (two-way) or ``multi_retrieval_three_way``.
        splitter: ``auto``, ``en_core_web_sm`` or ``sentencizer``.
    """

    input_file: str
    work_dir: str
    faithful: bool = False
    seed: int = 0
    n_docs: int = 10
    top_n: int = 10
    multi_retrieval_task: str = "multi_retrieval"
    splitter: str = "auto"

    def __post_init__(self):
        if self.n_docs < 1 or self.top_n < 1:
            raise SelfRagError("--n_docs and --top_n must be at least 1")
        if self.multi_retrieval_task not in ("multi_retrieval", "multi_retrieval_three_way"):
            raise SelfRagError("--multi_retrieval_task: multi_retrieval or "
                               "multi_retrieval_three_way")


def file_digest(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def _read(path: Path) -> list[dict]:
    """A stage's own output (a stage may legitimately keep nothing)."""
    return [record for _, record in read_records(path, allow_empty=True)]


class Pipeline:
    """Runs the steps of the module docstring.

    Args:
        config: the settings.
        judge: labels the critic steps (a critic LM or the gold-answer judge).
        retriever: anything with ``search_batch(queries, n_docs)`` (a
            :class:`~selfrag.retrieval.retriever.Retriever`).
    """

    def __init__(self, config: PipelineConfig, judge: Judge, retriever):
        self.config, self.judge, self.retriever = config, judge, retriever
        self.work = Path(config.work_dir)
        self.ran: list[str] = []
        self.skipped: list[str] = []
        self._splitter: Splitter | None = None

    def path(self, name: str) -> Path:
        return self.work / name

    @property
    def splitter(self) -> Splitter:
        if self._splitter is None:
            self._splitter = Splitter(self.config.splitter)
        return self._splitter

    # ------------------------------------------------------------------ step machinery
    def _step(self, name: str, inputs: Sequence[Path], outputs: Sequence[str],
              build: Callable[[], Mapping[str, list[dict]]], settings: Mapping | None = None) -> None:
        """Run ``build`` (returning ``{output name: records}``) unless its outputs are current."""
        stamp_path = self.work / ".steps" / f"{name}.json"
        stamp = {"step": name, "config": asdict(self.config), "judge": self.judge.fingerprint(),
                 "inputs": {p.name: file_digest(p) for p in inputs}, **(settings or {})}
        stamp = json.loads(json.dumps(stamp, sort_keys=True))
        if (all(self.path(o).is_file() for o in outputs) and stamp_path.is_file()
                and json.loads(stamp_path.read_text(encoding="utf-8")) == stamp):
            logger.info("step %s: outputs are current, skipped", name)
            self.skipped.append(name)
            return
        logger.info("step %s: running", name)
        for output, records in build().items():
            write_jsonl_atomic(self.path(output), records)
        write_json_atomic(stamp_path, stamp)
        self.ran.append(name)

    def _critic_step(self, name: str, task: str, source: Path, output: str,
                     select: Callable[[list[dict]], list[dict]] = lambda r: r) -> None:
        journal = self.work / ".journals" / f"{name}.jsonl"

        def build():
            records = select(_read(source))
            labelled = self.judge.label(task, records, source=str(source), journal_path=journal)
            return {output: labelled}

        self._step(name, [source], [output], build, {"task": task})
        journal.unlink(missing_ok=True)

    def _retrieval_step(self, name: str, source: Path, output: str) -> None:
        def build():
            records = _read(source)
            queries = [r["question"] for r in records]
            ctxs = self.retriever.search_batch(queries, self.config.n_docs) if queries else []
            return {output: [{**r, "ctxs": c} for r, c in zip(records, ctxs)]}

        self._step(name, [source], [output], build)

    # ------------------------------------------------------------------ the steps
    def run(self) -> dict:
        """Run (or resume) every step; returns the summary (also written to summary.json)."""
        cfg = self.config
        self.work.mkdir(parents=True, exist_ok=True)
        items = load_items(cfg.input_file)
        self._step("00_items", [Path(cfg.input_file)], ["00_items.jsonl"],
                   lambda: {"00_items.jsonl": items})
        items_path = self.path("00_items.jsonl")
        self._critic_step("01_retrieval_input_only", "retrieval", items_path,
                          "01_retrieval_input_only.jsonl")
        self._critic_step("02_utility", "utility", items_path, "02_utility.jsonl")
        self._step("03_initial_queries", [items_path], ["03_initial_queries.jsonl"],
                   lambda: {"03_initial_queries.jsonl": initial_queries(items)})
        self._retrieval_step("04_initial_retrieval", self.path("03_initial_queries.jsonl"),
                             "04_initial_retrieval.jsonl")
        self._step("05_sentences", [items_path, self.path("01_retrieval_input_only.jsonl"),
                                    self.path("04_initial_retrieval.jsonl")],
                   ["05_sentences.jsonl", "05_sentences_splitted.jsonl"], self._sentences,
                   {"splitter": self.splitter.name})
        later = (lambda rs: rs) if cfg.faithful else (
            lambda rs: [r for r in rs if int(r["sent_idx"]) > 0])
        self._critic_step("06_multi_retrieval", cfg.multi_retrieval_task,
                          self.path("05_sentences.jsonl"), "06_multi_retrieval.jsonl", later)
        self._step("07_sentence_queries", [self.path("05_sentences.jsonl"),
                                           self.path("06_multi_retrieval.jsonl")],
                   ["07_sentence_queries.jsonl"], self._sentence_queries)
        self._retrieval_step("07_sentence_retrieval", self.path("07_sentence_queries.jsonl"),
                             "07_sentence_retrieval.jsonl")
        self._step("08_prompt_data", [self.path("07_sentence_retrieval.jsonl")],
                   ["08_prompt_data.jsonl"],
                   lambda: {"08_prompt_data.jsonl": make_pairs(
                       _read(self.path("07_sentence_retrieval.jsonl")), cfg.top_n)})
        self._critic_step("09_relevance", "relevance", self.path("08_prompt_data.jsonl"),
                          "09_relevance.jsonl")
        relevant = (lambda rs: rs) if cfg.faithful else (
            lambda rs: [r for r in rs if r.get("label") == RELEVANT])
        self._critic_step("10_groundness", "groudness", self.path("09_relevance.jsonl"),
                          "10_groundness.jsonl", relevant)
        return self._assemble(items_path)

    def _sentences(self) -> dict[str, list[dict]]:
        items = _read(self.path("00_items.jsonl"))
        labels = {r["id"]: r["label"] for r in _read(self.path("01_retrieval_input_only.jsonl"))}
        ctxs = {r["q_id"]: r["ctxs"] for r in _read(self.path("04_initial_retrieval.jsonl"))}
        sentences, splitted, counts = sentence_instances(items, ctxs, labels, self.splitter,
                                                         self.config.faithful)
        logger.info("sentences: %s", counts)
        return {"05_sentences.jsonl": sentences, "05_sentences_splitted.jsonl": splitted}

    def _sentence_queries(self) -> dict[str, list[dict]]:
        multi = {sentence_key(r): r for r in _read(self.path("06_multi_retrieval.jsonl"))}
        kept, counts = select_sentences(_read(self.path("05_sentences.jsonl")), multi,
                                        self.config.faithful)
        logger.info("sentences needing passages: %s", counts)
        return {"07_sentence_queries.jsonl": kept}

    def _assemble(self, items_path: Path) -> dict:
        inputs = [items_path] + [self.path(n) for n in (
            "01_retrieval_input_only.jsonl", "02_utility.jsonl", "05_sentences_splitted.jsonl",
            "06_multi_retrieval.jsonl", "09_relevance.jsonl", "10_groundness.jsonl")]
        outputs = [f"{OUTPUT_NAME}.jsonl", "summary.json"]
        summary_box: dict = {}

        def build():
            data = AssemblyInputs(
                items=_read(items_path),
                initial={r["id"]: r for r in _read(inputs[1])},
                utility={r["id"]: r for r in _read(inputs[2])},
                splitted={r["q_id"]: r for r in _read(inputs[3])},
                multi={sentence_key(r): r for r in _read(inputs[4])},
                relevance=_read(inputs[5]), groundness=_read(inputs[6]))
            assembler = Assembler(data, faithful=self.config.faithful, seed=self.config.seed,
                                  judge=self.judge.name)
            records = assembler.run()
            invalid = sum(bool(validate_instance(r)) for r in records)
            summary_box.update(self._summary(assembler.report.as_dict(), len(data.items),
                                             invalid))
            write_json_atomic(self.path(f"{OUTPUT_NAME}.json"), records, indent=1)
            write_json_atomic(self.path("summary.json"), summary_box, indent=1)
            return {f"{OUTPUT_NAME}.jsonl": records}

        self._step("11_assembly", inputs, outputs + [f"{OUTPUT_NAME}.json"], build)
        if not summary_box:
            summary_box.update(json.loads(self.path("summary.json").read_text(encoding="utf-8")))
        logger.info("generator data: %d of %d items kept (judge: %s) -> %s",
                    summary_box["kept"], summary_box["items"], summary_box["judge"],
                    self.path(f"{OUTPUT_NAME}.jsonl"))
        return summary_box

    def _summary(self, report: dict, n_items: int, invalid: int) -> dict:
        unparseable = {}
        for name in ("01_retrieval_input_only", "02_utility", "06_multi_retrieval",
                     "09_relevance", "10_groundness"):
            records = _read(self.path(f"{name}.jsonl"))
            unparseable[name] = {"records": len(records),
                                 "unparseable": sum(r.get("label") is None for r in records),
                                 "problems": dict(Counter(r.get("problem") for r in records
                                                          if r.get("label") is None))}
        return {"judge": self.judge.name, "mode": "faithful" if self.config.faithful else "paper",
                "seed": self.config.seed, "splitter": self.splitter.name, "items": n_items,
                "kept": report["kept"], "invalid_outputs": invalid, "critic_steps": unparseable,
                "assembly": report, "output": str(self.path(f"{OUTPUT_NAME}.jsonl"))}


def run_pipeline(config: PipelineConfig, judge: Judge, retriever) -> dict:
    """Run (or resume) the pipeline; returns the summary. One run per work folder at a time."""
    with output_lock(config.work_dir, "--work_dir"):
        return Pipeline(config, judge, retriever).run()
