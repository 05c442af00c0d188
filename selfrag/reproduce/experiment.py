"""The small-scale Self-RAG experiment, stage by stage (``python -m selfrag.reproduce``).

Every stage calls the project's own entry points (or library), in one experiment folder:

==================  ==========================================================================
 splits             training / validation items from ``eval_data/train_pool`` (never a test
                    or reserved item), no-knowledge instructions, the 50 released instances
 evidence           retrieval corpus (the items' evidence + random Wikipedia passages),
                    embedded with the default encoder; validation items get ``ctxs``
 teacher            ``run_pipeline.py --judge gold``: the gold-answer judge plays GPT-4 and
                    labels Retrieve, IsRel, IsSup, IsUse for every training item
 critic_data        ``combine_chat_gpt_reward.py`` on a capped, seeded sample of those labels
 critic             ``train_special_tokens.py``: a SmolLM2-135M critic
 critic_eval        the critic's agreement with the teacher on held-out labels, per token type
 critic_labels      ``run_pipeline.py --judge critic`` on a share of the training items
 generator_data     critic-labelled share + teacher-labelled rest + the released instances
 generator          ``finetune.py --use_special_tokens --use_lora`` (packed batches)
 merge              the adapter merged into the base, for evaluation
 validation         ``threshold_sweep.py`` on the validation split: the adaptive threshold
                    (PopQA's split also holds held-out no-knowledge instructions)
 evaluation         baselines (``run_baseline_lm.py``) and Self-RAG (``threshold_sweep.py``,
                    which yields no-retrieval, adaptive and always-retrieve rows) per test set
 decisions          p(retrieve) on PopQA vs instructions that need no knowledge
 results            ``results.md`` / ``results.json``
==================  ==========================================================================
"""

from __future__ import annotations

import csv
import json
import logging
import os
import random
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from operator import itemgetter
from pathlib import Path

from selfrag.errors import SelfRagError
from selfrag.io import read_records, write_json_atomic, write_jsonl_atomic
from selfrag.reproduce.instructions import probe_instructions, training_instructions
from selfrag.reproduce.measurements import CRITIC_GATE
from selfrag.reproduce.results import write_results
from selfrag.reproduce.stages import ROOT, StageRunner, run_command
from selfrag.tokens import IRRELEVANT
from selfrag.training.loop import LOG_FILE

logger = logging.getLogger(__name__)

POOL = ROOT / "eval_data" / "train_pool"
RELEASED = ROOT / "eval_data" / "selfrag_train_sample50.jsonl"
TEST_SETS = {  # name: (file, --task, metric)
    "popqa": ("eval_data/popqa_longtail_w_gs.head100.jsonl", None, "match"),
    "pubhealth": ("eval_data/health_claims_processed.head100.jsonl", "fever", "accuracy"),
    "arc_c": ("eval_data/arc_challenge_processed.head100.jsonl", "arc_c", "match"),
}
THRESHOLDS = [round(0.05 * i, 2) for i in range(21)]
ALWAYS, NEVER = -1.0, 2.0  # thresholds that make the sweep's adaptive rule always / never retrieve
#: The teacher's label files that become critic SFT data, by ``combine_chat_gpt_reward.py`` flag.
CRITIC_SOURCES = {"rel_file": "09_relevance.jsonl", "multi_ground_file": "10_groundness.jsonl",
                  "ret_file": "01_retrieval_input_only.jsonl", "ut_file": "02_utility.jsonl"}
#: The label types of the critic gate: ``critic_heldout`` unused labels of each are scored too.
GATED_SOURCES = ("rel_file", "multi_ground_file")
# Sizes read only by a later stage: changing one reruns that stage and what follows it, not the
# stages before it.
STAGE_FIELDS = {
    "critic_data": ("critic_caps", "critic_dev", "critic_heldout", "critic_stratify"),
    "critic": ("critic_epochs", "critic_lr", "critic_layers"),
    "generator": ("gen_epochs", "gen_lr", "gen_batch", "gen_seq", "lora_rank", "lora_alpha"),
    "validation": ("val_no_knowledge",),
}


