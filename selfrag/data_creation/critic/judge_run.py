"""Critic labels from an LLM judge: the engine of the ``chatgpt_*.py`` scripts
(named after the original GPT-4 labelling scripts).

One labeller per reflection-token type — ``need_retrieval`` (Retrieve), ``relevance`` (IsRel),
``groundness`` (IsSup), ``utility`` (IsUse) — sends each item to an OpenAI-compatible judge with
the prompt :mod:`selfrag.data_creation.critic.judge_items` chooses, and reads the label with
:func:`selfrag.data_creation.critic.labels.parse_label`.

Compared with the original scripts:
- requests run concurrently (``--concurrency``) with exponential backoff on 429/5xx/timeouts/
  connection errors (:class:`selfrag.lm.openai_completions.OpenAICompletionClient`);
- every answer is cached as it arrives
  (:class:`selfrag.data_creation.critic.judge_cache.ReplyCache`), so a crash or rerun never pays
  twice; the output JSON is written atomically at the end;
- replies with no single label are counted and written to ``<output>.invalid.jsonl`` instead of
  being stored with an empty or wrong label;
- records keep the original's fields (``input``, ``decision_token`` or ``score``,
  ``explanation`` — the real explanation, not the score —, ``raw_output``) and add ``label``
  (the reflection token), ``prompt`` (the design used) and ``judge`` (the judge model's name);
- prompt tokens, completion tokens and an optional cost are printed and written to
  ``<output>.summary.json``.
"""

from __future__ import annotations

import argparse
import logging
import random
import time
from collections import Counter
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

from selfrag.cli import entry_point, flag_error
from selfrag.data_creation.critic.judge_cache import ReplyCache, Tally, request_key
from selfrag.data_creation.critic.judge_items import (
    LABELLERS,
    Item,
    ItemOptions,
    previous_identities,
    select_items,
)
from selfrag.data_creation.critic.labels import parse_label
from selfrag.errors import SelfRagError
from selfrag.io import check_output, write_json_atomic, write_jsonl_atomic
from selfrag.lm.openai_completions import OpenAICompletionClient, resolve_api_key
from selfrag.locks import output_lock
from selfrag.tokens import RETRIEVAL

logger = logging.getLogger(__name__)

DEFAULT_MODEL = "gpt-3.5-turbo"  # the original scripts' default (the paper used GPT-4)
#: The judge's answer, in the input-only Retrieve prompt's words, per label (``decision_token``).
_YES_NO = {RETRIEVAL: "[Yes]"}


#: What every ``chatgpt_*.py`` help text ends with.
EPILOG = """\
Answers are cached in `<output>.cache.jsonl` as they arrive, so a crashed or interrupted run
is rerun with the same command and pays only for what is missing. Replies without a single
label go to `<output>.invalid.jsonl`; counts, tokens and cost to `<output>.summary.json`.
See selfrag/data_creation/critic/judge_run.py for what differs from the original.
"""


def labeller_command(labeller: str, description: str | None):
    """The ``main(argv)`` of ``chatgpt_<labeller>.py`` (see :func:`selfrag.cli.entry_point`)."""

    @entry_point
    def main(argv: list[str] | None = None) -> None:
        run_labelling(labeller, build_parser(labeller, description).parse_args(argv))

    return main


