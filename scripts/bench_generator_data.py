"""Generator-data throughput: items per minute through the whole generator-data pipeline.

Critic: the default model (``smollm2-135m``) on the HF backend; passages: a MiniLM exact index
over the first ``--corpus_passages`` passages of the bundled corpus (built in the run, not
timed); items: PopQA questions with a three-sentence answer each. Prints the measured wall time
of the pipeline, items per minute and critic calls per step.

The default model is not a trained critic: its replies are almost never labels, and an
unreadable label stops an item early, so timing it alone would skip most of the work. The
critic is therefore run on every prompt (all model time is real), and only for *routing* an
unreadable prediction is replaced by the gold-answer judge's label, so every step runs at the
volume a trained critic would cause. The printout says how many labels were replaced. This is a
benchmark device only; the pipeline itself never substitutes labels.

    python scripts/bench_generator_data.py --n_items 20 --device cpu
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from selfrag.cli import entry_point


def build_retriever(n_passages: int):
    from selfrag.retrieval.encoder import Encoder
    from selfrag.retrieval.index import PassageIndex
    from selfrag.retrieval.passages import load_passages, passage_text
    from selfrag.retrieval.retriever import Retriever

    passages = load_passages(ROOT / "eval_data/corpus/corpus.jsonl")[:n_passages]
    encoder = Encoder.load(device="cpu")
    index = PassageIndex.create(encoder.dim, "Flat", vars(encoder.info))
    index.add([p["id"] for p in passages],
              encoder.encode([passage_text(p) for p in passages], batch_size=32))
    return Retriever.from_components(encoder, index, passages)


class TimedCriticWithGoldRouting:
    """The critic, with unreadable labels replaced by gold-answer ones for routing (docstring)."""

    def __init__(self, critic, gold):
        self.critic, self.gold, self.name = critic, gold, critic.name + "+gold-routing"
        self.replaced = 0

    def fingerprint(self) -> dict:
        return {"judge": self.name}

    def label(self, task_name, items, **kwargs):
        records = self.critic.label(task_name, items, **kwargs)
        golds = self.gold.label(task_name, items)
        for record, gold in zip(records, golds):
            if record["label"] is None:
                self.replaced += 1
                record["label"] = gold["label"]
        return records


def make_items(n: int, path: Path) -> None:
    lines = (ROOT / "eval_data/popqa_longtail_w_gs.head100.jsonl").read_text().splitlines()[:n]
    items = []
    for line in lines:
        r = json.loads(line)
        answer = r["answers"][0]
        items.append({"instruction": r["question"], "id": f"popqa_{r['id']}",
                      "dataset_name": "popqa", "answers": r["answers"],
                      "output": f"The answer is {answer}. This is what the sources about "
                                f"{r['s_wiki_title']} say. It is listed as {answer} there."})
    path.write_text("".join(json.dumps(i) + "\n" for i in items), encoding="utf-8")


@entry_point
def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n_items", type=int, default=20, help="PopQA items (at most 100)")
    p.add_argument("--model_name", type=str, default="smollm2-135m", help="critic model")
    p.add_argument("--device", type=str, default="cpu", help="cpu or cuda")
    p.add_argument("--batch_size", type=int, default=10, help="critic batch size")
    p.add_argument("--n_docs", type=int, default=10, help="passages per query (and top_n)")
    p.add_argument("--corpus_passages", type=int, default=2000, help="passages in the index")
    args = p.parse_args(argv)

    from selfrag.data_creation.generator.critic_runs import CriticJudge
    from selfrag.data_creation.generator.gold_judge import GoldJudge
    from selfrag.data_creation.generator.pipeline import PipelineConfig, run_pipeline
    from selfrag.data_creation.generator.records import load_items
    from selfrag.lm import load_lm

    retriever = build_retriever(args.corpus_passages)
    lm = load_lm("hf", args.model_name, device=args.device, batch_size=args.batch_size)
    calls: list[int] = []
    generate = lm.generate
    lm.generate = lambda prompts, request, desc=None: (calls.append(len(prompts)),
                                                       generate(prompts, request, desc))[1]
    with tempfile.TemporaryDirectory() as tmp:
        items = Path(tmp) / "items.jsonl"
        make_items(args.n_items, items)
        config = PipelineConfig(str(items), str(Path(tmp) / "work"), n_docs=args.n_docs,
                                top_n=args.n_docs)
        judge = TimedCriticWithGoldRouting(
            CriticJudge(lm, args.model_name, batch_size=args.batch_size),
            GoldJudge(load_items(items), items))
        start = time.perf_counter()
        summary = run_pipeline(config, judge, retriever)
        seconds = time.perf_counter() - start
    n = summary["items"]
    print(f"items: {n}, kept: {summary['kept']}, critic prompts: {sum(calls)}, "
          f"device: {args.device}, critic: {args.model_name}")
    print(f"labels the critic did not write (replaced by gold-answer labels for routing only): "
          f"{judge.replaced} of {sum(v['records'] for v in summary['critic_steps'].values())}")
    print(f"pipeline wall time: {seconds:.1f} s -> {60 * n / seconds:.2f} items/min")
    print("critic records per step: " + ", ".join(
        f"{k}={v['records']} (unparseable {v['unparseable']})"
        for k, v in summary["critic_steps"].items()))


if __name__ == "__main__":
    sys.exit(main())
