"""The chatgpt_*.py labellers end to end, over HTTP, against the project's own OpenAI-compatible
server (``selfrag.serve``) answering with a scripted model."""

import importlib.util
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from support.server import running_server

from selfrag.cli import run_main
from selfrag.data_creation.critic.judge_cache import ReplyCache
from selfrag.lm.openai_completions import Completion
from selfrag.lm.scripted import ScriptedLM, Step
from selfrag.tokens import (
    CONTINUE_EVIDENCE,
    FULLY_SUPPORTED,
    IRRELEVANT,
    PARTIALLY_SUPPORTED,
    RELEVANT,
    RETRIEVAL,
    UTILITY,
)

ROOT = Path(__file__).resolve().parents[3]
SCRIPTS = ROOT / "data_creation/critic/gpt4_reward"
KEY = "sk-judge-test-key-never-written-42"
FAST = ["--max_retries", "2", "--backoff", "0.01", "--timeout", "20"]


def load_script(name: str):
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def replying(text: str | None = None, by_prompt=None) -> ScriptedLM:
    """A judge that answers ``text`` (or ``by_prompt(prompt)``) to every prompt."""
    return ScriptedLM(lambda prompt: [Step({(text if by_prompt is None else by_prompt(prompt)): 1.0}),
                                      Step({"</s>": 1.0})])


def write_items(path: Path, n: int, **extra) -> Path:
    lines = []
    for i in range(n):
        item = {"instruction": f"item-{i} question?", "evidence": f"evidence {i}",
                "target_output": f"sentence {i}.", "output": f"answer {i}.",
                "preceding_sentences": "" if i == 0 else f"before {i}.", "q_id": f"q{i}",
                "sent_idx": i, "p_idx": 0, **extra}
        lines.append(json.dumps(item))
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(autouse=True)
def api_key(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)


def label(script: str, server, items: Path, out: Path, *extra: str) -> int:
    argv = ["--input_files", str(items), "--output_file_name", str(out), "--base_url",
            server.base_url, "--model_name", "judge", *FAST, *extra]
    return run_main(load_script(script).main, argv)


def read_json(path: Path):
    return json.loads(path.read_text())


CASES = [  # script, flags, reply, label, field, stored value, items labelled of 4
    ("chatgpt_need_retrieval", [], "[Yes]\nExplanation: facts help.", RETRIEVAL,
     "decision_token", "[Yes]", 4),
    ("chatgpt_need_retrieval", ["--multi_retrieval", "--three_way"],
     "[Continue to Use Evidence]\nExplanation: e", CONTINUE_EVIDENCE, "decision_token",
     CONTINUE_EVIDENCE, 3),  # sent_idx 0 is not labelled, as in the original
    ("chatgpt_relevance", [], "Rating: [Irrelevant]\nExplanation: e", IRRELEVANT, "score",
     IRRELEVANT, 4),
    ("chatgpt_relevance", ["--multi_retrieval"], "[Relevant]\nExplanation: e", RELEVANT, "score",
     RELEVANT, 4),
    ("chatgpt_groundness", ["--multi_retrieval"], "[Partially supported]\nExplanation: e",
     PARTIALLY_SUPPORTED, "score", PARTIALLY_SUPPORTED, 4),
    ("chatgpt_groundness", [], "Score: 4\nExplanation: mostly", FULLY_SUPPORTED, "score", 4, 4),
    ("chatgpt_utility", [], "Perceived utility: [Utility:5]\nExplanation: e", UTILITY[4], "score",
     5, 4),
]


@pytest.mark.parametrize(("script", "flags", "reply", "token", "field", "value", "n"), CASES)
def test_labeller_end_to_end(tmp_path, script, flags, reply, token, field, value, n):
    items = write_items(tmp_path / "items.jsonl", 4)
    out = tmp_path / "out.json"
    lm = replying(reply)
    with running_server(lm) as server:
        assert label(script, server, items, out, *flags, "--concurrency", "3") == 0
    assert server.requests == server.completed == n
    records = read_json(out)
    assert len(records) == n
    for record in records:
        assert record["label"] == token and record[field] == value
        assert record["judge"] == "judge" and record["raw_output"] == reply
        assert record["explanation"] == reply.split("Explanation: ")[1]
        assert any(f"Instruction: {record['input']['instruction']}\n" in p
                   for p in lm.prompts_seen)
    summary = read_json(tmp_path / "out.json.summary.json")
    assert summary["labelled"] == n and summary["invalid"] == 0 and summary["requests"] == n
    assert summary["prompt_tokens"] > 0 and summary["completion_tokens"] > 0
    assert not (tmp_path / "out.json.invalid.jsonl").exists()


