"""The OpenAI-compatible server over HTTP, with a scripted model whose numbers we know."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from support.ports import free_port
from support.server import running_server

from selfrag.lm.scripted import ScriptedLM, Step

ROOT = Path(__file__).resolve().parents[2]


def answer(prompt: str):
    """Three tokens then EOS; the first step's alternatives have known probabilities."""
    return [Step({"Paris": 0.6, "London": 0.3, "[Relevant]": 0.1}), Step({" is": 0.5}),
            Step({" nice.": 0.8}), Step({"</s>": 1.0})]


@pytest.fixture()
def scripted():
    return ScriptedLM(answer)


def post(server, path: str, body: dict) -> httpx.Response:
    return httpx.post(server.base_url + path, json=body, timeout=30)


def test_completion_text_finish_reason_usage_and_logprobs(scripted):
    with running_server(scripted, "critic") as server:
        reply = post(server, "/completions", {"model": "critic", "prompt": "Capital of France?",
                                             "max_tokens": 10, "logprobs": 2})
    assert reply.status_code == 200
    body = reply.json()
    choice = body["choices"][0]
    assert choice["text"] == "Paris is nice."
    assert choice["finish_reason"] == "stop"  # ended by EOS before max_tokens
    logprobs = choice["logprobs"]
    assert logprobs["tokens"] == ["Paris", " is", " nice."]
    assert logprobs["token_logprobs"] == pytest.approx([math.log(0.6), math.log(0.5), math.log(0.8)])
    assert logprobs["text_offset"] == [0, 5, 8]
    assert list(logprobs["top_logprobs"][0]) == ["Paris", "London"]
    assert logprobs["top_logprobs"][0]["London"] == pytest.approx(math.log(0.3))
    assert body["usage"] == {"prompt_tokens": 3, "completion_tokens": 3, "total_tokens": 6}
    assert scripted.prompts_seen == ["Capital of France?"]


def test_length_limit_and_stop_strings(scripted):
    with running_server(scripted, "critic") as server:
        short = post(server, "/completions", {"prompt": "q", "max_tokens": 2}).json()["choices"][0]
        stopped = post(server, "/completions", {"prompt": "q", "stop": [" nice", "zzz"],
                                                "logprobs": 0}).json()["choices"][0]
    assert (short["text"], short["finish_reason"]) == ("Paris is", "length")
    assert (stopped["text"], stopped["finish_reason"]) == ("Paris is", "stop")
    assert stopped["logprobs"]["tokens"] == ["Paris", " is"]
    assert stopped["logprobs"]["top_logprobs"] is None


def test_prompt_list_gives_one_choice_per_prompt(scripted):
    with running_server(scripted, "critic") as server:
        body = post(server, "/completions", {"prompt": ["a", "b c"], "max_tokens": 5}).json()
    assert [c["index"] for c in body["choices"]] == [0, 1]
    assert body["usage"]["prompt_tokens"] == 3


def test_chat_without_template_uses_the_user_message(scripted):
    with running_server(scripted, "critic") as server:
        one = post(server, "/chat/completions", {
            "messages": [{"role": "user", "content": "Rate this."}], "logprobs": True,
            "top_logprobs": 1}).json()
        post(server, "/chat/completions", {"messages": [
            {"role": "system", "content": "You judge."}, {"role": "user", "content": "Rate."}]})
        turns = post(server, "/chat/completions", {"messages": [
            {"role": "user", "content": "a"}, {"role": "assistant", "content": "b"},
            {"role": "user", "content": "c"}]})
    choice = one["choices"][0]
    assert choice["message"] == {"role": "assistant", "content": "Paris is nice."}
    first = choice["logprobs"]["content"][0]
    assert first["token"] == "Paris" and first["logprob"] == pytest.approx(math.log(0.6))
    assert [t["token"] for t in first["top_logprobs"]] == ["Paris"]
    assert scripted.prompts_seen == ["Rate this.", "You judge.\n\nRate."]
    assert turns.status_code == 400 and "chat template" in turns.json()["error"]["message"]


def test_refusals_use_openai_error_bodies(scripted):
    with running_server(scripted, "critic") as server:
        wrong_model = post(server, "/completions", {"model": "gpt-4", "prompt": "x"})
        streaming = post(server, "/completions", {"prompt": "x", "stream": True})
        invalid = post(server, "/completions", {"prompt": "x", "max_tokens": 0})
        missing = post(server, "/chat/completions", {"messages": []})
    assert wrong_model.status_code == 404
    assert wrong_model.json()["error"]["code"] == "model_not_found"
    assert streaming.status_code == 400 and "stream" in streaming.json()["error"]["message"]
    assert invalid.status_code == 400 and invalid.json()["error"]["param"] == "max_tokens"
    assert missing.status_code == 400
    assert scripted.calls == []


