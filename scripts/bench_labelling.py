r"""Benchmark: critic labelling throughput (items per second) at several concurrency levels.

Runs the relevance labeller (``chatgpt_relevance.py --multi_retrieval``) over N synthetic items
against an OpenAI-compatible server, once per ``--concurrency`` value, each with a fresh reply
cache, and prints items per second. The server is one of:

- started in-process with the offline default model (default; ``selfrag.serve`` batches
  concurrent requests together, so concurrency turns into larger batches):

      python scripts/bench_labelling.py --n_items 16 --concurrency 1 8

- started in-process with a scripted judge that sleeps ``--delay`` seconds per request, which
  stands in for a remote API's latency and measures the client alone:

      python scripts/bench_labelling.py --scripted --delay 0.5 --n_items 32 --concurrency 1 8

- any running server, e.g. ``selfrag serve --model_name smollm2-135m --port 8000``:

      python scripts/bench_labelling.py --base_url http://127.0.0.1:8000/v1 \
          --served_model_name smollm2-135m

A small untrained model rarely writes a valid label; its replies are counted as invalid, which
does not change the throughput being measured.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from selfrag.data_creation.critic.judge_run import build_parser, run_labelling


def write_items(path: Path, n: int) -> None:
    with path.open("w", encoding="utf-8") as handle:
        for i in range(n):
            handle.write(json.dumps({
                "instruction": f"Question {i}: in which year did event number {i} take place?",
                "preceding_sentences": f"Event {i} is well documented.",
                "evidence": f"Record {i}\nEvent number {i} took place in {1900 + i}.",
                "target_output": f"It took place in {1900 + i}.",
                "q_id": f"bench_{i}", "sent_idx": 1, "p_idx": 0}) + "\n")


@contextlib.contextmanager
def local_server(args):
    """``(base_url, model name)`` of the server the benchmark talks to."""
    if args.base_url:
        yield args.base_url, args.served_model_name
        return
    from selfrag.serve import create_app
    from selfrag.serve.background import BackgroundServer

    if args.scripted:
        from selfrag.lm.scripted import ScriptedLM, Step

        lm = ScriptedLM(lambda prompt: [Step({"[Relevant]\nExplanation: it answers.": 1.0}),
                                        Step({"</s>": 1.0})])
    else:
        from selfrag.lm import load_lm

        lm = load_lm("hf", args.model_name, device="cpu", dtype="float32",
                     batch_size=args.max_batch)
    app = create_app(lm, args.served_model_name, max_batch=args.max_batch)
    if args.delay:
        import asyncio

        @app.middleware("http")
        async def latency(request, call_next):
            await asyncio.sleep(args.delay)
            return await call_next(request)

    with BackgroundServer(app) as server:
        yield server.base_url, args.served_model_name


def labelling_args(args, items: Path, out: Path, concurrency: int, base_url: str, model: str,
                   max_tokens: int | None = None) -> argparse.Namespace:
    """The labeller's flags for one timed run (a fresh output, hence a fresh cache)."""
    return build_parser("relevance", None).parse_args([
        "--input_files", str(items), "--output_file_name", str(out), "--model_name", model,
        "--base_url", base_url, "--multi_retrieval", "--temperature", "0",
        "--max_tokens", str(max_tokens or args.max_tokens), "--concurrency", str(concurrency),
        "--max_retries", "2", "--backoff", "0.1"])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n_items", type=int, default=16, help="items labelled per run")
    p.add_argument("--concurrency", type=int, nargs="+", default=[1, 8],
                   help="concurrency levels to compare")
    p.add_argument("--max_tokens", type=int, default=16, help="tokens per reply")
    p.add_argument("--model_name", default="smollm2-135m", help="model served in-process")
    p.add_argument("--served_model_name", default="judge", help="name sent as 'model'")
    p.add_argument("--max_batch", type=int, default=16, help="server batch size (in-process)")
    p.add_argument("--scripted", action="store_true", help="serve a scripted judge instead")
    p.add_argument("--delay", type=float, default=0.0,
                   help="seconds the in-process server holds each request (simulated latency)")
    p.add_argument("--base_url", default=None, help="use this running server instead")
    args = p.parse_args()
    os.environ.setdefault("OPENAI_API_KEY", "local")
    rows = []
    with tempfile.TemporaryDirectory() as tmp, local_server(args) as (base_url, model):
        items, warmup = Path(tmp) / "items.jsonl", Path(tmp) / "warmup.jsonl"
        write_items(items, args.n_items)
        write_items(warmup, 1)
        # One untimed request first: model warm-up and connection set-up are not throughput.
        run_labelling("relevance", labelling_args(args, warmup, Path(tmp) / "warmup.json", 1,
                                                  base_url, model, max_tokens=1))
        for concurrency in args.concurrency:
            out = Path(tmp) / f"labels_c{concurrency}.json"
            run_args = labelling_args(args, items, out, concurrency, base_url, model)
            started = time.perf_counter()
            summary = run_labelling("relevance", run_args)
            elapsed = time.perf_counter() - started
            rows.append((concurrency, elapsed, summary))
    print(f"\n{args.n_items} items, max_tokens {args.max_tokens}, server: "
          f"{base_url if args.base_url else ('scripted' if args.scripted else args.model_name)}"
          f"{f', +{args.delay:.2f} s per request' if args.delay else ''}")
    print(f"{'concurrency':>11} {'seconds':>8} {'items/s':>8} {'valid':>6} {'invalid':>8}")
    for concurrency, elapsed, summary in rows:
        print(f"{concurrency:>11} {elapsed:>8.2f} {args.n_items / elapsed:>8.2f} "
              f"{summary['labelled']:>6} {summary['invalid']:>8}")
    base = rows[0][1]
    for concurrency, elapsed, _ in rows[1:]:
        print(f"speed-up of concurrency {concurrency} over {rows[0][0]}: {base / elapsed:.2f}x")


if __name__ == "__main__":
    main()