def test_429_then_500_are_retried_and_counted(tmp_path, capsys):
    items = write_items(tmp_path / "items.jsonl", 3)
    with running_server(replying("[Relevant]\nExplanation: ok"), faults=(429, 500)) as server:
        code = label("chatgpt_relevance", server, items, tmp_path / "out.json",
                     "--concurrency", "1", "--price_per_1k_input", "10",
                     "--price_per_1k_output", "30")
    assert code == 0
    assert server.requests == 5 and server.faulted == 2 and server.completed == 3
    summary = read_json(tmp_path / "out.json.summary.json")
    assert summary["requests"] == 5 and summary["retries"] == 2 and summary["labelled"] == 3
    expected = (summary["prompt_tokens"] * 10 + summary["completion_tokens"] * 30) / 1000
    assert summary["cost_usd"] == pytest.approx(expected)
    assert "5 requests (2 retries)" in capsys.readouterr().out


def test_invalid_replies_are_counted_and_written_aside_never_mislabelled(tmp_path):
    items = write_items(tmp_path / "items.jsonl", 4)
    answers = {"item-1": "I cannot tell.", "item-2": "[Relevant] or [Irrelevant]"}

    def reply(prompt):
        tail = prompt[prompt.rfind("Instruction: item-"):]
        return next((a for k, a in answers.items() if tail.startswith(f"Instruction: {k} ")),
                    "[Irrelevant]\nExplanation: e")

    with running_server(replying(by_prompt=reply)) as server:
        assert label("chatgpt_relevance", server, items, tmp_path / "out.json") == 0
    records = read_json(tmp_path / "out.json")
    assert [r["input"]["q_id"] for r in records] == ["q0", "q3"]
    invalid = [json.loads(x) for x in (tmp_path / "out.json.invalid.jsonl").read_text().splitlines()]
    assert [(r["input"]["q_id"], r["problem"]) for r in invalid] == [
        ("q1", "no label"), ("q2", "several labels")]
    assert invalid[0]["source"].endswith("items.jsonl:2")
    assert read_json(tmp_path / "out.json.summary.json")["invalid"] == 2


def test_rerun_is_answered_from_the_cache(tmp_path):
    items = write_items(tmp_path / "items.jsonl", 3)
    with running_server(replying("[Relevant]\nExplanation: ok")) as server:
        assert label("chatgpt_relevance", server, items, tmp_path / "out.json") == 0
        first = (tmp_path / "out.json").read_text()
        assert label("chatgpt_relevance", server, items, tmp_path / "out.json") == 0
        assert server.requests == 3
        # A changed setting is a different request: asked again.
        assert label("chatgpt_relevance", server, items, tmp_path / "out.json",
                     "--max_tokens", "50") == 0
        assert server.requests == 6
    assert (tmp_path / "out.json").read_text() == first
    assert read_json(tmp_path / "out.json.summary.json")["from_cache"] == 0