def build_parser(labeller: str, description: str | None) -> argparse.ArgumentParser:
    """The command line of ``chatgpt_<labeller>.py``: the original's flags, then ours."""
    p = argparse.ArgumentParser(description=description, epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--input_files", type=str, nargs="+", required=True,
                   help=".json lists or JSONL files of items (fields as in the original "
                        "gpt4_reward/README.md)")
    p.add_argument("--output_file_name", type=str, required=True,
                   help="output: a JSON list of {input, label fields, raw_output, label, judge}")
    p.add_argument("--model_name", type=str, default=DEFAULT_MODEL, help="judge model")
    p.add_argument("--api_key", type=str, default=None,
                   help="FILE holding the key; OPENAI_API_KEY is used first. Never logged")
    p.add_argument("--org_name", type=str, default=None, help="OpenAI organization id")
    p.add_argument("--n", type=int, default=None, help="label only N items (the first N)")
    p.add_argument("--random", action="store_true", help="with --n: N items drawn at random")
    p.add_argument("--previous_results", type=str, nargs="+", default=[],
                   help="outputs of earlier runs: their items are skipped (optional)")
    if labeller in ("need_retrieval", "relevance", "groundness"):
        p.add_argument("--multi_retrieval", action="store_true",
                       help="sentence-level items (evidence + output sentence)")
    if labeller == "need_retrieval":
        p.add_argument("--three_way", action="store_true",
                       help="with --multi_retrieval: add [Continue to Use Evidence]")
    # Ours.
    p.add_argument("--base_url", type=str, default=None,
                   help="OpenAI-compatible server (default: OPENAI_BASE_URL or OpenAI's)")
    p.add_argument("--api", type=str, default="chat", choices=["chat", "completions"],
                   help="endpoint; chat sends the prompt as one user message (the original's)")
    p.add_argument("--temperature", type=float, default=None,
                   help="sampling temperature (default: the server's, as the original)")
    p.add_argument("--max_tokens", type=int, default=200, help="tokens per reply")
    p.add_argument("--concurrency", type=int, default=4, help="requests in flight at once")
    p.add_argument("--max_retries", type=int, default=6,
                   help="retries on 429/5xx/timeouts/connection errors before giving up")
    p.add_argument("--backoff", type=float, default=1.0,
                   help="first retry delay in seconds (doubled each retry, with jitter)")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds per request")
    p.add_argument("--price_per_1k_input", type=float, default=None,
                   help="dollars per 1,000 prompt tokens, for the cost estimate")
    p.add_argument("--price_per_1k_output", type=float, default=None,
                   help="dollars per 1,000 completion tokens, for the cost estimate")
    p.add_argument("--cache_file", type=str, default=None,
                   help="reply cache (default: <output_file_name>.cache.jsonl)")
    p.add_argument("--seed", type=int, default=0, help="seed of --random")
    p.add_argument("--faithful", action="store_true",
                   help="the original's prompt choice (inverted three-way) and id matching")
    return p


@dataclass(frozen=True)
class JudgeSettings:
    """What decides a judge reply (and so its cache key)."""

    model: str
    api: str
    temperature: float | None
    max_tokens: int

    def key(self, prompt: str) -> str:
        return request_key(self.model, self.api, prompt, self.temperature, self.max_tokens)


def check_args(args) -> None:
    for flag in ("max_tokens", "concurrency"):
        if getattr(args, flag) < 1:
            raise flag_error(f"--{flag}", "must be at least 1")
    if args.n is not None and args.n < 0:
        raise flag_error("--n", "must not be negative")
    if args.max_retries < 0 or args.backoff < 0:
        raise flag_error("--max_retries/--backoff", "must not be negative")
    if not args.timeout > 0:
        raise flag_error("--timeout", "must be a positive number of seconds")
    if getattr(args, "three_way", False) and not args.multi_retrieval:
        raise flag_error("--three_way", "applies to sentence-level items: add --multi_retrieval")


def run_labelling(labeller: str, args) -> dict:
    """Label the items of ``args.input_files``; write the output, invalid replies and summary.

    Returns:
        The summary (also written to ``<output>.summary.json``).

    Raises:
        InputError: a bad input item (before any request).
        SelfRagError: no API key, or a request failed after its retries (answers received so far
            stay in the cache; rerunning continues from there).
    """
    if labeller not in LABELLERS:
        raise SelfRagError(f"unknown labeller {labeller!r}; choose from {LABELLERS}")
    check_args(args)
    started = time.monotonic()
    options = ItemOptions(getattr(args, "multi_retrieval", False),
                          getattr(args, "three_way", False), args.faithful)
    previous = previous_identities(args.previous_results, args.faithful)
    selection = select_items(labeller, args.input_files, options, previous)
    check_output(args.output_file_name, "--output_file_name")  # before any paid request
    cache_path = args.cache_file or f"{args.output_file_name}.cache.jsonl"
    # One run per output and per reply cache: a second identical run would pay for every item.
    with (output_lock(args.output_file_name, "--output_file_name"),
          output_lock(cache_path, "--cache_file")):
        return _label(labeller, args, selection, started, cache_path)


def _label(labeller: str, args, selection, started: float, cache_path: str) -> dict:
    items = _subsample(selection.items, args.n, args.random, args.seed)
    settings = JudgeSettings(args.model_name, args.api, args.temperature, args.max_tokens)
    keys = [settings.key(item.render()) for item in items]
    cache = ReplyCache(cache_path)
    from_cache = sum(key in cache for key in keys)
    tally = Tally(args.price_per_1k_input, args.price_per_1k_output)
    missing = [(key, item) for key, item in _unique(keys, items) if key not in cache]
    if missing:
        judge = OpenAICompletionClient(args.model_name, resolve_api_key(args.api_key),
                                       args.base_url, args.api, max_retries=args.max_retries,
                                       backoff=args.backoff, timeout=args.timeout,
                                       organization=args.org_name)
        _ask(judge, settings, missing, cache, tally, args.concurrency)
    records, invalid = build_records(items, keys, cache, args.model_name, labeller)
    summary = {
        "labeller": labeller, "judge": args.model_name, "items": len(items),
        "labelled": len(records), "invalid": len(invalid), "skipped": selection.skipped,
        "from_cache": from_cache, "labels": dict(Counter(r["label"] for r in records)),
        "prompts": dict(Counter(item.prompt.name for item in items)), **tally.as_dict(),
        "elapsed_s": round(time.monotonic() - started, 3), "output": args.output_file_name,
        "cache": str(cache.path),
    }
    _write_outputs(args.output_file_name, records, invalid, summary)
    print(describe(summary))
    return summary