def test_generation_failure_is_a_500_and_the_server_keeps_serving():
    calls = []

    def flaky(prompt):
        calls.append(prompt)
        if len(calls) == 1:
            raise RuntimeError("out of memory")
        return answer(prompt)

    with running_server(ScriptedLM(flaky), "critic") as server:
        failed = post(server, "/completions", {"prompt": "x"})
        ok = post(server, "/completions", {"prompt": "x"})
    assert failed.status_code == 500 and "out of memory" in failed.json()["error"]["message"]
    assert ok.status_code == 200


def test_concurrent_requests_share_batches(scripted):
    with running_server(scripted, "critic", batch_window=0.3) as server:
        replies = []

        def ask(i):
            replies.append(post(server, "/completions", {"prompt": f"q{i}", "max_tokens": 5}))

        threads = [threading.Thread(target=ask, args=(i,)) for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert [r.status_code for r in replies] == [200] * 8
    assert sorted(scripted.prompts_seen) == [f"q{i}" for i in range(8)]
    assert len(scripted.calls) < 8  # several requests went through one generate call


def test_openai_client_and_fault_injection(scripted):
    import openai

    with running_server(scripted, "critic", faults=(429,)) as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="test", max_retries=0)
        with pytest.raises(openai.RateLimitError):
            client.completions.create(model="critic", prompt="x", max_tokens=5)
        completion = client.completions.create(model="critic", prompt="x", max_tokens=5)
        chat = client.chat.completions.create(model="critic", max_tokens=5,
                                              messages=[{"role": "user", "content": "x"}])
        assert [m.id for m in client.models.list()] == ["critic"]
        counts = (server.requests, server.faulted, server.completed)
    assert completion.choices[0].text == "Paris is nice."
    assert chat.choices[0].message.content == "Paris is nice."
    assert chat.usage.completion_tokens == 3
    assert counts == (3, 1, 2)


def test_hf_backend_logprobs_match_direct_generation(tiny_model_path):
    from selfrag.lm import GenerationRequest
    from selfrag.lm.hf import HFLanguageModel

    lm = HFLanguageModel(tiny_model_path, device="cpu")
    direct = lm.generate(["Hello there"], GenerationRequest(max_new_tokens=4, top_logprobs=3))[0]
    with running_server(lm, "tiny") as server:
        body = post(server, "/completions", {"prompt": "Hello there", "max_tokens": 4,
                                             "temperature": 0, "logprobs": 3}).json()
    logprobs = body["choices"][0]["logprobs"]
    kept = len(logprobs["tokens"])
    assert logprobs["token_logprobs"] == pytest.approx(list(direct.token_logprobs[:kept]), abs=1e-5)
    best = max(logprobs["top_logprobs"][0].values())
    assert best == pytest.approx(direct.top_logprobs[0][0][1], abs=1e-5)
    assert body["usage"]["prompt_tokens"] == len(lm.tokenizer("Hello there",
                                                              add_special_tokens=False)["input_ids"])


def test_a_prompt_longer_than_the_context_is_an_openai_400(tiny_model_path):
    # issue 12 item 4: `selfrag serve` generated past the model's 4,096 positions
    from selfrag.lm.hf import HFLanguageModel

    lm = HFLanguageModel(tiny_model_path, device="cpu")
    with running_server(lm, "tiny") as server:
        too_long = post(server, "/completions", {"prompt": "Hello there. " * 20_000,
                                                 "max_tokens": 4})
        chat = post(server, "/chat/completions", {"messages": [
            {"role": "user", "content": "Hello there. " * 20_000}], "max_tokens": 4})
        fine = post(server, "/completions", {"prompt": "Hello", "max_tokens": 2})
    assert too_long.status_code == 400 and chat.status_code == 400
    error = too_long.json()["error"]
    assert (error["type"], error["param"], error["code"]) == (
        "invalid_request_error", "prompt", "context_length_exceeded")
    assert error["message"].startswith("This model's maximum context length is 4096 tokens")
    assert chat.json()["error"]["param"] == "messages"
    assert fine.status_code == 200



def test_selfrag_serve_command(tiny_model_path):
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [sys.executable, "-m", "selfrag", "serve", "--model_name", tiny_model_path,
         "--served_model_name", "tiny", "--device", "cpu", "--port", str(port)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None, process.stdout.read()
            assert time.monotonic() < deadline, "server did not come up"
            time.sleep(0.5)
        reply = httpx.post(f"http://127.0.0.1:{port}/v1/completions", timeout=60,
                           json={"model": "tiny", "prompt": "Hi", "max_tokens": 3})
        assert reply.status_code == 200 and reply.json()["model"] == "tiny"
    finally:
        process.terminate()
        process.wait(timeout=30)
