"""A ThreadingHTTPServer on 127.0.0.1:0, run in a thread: the plumbing every fake HTTP service shares
(params mirror, fake PCCS, fake MAA/IMDS).  ``with LoopbackHttp(handler, name) as srv: srv.url``."""

from __future__ import annotations

import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class _Server(ThreadingHTTPServer):
    daemon_threads = False  # server_close() joins every handler thread
    block_on_close = True
    owner: Any = None  # the fake's shared state, for handlers (``self.server.owner``)

    def handle_error(self, request: object, client_address: object) -> None:
        # Clients that gave up (timeout tests) or were killed mid-download (resume tests) reset the connection.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)  # type: ignore[arg-type]


class LoopbackHttp:
    """Starts on ``__enter__``, stops on ``__exit__`` (shutdown, close, join: nothing outlives the test)."""

    def __init__(self, handler: type[BaseHTTPRequestHandler], name: str, owner: Any = None) -> None:
        self.server = _Server(("127.0.0.1", 0), handler)
        self.server.owner = owner
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=name, daemon=True)

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` (no trailing slash)."""
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=10)

    def __enter__(self) -> LoopbackHttp:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