def _subsample(items: list[Item], n: int | None, at_random: bool, seed: int) -> list[Item]:
    if n is None or n >= len(items):
        return items
    if at_random:
        chosen = sorted(random.Random(seed).sample(range(len(items)), n))
        return [items[i] for i in chosen]
    return items[:n]


def _unique(keys: list[str], items: list[Item]) -> list[tuple[str, Item]]:
    """One (key, item) per distinct request: identical items are asked once."""
    return list({key: item for key, item in zip(keys, items)}.items())


def _ask(judge: OpenAICompletionClient, settings: JudgeSettings,
         work: list[tuple[str, Item]], cache: ReplyCache, tally: Tally, concurrency: int) -> None:
    """Send every request, caching each answer as it arrives; stop at the first failure."""

    def one(key: str, item: Item) -> None:
        completion = judge.complete(item.render(), settings.max_tokens, settings.temperature)
        cache.put(key, completion)
        tally.add(completion)

    logger.info("asking %s for %d replies (%d at a time)", settings.model, len(work), concurrency)
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        futures = [pool.submit(one, key, item) for key, item in work]
        done, _ = wait(futures, return_when=FIRST_EXCEPTION)
        failed = next((f for f in done if f.exception() is not None), None)
        if failed is None:
            return
        for future in futures:
            future.cancel()
    error = failed.exception()
    if not isinstance(error, SelfRagError):
        raise error  # a bug, not a failed request: keep its traceback
    answered = sum(f.done() and not f.cancelled() and f.exception() is None for f in futures)
    raise SelfRagError(
        f"{error} — {answered} of {len(work)} new replies were received and are kept in "
        f"{cache.path}; rerun the same command to continue without paying for them again"
    ) from None


def build_records(items: list[Item], keys: list[str], cache: ReplyCache, judge: str,
                  labeller: str) -> tuple[list[dict], list[dict]]:
    """Output records (original fields + ``label``, ``prompt``, ``judge``) and invalid replies."""
    records, invalid = [], []
    for item, key in zip(items, keys):
        reply = cache.get(key)["reply"]
        parsed = parse_label(item.prompt.kind, reply)
        if parsed.label is None:
            invalid.append({"input": item.fields, "raw_output": reply, "problem": parsed.problem,
                            "prompt": item.prompt.name, "judge": judge, "source": item.source})
            continue
        record: dict = {"input": item.fields}
        if labeller == "need_retrieval":
            record["decision_token"] = (_YES_NO.get(parsed.label, "[No]")
                                        if item.prompt.name == "retrieval" else parsed.label)
        else:
            record["score"] = parsed.score if parsed.score is not None else parsed.label
        record.update(explanation=parsed.explanation, raw_output=reply, label=parsed.label,
                      prompt=item.prompt.name, judge=judge)
        records.append(record)
    return records, invalid


def _write_outputs(output: str, records: list[dict], invalid: list[dict], summary: dict) -> None:
    invalid_path = Path(f"{output}.invalid.jsonl")
    if invalid:
        write_jsonl_atomic(invalid_path, invalid)
    else:
        invalid_path.unlink(missing_ok=True)  # from an earlier run; nothing is invalid now
    write_json_atomic(output, records)
    write_json_atomic(f"{output}.summary.json", summary, indent=1)


def describe(summary: dict) -> str:
    """The summary in one line: counts, requests, tokens and cost."""
    cost = summary["cost_usd"]
    cost_text = f"~${cost:.4f}" if cost is not None else "cost unknown (no --price_per_1k_*)"
    invalid = (f", {summary['invalid']} invalid (see {summary['output']}.invalid.jsonl)"
               if summary["invalid"] else "")
    return (f"{summary['labeller']}: labelled {summary['labelled']} of {summary['items']} items"
            f"{invalid}; {summary['from_cache']} from the cache; {summary['requests']} requests "
            f"({summary['retries']} retries); {summary['prompt_tokens']} prompt + "
            f"{summary['completion_tokens']} completion tokens, {cost_text}")
