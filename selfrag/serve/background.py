"""Run an app with uvicorn in a background thread (tests, benchmarks, notebooks)."""

from __future__ import annotations

import socket
import threading
import time
from typing import Self

import uvicorn


class BackgroundServer:
    """Serves ``app`` on 127.0.0.1 from a daemon thread; a context manager.

    Attributes:
        port: the port it listens on (a free one unless given).
        base_url: ``http://127.0.0.1:<port>/v1``, what an ``openai`` client needs.
    """

    def __init__(self, app, port: int = 0, startup_timeout: float = 30.0):
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind(("127.0.0.1", port))
        self.port = self._socket.getsockname()[1]
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        config = uvicorn.Config(app, log_level="warning", lifespan="on")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._socket]},
                                        name="selfrag-serve", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + startup_timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the background server did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        """Shut down; later connections are refused (a dead server)."""
        self._server.should_exit = True
        self._thread.join(timeout=30)
        self._socket.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        if self._thread.is_alive():
            self.stop()