def test_sigkill_mid_run_then_rerun_labels_every_item_exactly_once(tmp_path):
    """A kill -9 after two answers: the rerun pays only for the items without a cached answer.

    The third request is held by the server when the labeller is killed, and then fails: it was
    never answered, so it is the one request made twice. Every answered request is made once.
    """
    n = 5
    items = write_items(tmp_path / "items.jsonl", n)
    out, cache = tmp_path / "out.json", tmp_path / "out.json.cache.jsonl"
    held, release, first_run = threading.Event(), threading.Event(), [True]

    def script(prompt):
        if first_run[0] and "Instruction: item-2 " in prompt[prompt.rfind("##"):]:
            held.set()
            release.wait(30)
            raise RuntimeError("the labeller was killed while this request was held")
        return [Step({"[Irrelevant]\nExplanation: e": 1.0}), Step({"</s>": 1.0})]

    command = [sys.executable, str(SCRIPTS / "chatgpt_relevance.py"), "--input_files", str(items),
               "--output_file_name", str(out), "--model_name", "judge", "--concurrency", "1",
               *FAST]
    env = {**os.environ, "OPENAI_API_KEY": "test"}
    with running_server(ScriptedLM(script)) as server:
        command += ["--base_url", server.base_url]
        child = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while not held.is_set() and time.monotonic() < deadline and child.poll() is None:
            time.sleep(0.02)  # until the third request is inside the model, not just received
        assert server.requests == 3 and server.completed == 2
        child.send_signal(signal.SIGKILL)
        child.wait(10)
        first_run[0] = False
        release.set()
        assert child.returncode == -signal.SIGKILL
        assert not out.exists() and len(cache.read_text().splitlines()) == 2
        rerun = subprocess.run(command, check=False, cwd=ROOT, env=env, capture_output=True,
                               text=True, timeout=120)
        assert rerun.returncode == 0, rerun.stderr
    records = read_json(out)
    assert sorted(r["input"]["q_id"] for r in records) == [f"q{i}" for i in range(n)]
    assert server.completed == n  # no answered request was paid for twice
    assert server.requests == n + 1  # + the one held when the labeller was killed
    assert read_json(tmp_path / "out.json.summary.json")["from_cache"] == 2
    assert len(cache.read_text().splitlines()) == n


def test_dead_server_is_a_clear_error_and_the_cache_is_kept(tmp_path, capsys):
    items = write_items(tmp_path / "items.jsonl", 2)
    more = write_items(tmp_path / "more.jsonl", 4)
    out = tmp_path / "out.json"
    with running_server(replying("[Relevant]\nExplanation: ok")) as server:
        assert label("chatgpt_relevance", server, items, out) == 0
        before = out.read_text()
        server.stop()
        code = label("chatgpt_relevance", server, more, out, "--max_retries", "1")
    assert code == 2
    err = capsys.readouterr().err
    assert "error:" in err and "failed after 2 attempts" in err and str(out) + ".cache.jsonl" in err
    assert out.read_text() == before  # nothing half-written
    assert len(ReplyCache(f"{out}.cache.jsonl")) == 2