@dataclass(frozen=True)
class Sizes:
    """How big each stage is.

    ``FULL`` took 2 h 15 min on 2 CPU cores (the critic ~1 h 17 min of it); ``SMOKE`` is for CI.
    """

    base_model: str = "smollm2-135m"
    popqa: int = 450
    pubhealth: int = 200
    arc_c: int = 100
    no_knowledge: int = 200
    released: int = 50
    val: dict = field(default_factory=lambda: {"popqa": 40, "pubhealth": 30, "arc_c": 30})
    n_docs: int = 3                 # passages retrieved per query / labelled per sentence
    critic_caps: dict = field(default_factory=lambda: {
        "rel_file": 1300, "multi_ground_file": 1000, "ret_file": 40, "ut_file": 20})
    critic_dev: int = 100
    critic_heldout: int = 300       # unused IsRel and IsSup labels the critic is also scored on
    critic_stratify: bool = True    # balance (dataset, label) pairs, not only labels
    critic_epochs: int = 2
    critic_lr: float = 2e-4
    critic_layers: int | None = 15  # train only the top N decoder layers (None: all)
    critic_share: int = 80          # training items the critic labels (the rest: the teacher)
    gen_epochs: int = 3
    gen_lr: float = 5e-4
    gen_batch: int = 2              # packed rows of gen_seq tokens per step
    gen_seq: int = 512
    lora_rank: int = 16
    lora_alpha: float = 32
    eval_ndocs: int = 3
    eval_limit: int | None = None   # test items per set (None: all 100)
    ablation: bool = True
    probes: int = 40
    checkpoint_steps: int = 20
    val_no_knowledge: int = 40      # no-knowledge instructions in the validation of δ_PopQA


FULL = Sizes()
SMOKE = Sizes(base_model="tiny-random-llama", popqa=12, pubhealth=6, arc_c=4, no_knowledge=6,
              released=4, val={"popqa": 4, "pubhealth": 3, "arc_c": 3},
              critic_caps={"rel_file": 12, "multi_ground_file": 8, "ret_file": 4, "ut_file": 4},
              critic_dev=6, critic_heldout=6, critic_stratify=False, critic_epochs=1,
              critic_layers=1, critic_share=4, gen_epochs=1,
              gen_seq=256, eval_limit=6, ablation=True, probes=4, checkpoint_steps=5,
              val_no_knowledge=4)


def _py(script: str) -> str:
    return str(ROOT / script)


