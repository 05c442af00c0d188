"""The OpenAI path of run_baseline_lm.py against a local OpenAI-compatible server."""

import json
import logging
from pathlib import Path

import pytest

from support.fake_openai import FakeOpenAI

from selfrag.cli import run_main
from selfrag.errors import SelfRagError
from selfrag.lm.openai_completions import OpenAICompletionClient

import run_baseline_lm

ROOT = Path(__file__).resolve().parents[2]

KEY = "sk-test-key-never-logged-123"
POPQA = ROOT / "eval_data/popqa_longtail_w_gs.head100.jsonl"


@pytest.fixture()
def popqa3(tmp_path):
    path = tmp_path / "popqa3.jsonl"
    path.write_text("".join(POPQA.read_text().splitlines(keepends=True)[:3]))
    return str(path)


@pytest.fixture(autouse=True)
def environment(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)


def run(tmp_path, server, *extra):
    out = tmp_path / "out.jsonl"
    argv = ["--result_fp", str(out), "--openai_base_url", server.base_url,
            "--openai_backoff", "0.001", "--max_new_tokens", "7", *extra]
    code = run_main(run_baseline_lm.main, argv)
    return code, ([json.loads(x) for x in out.read_text().splitlines()] if out.exists() else None)


def test_chat_model_one_user_message_greedy_and_cut_at_blank_line(tmp_path, popqa3, capsys, caplog):
    caplog.set_level(logging.DEBUG)
    with FakeOpenAI(answer=lambda prompt: "politician\n\nand more") as server:
        code, records = run(tmp_path, server, "--model_name", "gpt-3.5-turbo", "--input_file", popqa3)
    assert code == 0 and len(server.requests) == 3
    body = server.requests[0]["body"]
    assert server.requests[0]["path"] == "/v1/chat/completions"
    assert body["model"] == "gpt-3.5-turbo" and body["temperature"] == 0 and body["max_tokens"] == 7
    assert body["messages"] == [{"role": "user", "content":
                                 "### Instruction:\nWhat is Henry Feilden's occupation?\n\n### Response:\n"}]
    assert server.requests[0]["authorization"] == f"Bearer {KEY}"
    assert [r["output"] for r in records] == ["politician"] * 3
    assert records[0]["metric_result"] == 1.0
    captured = capsys.readouterr()
    assert KEY not in captured.out + captured.err + caplog.text
    assert KEY not in (tmp_path / "out.jsonl").read_text()


def test_completions_model_with_retrieved_passages_and_base_url_from_env(tmp_path, popqa3, monkeypatch):
    with FakeOpenAI(answer=lambda prompt: " Paris") as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        code = run_main(run_baseline_lm.main, [
            "--result_fp", str(tmp_path / "o.jsonl"), "--model_name", "text-davinci-003",
            "--input_file", popqa3, "--mode", "retrieval", "--top_n", "2"])
    assert code == 0 and len(server.requests) == 3
    request = server.requests[0]
    assert request["path"] == "/v1/completions"
    assert request["body"]["prompt"].startswith("Below is an instruction that describes a task.")
    assert "### Paragraph:\n[0] Henry Feilden (Conservative politician)\n" in request["body"]["prompt"]


def test_429_then_500_are_retried_then_succeed(tmp_path, popqa3):
    with FakeOpenAI(answer=lambda prompt: "politician", failures=[429, 500]) as server:
        code, records = run(tmp_path, server, "--model_name", "gpt-4o-mini", "--input_file", popqa3)
    assert code == 0 and len(records) == 3
    assert len(server.requests) == 5  # 2 failures + 3 answers


def test_persistent_5xx_gives_one_clear_error_after_the_retries(tmp_path, popqa3, capsys):
    with FakeOpenAI(always_fail=500) as server:
        code, records = run(tmp_path, server, "--model_name", "gpt-4o-mini", "--input_file", popqa3,
                            "--openai_retries", "2")
    assert code == 2 and records is None
    assert len(server.requests) == 3  # first try + 2 retries, then it stops
    err = capsys.readouterr().err
    assert "failed after 3 attempts" in err and "HTTP 500" in err and server.base_url in err
    assert KEY not in err
    assert not list(tmp_path.glob("out.jsonl*"))  # neither output nor an empty journal


def test_refused_request_is_not_retried(tmp_path, popqa3, capsys):
    with FakeOpenAI(always_fail=401) as server:
        code, _ = run(tmp_path, server, "--model_name", "gpt-4o-mini", "--input_file", popqa3)
    assert code == 2 and len(server.requests) == 1
    assert "refused: HTTP 401" in capsys.readouterr().err


def test_key_from_the_original_api_key_file_and_missing_key(tmp_path, popqa3, monkeypatch, capsys):
    monkeypatch.delenv("OPENAI_API_KEY")
    key_file = tmp_path / "key.txt"
    key_file.write_text("sk-from-file\n")
    with FakeOpenAI() as server:
        code, _ = run(tmp_path, server, "--model_name", "gpt-4o-mini", "--input_file", popqa3,
                      "--api_key", str(key_file))
        assert code == 0 and server.requests[0]["authorization"] == "Bearer sk-from-file"
        code, _ = run(tmp_path, server, "--model_name", "gpt-4o-mini", "--input_file", popqa3)
    assert code == 2 and "set OPENAI_API_KEY" in capsys.readouterr().err


def test_rag_modes_refuse_openai_models(tmp_path, popqa3, capsys):
    with FakeOpenAI() as server:
        code, _ = run(tmp_path, server, "--model_name", "gpt-4o-mini", "--input_file", popqa3,
                      "--mode", "rag_token", "--top_n", "2")
    assert code == 2 and not server.requests
    assert "use --backend hf" in capsys.readouterr().err


def test_client_retry_loop_is_bounded_without_the_cli():
    with FakeOpenAI(failures=[503, 503, 503]) as server:
        client = OpenAICompletionClient("m", KEY, server.base_url, "chat", max_retries=1,
                                        backoff=0.001)
        with pytest.raises(SelfRagError, match="after 2 attempts.*HTTP 503"):
            client.complete_texts(["hi"], 5)
        assert len(server.requests) == 2
        assert client.complete_texts(["hi"], 5) == ["ok"]  # third 503, then success
        assert len(server.requests) == 4