def test_missing_api_key_is_a_clear_error(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("OPENAI_API_KEY")
    items = write_items(tmp_path / "items.jsonl", 1)
    with running_server(replying("[Relevant]")) as server:
        assert label("chatgpt_relevance", server, items, tmp_path / "out.json") == 2
        assert "OPENAI_API_KEY" in capsys.readouterr().err and server.requests == 0
        (tmp_path / "key.txt").write_text(KEY + "\n")  # the original's --api_key FILE
        assert label("chatgpt_relevance", server, items, tmp_path / "out.json",
                     "--api_key", str(tmp_path / "key.txt")) == 0
    for path in tmp_path.iterdir():
        if path.name != "key.txt":
            assert KEY not in path.read_text()


@pytest.mark.parametrize(("content", "message"), [
    ('{"instruction": "a", "evidence": "e"}\n{"instruction": "b"}\n',
     "items.jsonl, line 2: field 'evidence': missing"),
    ('{"instruction": "a", "evidence": "e"}\n{"instruction": "b", "evidence": ["x"]}\n',
     "items.jsonl, line 2: field 'evidence': must be text"),
    ('{"instruction": "a", "evidence": "e"}\n{"instruction": \n',
     "items.jsonl, line 2: malformed JSON"),
    ('{"instruction": "a", "evidence": "e", "sent_idx": "1"}\n',
     "items.jsonl, line 1: field 'sent_idx': must be an integer"),
])
def test_malformed_input_names_file_line_and_field(tmp_path, capsys, content, message):
    items = tmp_path / "items.jsonl"
    items.write_text(content)
    with running_server(replying("[Relevant]")) as server:
        assert label("chatgpt_relevance", server, items, tmp_path / "out.json") == 2
    assert message in capsys.readouterr().err
    assert server.requests == 0 and not (tmp_path / "out.json").exists()


@pytest.mark.parametrize("timeout", ["0", "-1"])
def test_a_timeout_that_is_not_positive_says_so(tmp_path, capsys, timeout):
    # issue 12 item 13: --timeout 0 said "must not be negative"
    items = write_items(tmp_path / "items.jsonl", 1)
    with running_server(replying("[Relevant]")) as server:
        assert label("chatgpt_relevance", server, items, tmp_path / "out.json",
                     "--timeout", timeout) == 2
    assert capsys.readouterr().err == "error: --timeout: must be a positive number of seconds\n"
    assert server.requests == 0


@pytest.mark.parametrize("content", ["", "[]\n"])
def test_an_empty_input_is_an_error_and_writes_nothing(tmp_path, capsys, content):
    # issue 12 item 5: the labellers wrote "[]" and exited 0
    items = tmp_path / ("items.json" if content else "items.jsonl")
    items.write_text(content)
    with running_server(replying("[Relevant]")) as server:
        assert label("chatgpt_relevance", server, items, tmp_path / "out.json") == 2
    assert capsys.readouterr().err == f"error: {items}: no records (the input is empty)\n"
    assert server.requests == 0 and not (tmp_path / "out.json").exists()


def test_an_output_that_is_a_folder_fails_before_any_paid_request(tmp_path, capsys):
    # issue 12 item 10: the replies were bought, then writing the output failed
    items = write_items(tmp_path / "items.jsonl", 2)
    (tmp_path / "out.json").mkdir()
    with running_server(replying("[Relevant]")) as server:
        assert label("chatgpt_relevance", server, items, tmp_path / "out.json") == 2
    assert capsys.readouterr().err == (f"error: --output_file_name {tmp_path / 'out.json'}: is a "
                                       "folder, not a file\n")
    assert server.requests == 0


def test_a_second_run_on_the_same_reply_cache_is_refused_before_paying(tmp_path, capsys):
    # issue 12 item 2: two identical labelling runs at once each paid for every item
    from test_locks import OtherRun  # tests/ is on pytest's pythonpath

    items = write_items(tmp_path / "items.jsonl", 2)
    cache = tmp_path / "out.json.cache.jsonl"
    with OtherRun(cache) as other, running_server(replying("[Relevant]")) as server:
        assert label("chatgpt_relevance", server, items, tmp_path / "out.json") == 2
    assert f"--cache_file {cache} is being written by another run (process {other.pid}" in (
        capsys.readouterr().err)
    assert server.requests == 0 and not (tmp_path / "out.json").exists()


def test_previous_results_are_skipped_per_sentence(tmp_path):
    items = write_items(tmp_path / "items.jsonl", 3, q_id="same")
    with running_server(replying("[Relevant]\nExplanation: ok")) as server:
        assert label("chatgpt_relevance", server, items, tmp_path / "a.json", "--n", "1") == 0
        assert label("chatgpt_relevance", server, items, tmp_path / "b.json",
                     "--previous_results", str(tmp_path / "a.json")) == 0
    assert [r["input"]["sent_idx"] for r in read_json(tmp_path / "b.json")] == [1, 2]
    assert read_json(tmp_path / "b.json.summary.json")["skipped"] == {
        "already labelled (--previous_results)": 1}


def test_requests_run_concurrently(tmp_path):
    items = write_items(tmp_path / "items.jsonl", 8)
    with running_server(replying("[Relevant]"), delay=0.3) as server:
        started = time.monotonic()
        assert label("chatgpt_relevance", server, items, tmp_path / "out.json",
                     "--concurrency", "8") == 0
        elapsed = time.monotonic() - started
    assert server.completed == 8 and elapsed < 8 * 0.3 * 0.75


def test_cache_ignores_a_torn_last_line_and_appends_on_a_fresh_line(tmp_path):
    path = tmp_path / "c.jsonl"
    cache = ReplyCache(path)
    cache.put("k1", Completion("[Relevant]", 10, 2))
    with path.open("a") as handle:
        handle.write('{"key": "k2", "reply": "[Irr')  # a crash mid-write
    reloaded = ReplyCache(path)
    assert len(reloaded) == 1 and reloaded.torn_lines == 1 and "k2" not in reloaded
    reloaded.put("k3", Completion("[Irrelevant]", 10, 2))
    assert [json.loads(x)["key"] for x in path.read_text().splitlines()] == ["k1", "k3"]