class Experiment:
    """The stages of the module docstring over one folder.

    Args:
        out_dir: the experiment folder (every stage's outputs, logs and markers).
        sizes: :data:`FULL` or :data:`SMOKE` (or your own).
        seed: seed of every random choice.
    """

    def __init__(self, out_dir: str | os.PathLike, sizes: Sizes = FULL, seed: int = 0):
        self.out = Path(out_dir).resolve()
        self.sizes, self.seed = sizes, seed
        self.runner = StageRunner(self.out)
        self.logs = self.out / "logs"

    def path(self, *parts: str) -> Path:
        return self.out.joinpath(*parts)

    def stages(self) -> list[tuple[str, dict, Callable[[], dict], tuple[str, ...]]]:
        """``(name, settings, body, fresh)`` of every stage, in order; ``fresh``: the outputs
        it resumes from, cleared when it runs with other settings (:meth:`StageRunner.run`)."""
        s = asdict(self.sizes)
        later = {name: {k: s.pop(k) for k in fields} for name, fields in STAGE_FIELDS.items()}
        evaluation = ("eval/base_*", "eval/selfrag_*", "eval/ablation_*")
        return [
            ("splits", {"sizes": s, "seed": self.seed}, self.splits, ()),
            ("evidence", {}, self.evidence, ("data/embeddings", "data/val_ctxs")),
            ("teacher", {}, self.teacher, ("teacher",)),
            ("critic_data", later["critic_data"], self.critic_data, ("critic_data",)),
            ("critic", later["critic"], self.critic, ("critic",)),
            ("critic_eval", {}, self.critic_eval, ("critic/*.journal", "critic/agreement.json")),
            ("critic_labels", {}, self.critic_labels, ("critic_share",)),
            ("generator_data", {"critic_gate": CRITIC_GATE}, self.generator_data, ()),
            ("generator", later["generator"], self.generator, ("generator/adapter",)),
            ("merge", {}, self.merge, ("generator/merged",)),
            ("validation", later["validation"], self.validation, ("eval/val_*",)),
            ("evaluation", {}, self.evaluation, evaluation),
            ("decisions", {}, self.decisions, ()),
            ("results", {}, lambda: write_results(self), ()),
        ]

    def run(self, until: str | None = None) -> dict:
        """Every stage (or those up to ``until``); returns the last one's summary."""
        stages = self.stages()
        names = [stage[0] for stage in stages]
        if until is not None and until not in names:
            raise SelfRagError(f"no stage {until!r}; the stages are {', '.join(names)}")
        for name, settings, body, fresh in stages:
            summary = self.runner.run(name, settings, body, fresh=fresh)
            if name == until:
                break
        return summary

    # ------------------------------------------------------------------ data
    def splits(self) -> dict:
        """Generator items and validation queries from the pool; ``data/`` holds them."""
        rng = random.Random(self.seed)
        sz = self.sizes
        items, val, used, counts = [], {}, {}, {}
        for task, n in (("popqa", sz.popqa), ("pubhealth", sz.pubhealth), ("arc_c", sz.arc_c)):
            pool = [r for _, r in read_records(POOL / f"{task}.jsonl")]
            rng.shuffle(pool)
            n_val = sz.val[task]
            val[task] = pool[:n_val]
            chosen = pool[n_val:n_val + n]
            items += [pool_item(task, r) for r in chosen]
            used[task] = sorted(chosen + val[task], key=lambda r: r["line"])  # pool file order
            counts[task] = {"train": len(chosen), "validation": len(val[task])}
        items += training_instructions(sz.no_knowledge, seed=self.seed)
        counts["no_knowledge"] = sz.no_knowledge
        write_jsonl_atomic(self.path("data", "items.jsonl"), items)
        for task, records in val.items():
            write_jsonl_atomic(self.path("data", f"val_{task}.jsonl"),
                               [eval_record(task, r) for r in records])
        released = [r for _, r in read_records(RELEASED)][: sz.released]
        write_jsonl_atomic(self.path("data", "released.jsonl"), released)
        counts["released"] = len(released)
        # The corpus: evidence of every training and validation question, plus distractors.
        corpus, seen = [], set()
        for task, records in used.items():
            for record in records:
                for k, passage in enumerate(record["evidence"]):
                    key = (passage["title"], passage["text"])
                    if key not in seen:
                        seen.add(key)
                        corpus.append({"id": f"{task}-{record['id']}-{k}", **passage})
        n_distractors = max(len(corpus) // 4, 10)
        corpus += [r for _, r in read_records(POOL / "distractors.jsonl")][:n_distractors]
        write_jsonl_atomic(self.path("data", "corpus.jsonl"), corpus)
        counts["corpus_passages"] = len(corpus)
        return counts

    def evidence(self) -> dict:
        run_command([_py("retrieval_lm/generate_passage_embeddings.py"),
                     "--passages", self.path("data", "corpus.jsonl"),
                     "--output_dir", self.path("data", "embeddings"),
                     "--passage_maxlength", "160", "--per_gpu_batch_size", "64"],
                    self.logs / "evidence.log")
        for task in TEST_SETS:
            self.retrieve_validation(self.path("data", f"val_{task}.jsonl"), "evidence.log")
        return {"embedded": self.runner.records["splits"]["summary"]["corpus_passages"]}

    def retrieve_validation(self, queries: Path, log_name: str) -> Path:
        """``passage_retrieval.py --data``: ``queries`` with their top passages, into
        ``data/val_ctxs/`` under the same name; returns that file."""
        out = self.path("data", "val_ctxs")
        run_command([_py("retrieval_lm/passage_retrieval.py"), *self.retriever_flags(),
                     "--data", queries, "--output_dir", out,
                     "--n_docs", str(self.sizes.eval_ndocs)], self.logs / log_name)
        return out / queries.name

    def retriever_flags(self) -> list[str]:
        return ["--passages", str(self.path("data", "corpus.jsonl")),
                "--passages_embeddings", str(self.path("data", "embeddings", "*"))]

    # ------------------------------------------------------------------ labels
    def teacher(self) -> dict:
        return self._pipeline("teacher", self.path("data", "items.jsonl"), ["--judge", "gold"])

    def _pipeline(self, name: str, items: Path, judge: list[str]) -> dict:
        n = str(self.sizes.n_docs)
        run_command([_py("data_creation/generator/run_pipeline.py"), "--input_file", items,
                     "--work_dir", self.path(name), *judge, *self.retriever_flags(),
                     "--n_docs", n, "--top_n", n, "--seed", str(self.seed)],
                    self.logs / f"{name}.log")
        return json.loads(self.path(name, "summary.json").read_text(encoding="utf-8"))

    # ------------------------------------------------------------------ critic
    def critic_data(self) -> dict:
        """The teacher's labels as critic SFT data: capped per type, seeded, held-out dev split;
        and ``critic_heldout`` more IsRel and IsSup labels that no critic trains on, balanced
        (``critic_data/heldout/``), for a measurement the small dev split cannot give."""
        from selfrag.data_creation.critic.sft_instances import SftOptions, convert_files

        rng, heldout_rng = random.Random(self.seed), random.Random(self.seed + 1)
        flags, counts, heldout = [], {}, {}
        for flag, name in CRITIC_SOURCES.items():
            records = [r for _, r in read_records(self.path("teacher", name)) if r.get("label")]
            if flag == "multi_ground_file":
                records += self._teacher_support_of_irrelevant_pairs()
            chosen = balanced_sample(records, self.sizes.critic_caps[flag], rng,
                                     itemgetter("dataset_name", "label")
                                     if self.sizes.critic_stratify else itemgetter("label"))
            target = self.path("critic_data", name)
            write_jsonl_atomic(target, [wrapped(r) for r in chosen])
            flags += [f"--{flag}", str(target)]
            counts[flag] = len(chosen)
            if flag in GATED_SOURCES and self.sizes.critic_heldout:
                taken = {id(r) for r in chosen}
                rest = balanced_sample([r for r in records if id(r) not in taken],
                                       self.sizes.critic_heldout, heldout_rng)
                heldout[flag] = self.path("critic_data", "heldout", name)
                write_jsonl_atomic(heldout[flag], [wrapped(r) for r in rest])
                counts[f"heldout_{flag}"] = len(rest)
        run_command([_py("data_creation/critic/gpt4_reward/combine_chat_gpt_reward.py"), *flags,
                     "--output_file_name", self.path("critic_data", "critic"),
                     "--dev_size", str(self.sizes.critic_dev), "--seed", str(self.seed)],
                    self.logs / "critic_data.log")
        if heldout:
            instances = convert_files({flag: [path] for flag, path in heldout.items()},
                                      SftOptions(seed=self.seed))
            write_json_atomic(self.path("critic_data", "heldout", "critic_heldout.json"), instances)
        return counts

    def _teacher_support_of_irrelevant_pairs(self) -> list[dict]:
        """IsSup of the (sentence, passage) pairs the teacher judged irrelevant.

        The pipeline asks for IsSup of relevant pairs only (paper §3.2.2), and with gold outputs
        a relevant passage nearly always fully supports them: the critic would see a single
        IsSup label. Its SFT data also gets the teacher's IsSup of irrelevant pairs (the critic
        of the paper was trained on GPT-4's IsSup judgements of any pair).
        """
        from selfrag.data_creation.generator.gold_judge import GoldJudge

        items = [r for _, r in read_records(self.path("teacher", "00_items.jsonl"))]
        irrelevant = [r for _, r in read_records(self.path("teacher", "09_relevance.jsonl"))
                      if r.get("label") == IRRELEVANT]
        return GoldJudge(items).label("groundness", [unlabelled(r) for r in irrelevant])

    def critic(self) -> dict:
        sz = self.sizes
        out = self.path("critic", "model")
        resume = ["--resume_from_checkpoint", "latest"] if any(out.glob("checkpoint-*")) else []
        layers = ["--trainable_layers", str(sz.critic_layers)] if sz.critic_layers else []
        run_command([_py("data_creation/train_special_tokens.py"),
                     "--model_name_or_path", sz.base_model, "--use_special_token",
                     "--data_path", self.path("critic_data", "critic_train.json"),
                     "--output_dir", out, "--num_train_epochs", str(sz.critic_epochs),
                     "--per_device_train_batch_size", "4", "--gradient_accumulation_steps", "1",
                     "--batching", "packed",
                     "--learning_rate", str(sz.critic_lr), "--weight_decay", "0.",
                     "--warmup_ratio", "0.05", "--lr_scheduler_type", "cosine",
                     "--logging_steps", "5", "--model_max_length", "384",
                     "--save_strategy", "steps", "--save_steps", str(sz.checkpoint_steps),
                     "--save_total_limit", "1", "--seed", str(self.seed), *layers, *resume],
                    self.logs / "critic.log")
        return train_log_summary(out / LOG_FILE)

    def critic_eval(self) -> dict:
        """Agreement on the dev split (the gate's), and on the held-out labels when there are
        some (``heldout``); both per type and per dataset."""
        from selfrag.reproduce.measurements import agreement

        model = str(self.path("critic", "model"))
        result = {}
        for key, folder, name in (("dev", "critic_data", "critic_dev.json"),
                                  ("heldout", "critic_data/heldout", "critic_heldout.json")):
            path = self.path(folder, name)
            if not path.is_file():
                continue
            instances = [r for _, r in read_records(path)]
            scores = agreement(model, path,
                               journal=self.path("critic", f"{key}_predictions.journal"),
                               groups=self.critic_datasets(instances, self.path(folder)))
            if key == "dev":
                result.update(scores)
            else:
                result["heldout"] = scores
        write_json_atomic(self.path("critic", "agreement.json"), result, indent=1)
        return result

    def critic_datasets(self, instances: list[dict], folder: Path) -> list[str]:
        """The dataset of each critic SFT instance, found by converting the labelled records in
        ``folder`` again (the SFT instances do not carry it)."""
        from selfrag.data_creation.critic.sft_instances import CONVERTERS, SftOptions, error_at

        dataset = {}
        for flag, name in CRITIC_SOURCES.items():
            path = folder / name
            if not path.is_file():
                continue
            for line, record in read_records(path):
                instance = CONVERTERS[flag](record, error_at(str(path), line), SftOptions())
                dataset[instance["task"], instance["input"]] = str(
                    record["input"].get("dataset_name") or "other")
        return [dataset.get((r["task"], r["input"]), "other") for r in instances]

    def critic_labels(self) -> dict:
        items = [r for _, r in read_records(self.path("data", "items.jsonl"))]
        share = random.Random(self.seed).sample(items, min(self.sizes.critic_share, len(items)))
        write_jsonl_atomic(self.path("data", "critic_share_items.jsonl"), share)
        summary = self._pipeline("critic_share", self.path("data", "critic_share_items.jsonl"),
                                 ["--judge", "critic", "--model_name",
                                  str(self.path("critic", "model")), "--device", "cpu",
                                  "--batch_size", "10"])
        return {"items": len(share), "kept": summary["kept"],
                "critic_steps": summary["critic_steps"]}

    # ------------------------------------------------------------------ generator
    def generator_data(self) -> dict:
        """Critic-labelled share + teacher-labelled rest + released instances, shuffled.

        The critic's labels are used only if its held-out agreement with the teacher reaches
        :data:`CRITIC_GATE` on IsRel and IsSup (the paper, too, checked its critic against GPT-4
        before letting it label, paper §3.2.1); otherwise the teacher labels every item and the
        summary says so — a critic that has not learned the labels would only add noise.
        """
        agreement = self.runner.records["critic_eval"]["summary"]
        passed = all(agreement.get(t, {}).get("agreement", 0) >= CRITIC_GATE
                     for t in ("IsRel", "IsSup"))
        critic, by_critic = [], set()
        if passed:
            critic = [r for _, r in read_records(self.path("critic_share", "generator_data.jsonl"))]
            by_critic = {str(r["id"]) for _, r in read_records(
                self.path("data", "critic_share_items.jsonl"))}
        teacher = [r for _, r in read_records(self.path("teacher", "generator_data.jsonl"))
                   if str(r["id"]) not in by_critic]
        released = [r for _, r in read_records(self.path("data", "released.jsonl"))]
        data = critic + teacher + released
        random.Random(self.seed).shuffle(data)
        write_jsonl_atomic(self.path("generator", "train.jsonl"), data)
        return {"instances": len(data), "critic_gate_passed": passed,
                "critic_labelled": len(critic),
                "teacher_labelled": len(teacher), "released": len(released),
                "critic_share": round(len(critic) / max(len(critic) + len(teacher), 1), 3),
                "no_retrieval": sum(r["output"].startswith("[No Retrieval]") for r in data),
                "irrelevant": sum("[Irrelevant]" in r["output"] for r in data),
                "relevant": sum("[Relevant]" in r["output"] for r in data)}

    def generator(self) -> dict:
        sz = self.sizes
        out = self.path("generator", "adapter")
        resume = ["--resume_from_checkpoint", "latest"] if any(out.glob("step_*")) else []
        run_command([_py("retrieval_lm/finetune.py"), "--model_name_or_path", sz.base_model,
                     "--use_special_tokens", "--use_lora", "--lora_rank", str(sz.lora_rank),
                     "--lora_alpha", str(sz.lora_alpha), "--lora_dropout", "0.0",
                     "--train_file", self.path("generator", "train.jsonl"),
                     "--max_seq_length", str(sz.gen_seq), "--batching", "packed",
                     "--per_device_train_batch_size", str(sz.gen_batch),
                     "--learning_rate", str(sz.gen_lr), "--lr_scheduler_type", "linear",
                     "--warmup_ratio", "0.05", "--num_train_epochs", str(sz.gen_epochs),
                     "--logging_steps", "5", "--checkpointing_steps", str(sz.checkpoint_steps),
                     "--seed", str(self.seed), "--output_dir", out, *resume],
                    self.logs / "generator.log")
        return train_log_summary(out / LOG_FILE)

    def merge(self) -> dict:
        from selfrag.offline_models import load_lora_model

        model, tokenizer = load_lora_model(str(self.path("generator", "adapter")),
                                           base_model=self.sizes.base_model)
        target = self.path("generator", "merged")
        model.save_pretrained(target)
        tokenizer.save_pretrained(target)
        return {"folder": str(target)}

    # ------------------------------------------------------------------ evaluation
    def sweep(self, name: str, model: str, input_file: str | Path, task: str | None,
              metric: str, thresholds, weights: list[str], max_new_tokens: int,
              from_json: Path | None = None) -> dict:
        """``threshold_sweep.py``: returns ``{threshold: (retrieval_frequency, metric)}``;
        ``from_json``: re-rank that sweep's candidates with ``weights`` (no generation)."""
        csv_path = self.path("eval", f"{name}.csv")
        run_command([_py("scripts/threshold_sweep.py"), "--model_name", model, "--device", "cpu",
                     "--input_file", input_file, *(["--task", task] if task else []),
                     "--metric", metric, "--ndocs", str(self.sizes.eval_ndocs),
                     "--max_new_tokens", str(max_new_tokens), "--batch_size", "16",
                     "--thresholds", *map(str, thresholds), *weights,
                     "--output_csv", csv_path, "--output_json", self.path("eval", f"{name}.json"),
                     *(["--from_json", from_json] if from_json else [])],
                    self.logs / "eval.log")
        with open(csv_path, encoding="utf-8") as handle:
            return {float(r["threshold"]): (float(r["retrieval_frequency"]),
                                            float(r[metric]) if r[metric] not in ("", "None") else None)
                    for r in csv.DictReader(handle)}

    def test_file(self, name: str) -> Path:
        """The test set (its first ``eval_limit`` items in smoke runs)."""
        path = ROOT / TEST_SETS[name][0]
        if self.sizes.eval_limit is None:
            return path
        target = self.path("data", f"test_{name}.jsonl")
        records = [r for _, r in read_records(path)][: self.sizes.eval_limit]
        write_jsonl_atomic(target, records)
        return target

    def validation(self) -> dict:
        """δ per test set: the best threshold on its validation split (:func:`choose_threshold`).

        PopQA's split also holds ``val_no_knowledge`` instructions of the training kinds (not
        the probes' kinds), with passages retrieved for them like for any query: δ_PopQA is then
        chosen where retrieval helps the knowledge questions without derailing the prompts that
        need none, the trade-off adaptive retrieval exists for (paper §3.3).
        """
        chosen, mixed = {}, self.no_knowledge_validation()
        for task, (_, flag, metric) in TEST_SETS.items():
            split = self.path("data", "val_ctxs", f"val_{task}.jsonl")
            if task == "popqa" and mixed:
                records = [r for _, r in read_records(split)] + mixed
                split = self.path("data", "val_ctxs", "val_popqa_and_no_knowledge.jsonl")
                write_jsonl_atomic(split, records)
            points = self.sweep(f"val_{task}", str(self.path("generator", "merged")), split,
                                flag, metric, THRESHOLDS, SELF_RAG_WEIGHTS, max_new_tokens(task))
            chosen[task] = choose_threshold(points)
        return {"thresholds": chosen, "popqa_validation_no_knowledge": len(mixed)}

    def no_knowledge_validation(self) -> list[dict]:
        """``val_no_knowledge`` no-knowledge instructions unlike any training item, with
        passages retrieved for them."""
        n = self.sizes.val_no_knowledge
        if not n:
            return []
        trained = {r["instruction"] for _, r in read_records(self.path("data", "items.jsonl"))}
        fresh = [r for r in training_instructions(n + self.sizes.no_knowledge, seed=self.seed + 2)
                 if r["instruction"] not in trained][:n]
        queries = self.path("data", "val_no_knowledge.jsonl")
        write_jsonl_atomic(queries, [{"id": f"val_{r['id']}", "question": r["instruction"],
                                      "answers": r["answers"]} for r in fresh])
        return [r for _, r in read_records(self.retrieve_validation(queries, "validation.log"))]

    def evaluation(self) -> dict:
        thresholds = self.runner.records["validation"]["summary"]["thresholds"]
        trained = str(self.path("generator", "merged"))
        rows = {}
        for task, (_, flag, metric) in TEST_SETS.items():
            test = self.test_file(task)
            for mode in ("vanilla", "retrieval"):
                result = self.path("eval", f"base_{mode}_{task}.jsonl")
                run_command([_py("retrieval_lm/run_baseline_lm.py"), "--model_name",
                             self.sizes.base_model, "--input_file", test, "--mode", mode,
                             "--top_n", str(self.sizes.eval_ndocs), "--device", "cpu",
                             "--max_new_tokens", str(max_new_tokens(task)), "--metric", metric,
                             "--batch_size", "16", "--result_fp", result,
                             *(["--task", flag] if flag else [])], self.logs / "eval.log")
                rows[f"base_{mode}/{task}"] = baseline_score(result)
            chosen = thresholds[task]
            points = self.sweep(f"selfrag_{task}", trained, test, flag, metric,
                                sorted(set(THRESHOLDS + [ALWAYS, NEVER, chosen])),
                                SELF_RAG_WEIGHTS, max_new_tokens(task))
            for label, t in (("no_retrieval", NEVER), ("adaptive", chosen), ("always", ALWAYS)):
                rows[f"selfrag_{label}/{task}"] = sweep_row(points, t)
            rows[f"sweep/{task}"] = {str(t): list(v) for t, v in sorted(points.items())
                                     if 0 <= t <= 1}
            if self.sizes.ablation and task == "popqa":  # the same continuations, re-ranked
                points = self.sweep(f"ablation_seqscore_{task}", trained, test, flag, metric,
                                    [ALWAYS, chosen], ["--use_seqscore", "--w_rel", "0"],
                                    max_new_tokens(task),
                                    from_json=self.path("eval", f"selfrag_{task}.json"))
                for label, t in (("adaptive", chosen), ("always", ALWAYS)):
                    rows[f"ablation_seqscore_{label}/{task}"] = sweep_row(points, t)
        return rows

    def decisions(self) -> dict:
        """Share of queries retrieving at the PopQA threshold: PopQA vs no-knowledge prompts."""
        from selfrag.demo import SEED_QUERIES
        from selfrag.lm import load_lm
        from selfrag.reproduce.measurements import retrieval_probabilities

        threshold = self.runner.records["validation"]["summary"]["thresholds"]["popqa"]
        probes = [p["instruction"] for p in probe_instructions(self.sizes.probes, seed=self.seed + 1)]
        seeds = [q for q, _ in SEED_QUERIES]
        popqa = [r["question"] for _, r in read_records(self.test_file("popqa"))]
        lm = load_lm("hf", str(self.path("generator", "merged")), device="cpu", batch_size=16)
        out = {}
        for name, prompts in (("popqa", popqa), ("no_knowledge_probes", probes),
                              ("demo_seed_queries", seeds)):
            probs = retrieval_probabilities(lm, prompts)
            out[name] = {"n": len(prompts), "threshold": threshold,
                         "retrieves": sum(p > threshold for p in probs) / len(probs),
                         "mean_p_retrieval": sum(probs) / len(probs)}
        write_json_atomic(self.path("eval", "decisions.json"), out, indent=1)
        return out


SELF_RAG_WEIGHTS = ["--use_groundness", "--use_utility", "--use_seqscore", "--w_use", "0.5"]


def dataset_name(task: str) -> str:
    return {"pubhealth": "fever"}.get(task, task)


def max_new_tokens(task: str) -> int:
    return 20 if task == "popqa" else 10


def pool_item(task: str, record: dict) -> dict:
    """A pool record as a generator-pipeline item, its instruction as the evaluation builds it."""
    from selfrag.prompts import choice_letter, short_form_instruction

    if task == "arc_c":
        instruction = short_form_instruction(record["question"], "arc_c", record["choices"])
        answer = choice_letter(str(record["answerKey"]))
        answers = [answer]
    elif task == "pubhealth":
        instruction = short_form_instruction(record["question"], "fever")
        answers = list(record["answers"])
        answer = answers[0]
    else:
        instruction = short_form_instruction(record["question"], None)
        answers = list(record["answers"])
        answer = answers[0]
    return {"id": f"{task}_{record['id']}", "instruction": instruction, "input": "",
            "output": answer, "answers": answers, "dataset_name": dataset_name(task)}


def eval_record(task: str, record: dict) -> dict:
    """A pool record in the evaluation files' layout (no passages: retrieval adds them)."""
    keep = {k: record[k] for k in ("question", "answers", "choices", "answerKey") if k in record}
    return {"id": f"{task}_{record['id']}", **keep}


#: What a judge adds to a pipeline record (:mod:`selfrag.data_creation.generator.judges`).
JUDGE_FIELDS = ("label", "pred", "reason", "problem", "judge")


def unlabelled(record: dict) -> dict:
    """A judged pipeline record without what the judge added: the item it judged."""
    return {k: v for k, v in record.items() if k not in JUDGE_FIELDS}


def wrapped(record: dict) -> dict:
    """A judged pipeline record as ``combine_chat_gpt_reward.py`` reads our labellers' records."""
    return {"input": unlabelled(record), "label": record["label"], "judge": record["judge"]}


def balanced_sample(records: list[dict], cap: int, rng: random.Random,
                    stratum: Callable[[dict], object] = itemgetter("label")) -> list[dict]:
    """At most ``cap`` records, strata (by default: labels) as balanced as the data allows
    (seeded): one record of each stratum in turn until ``cap`` or the strata run out."""
    by_stratum: dict[object, list[dict]] = {}
    for record in records:
        by_stratum.setdefault(stratum(record), []).append(record)
    for group in by_stratum.values():
        rng.shuffle(group)
    chosen, strata = [], sorted(by_stratum)
    while len(chosen) < cap and any(by_stratum.values()):
        for key in strata:
            if by_stratum[key] and len(chosen) < cap:
                chosen.append(by_stratum[key].pop())
    rng.shuffle(chosen)
    return chosen


def choose_threshold(points: dict) -> float:
    """The threshold with the best validation metric; ties go to the one retrieving least, then
    to the lowest threshold (only 0 <= t <= 1 are candidates)."""
    candidates = [(score, -freq, -t) for t, (freq, score) in points.items()
                  if score is not None and 0 <= t <= 1]
    best = max(candidates)
    return -best[2]


def sweep_row(points: dict, threshold: float) -> dict:
    """One results-table cell from a sweep's ``{threshold: (retrieval_frequency, metric)}``."""
    frequency, score = points[threshold]
    return {"retrieval": frequency, "score": score, "threshold": threshold}


def baseline_score(result_file: Path) -> dict:
    records = [r for _, r in read_records(result_file)]
    scores = [r["metric_result"] for r in records if r.get("metric_result") is not None]
    retrieval = any("paragraph" in r for r in records)
    return {"score": sum(scores) / len(scores) if scores else None,
            "retrieval": 1.0 if retrieval else 0.0, "n": len(scores)}


def train_log_summary(path: Path) -> dict:
    entries = [r for _, r in read_records(path)] if path.is_file() else []
    losses = [e["loss"] for e in entries if "loss" in e]
    last = entries[-1] if entries else {}
    return {"steps": last.get("step"), "first_loss": losses[0] if losses else None,
            "last_loss": losses[-1] if losses else None, "log": str(path)}

