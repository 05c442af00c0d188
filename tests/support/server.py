"""The project's OpenAI-compatible server on 127.0.0.1, with request counting and faults.

Tests talk to the real ``selfrag.serve`` app over HTTP. A middleware in front of it counts every
generation request it receives (failed ones included) and can answer the first requests with
error statuses (429, 500, ...) or slow every request down, so retry, resume and "no request paid
twice" behaviour can be checked on the server side.

Unlike :mod:`support.fake_openai` (a stand-in for OpenAI that records what a client sends and
runs no model), this serves a real model through the real app, so a test exercises both ends.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from starlette.responses import JSONResponse

from selfrag.serve import create_app
from selfrag.serve.background import BackgroundServer

GENERATION_PATHS = ("/v1/completions", "/v1/chat/completions")


class ServerHandle:
    """What a test sees of a running server.

    Attributes:
        base_url: ``http://127.0.0.1:<port>/v1``.
        requests: generation requests received (faulted ones included).
        completed: generation requests answered with status 200.
        faulted: requests answered with an injected fault.
    """

    def __init__(self, server: BackgroundServer):
        self._server = server
        self.base_url = server.base_url
        self.requests = self.completed = self.faulted = 0
        self.lock = threading.Lock()

    def stop(self) -> None:
        """Kill the server: later requests fail to connect."""
        self._server.stop()


@contextmanager
def running_server(lm, model_name: str = "judge", *, faults: Sequence[int] = (),
                   delay: float = 0.0, **app_options) -> Iterator[ServerHandle]:
    """Serve ``lm`` on a free local port for the duration of the ``with`` block.

    Args:
        lm: any ``selfrag.lm`` backend (a ``ScriptedLM`` for controlled replies).
        faults: HTTP statuses returned, in order, for the first generation requests.
        delay: seconds each generation request is held before it is served.
    """
    app = create_app(lm, model_name, **app_options)
    pending = list(faults)
    handle: ServerHandle | None = None

    @app.middleware("http")
    async def count_and_fault(request, call_next):
        if request.method != "POST" or request.url.path not in GENERATION_PATHS:
            return await call_next(request)
        with handle.lock:
            handle.requests += 1
            fault = pending.pop(0) if pending else None
        if fault is not None:
            with handle.lock:
                handle.faulted += 1
            return JSONResponse({"error": {"message": f"injected fault {fault}", "type": "test",
                                           "param": None, "code": None}}, status_code=fault)
        if delay:
            await asyncio.sleep(delay)
        response = await call_next(request)
        if response.status_code == 200:
            with handle.lock:
                handle.completed += 1
        return response

    with BackgroundServer(app) as server:
        handle = ServerHandle(server)
        yield handle
