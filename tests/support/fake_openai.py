"""A minimal OpenAI-compatible server on 127.0.0.1 for tests (stdlib only).

Serves ``POST /v1/chat/completions`` and ``POST /v1/completions``. ``failures`` lists HTTP
statuses to answer, in order, before answering normally; ``answer(prompt)`` gives the text.
Every request is counted and recorded; past ``max_requests`` the server answers 400, so a
runaway client cannot loop forever.

It stands in for OpenAI itself: no model, no tokenizer, and each request's path, body and
``Authorization`` header are kept, so tests can check what our client puts on the wire. To test
against the project's own server (``selfrag serve``) instead, use :mod:`support.server`.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeOpenAI:
    def __init__(self, answer: Callable[[str], str] = lambda prompt: "ok",
                 failures: list[int] | None = None, always_fail: int | None = None,
                 max_requests: int = 50):
        self.answer, self.failures, self.always_fail = answer, list(failures or []), always_fail
        self.max_requests = max_requests
        self.requests: list[dict] = []  # {"path", "body", "authorization"}
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __enter__(self) -> FakeOpenAI:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)

    def _next_status(self) -> int:
        with self._lock:
            if len(self.requests) > self.max_requests:
                return 400
            if self.always_fail is not None:
                return self.always_fail
            return self.failures.pop(0) if self.failures else 200

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output quiet
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])) or b"{}")
                with fake._lock:
                    fake.requests.append({"path": self.path, "body": body,
                                          "authorization": self.headers.get("Authorization")})
                status = fake._next_status()
                if status != 200:
                    return self._send(status, {"error": {"message": f"simulated {status}",
                                                         "type": "server_error", "code": None}})
                if self.path.endswith("/chat/completions"):
                    prompt = body["messages"][-1]["content"]
                    choice = {"index": 0, "finish_reason": "stop",
                              "message": {"role": "assistant", "content": fake.answer(prompt)}}
                    kind = "chat.completion"
                elif self.path.endswith("/completions"):
                    choice = {"index": 0, "finish_reason": "stop", "logprobs": None,
                              "text": fake.answer(body["prompt"])}
                    kind = "text_completion"
                else:
                    return self._send(404, {"error": {"message": "no such route"}})
                self._send(200, {"id": "fake-1", "object": kind, "created": 0,
                                 "model": body.get("model"), "choices": [choice],
                                 "usage": {"prompt_tokens": 1, "completion_tokens": 1,
                                           "total_tokens": 2}})

            def _send(self, status: int, payload: dict) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler
