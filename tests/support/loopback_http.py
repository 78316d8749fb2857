"""A ThreadingHTTPServer on 127.0.0.1:0, run in a thread: the plumbing every fake HTTP service shares
(params mirror, fake PCCS, fake MAA/IMDS).  ``with LoopbackHttp(handler, name) as srv: srv.url``.

It also keeps the request log the fakes share: a handler wraps its answer in
``with self.server.http.answering() as log: ...`` and calls ``log(entry)``; ``requests()``
returns the entries of finished requests (after waiting briefly for those still being
answered, so counts are exact).  ``stopping`` is set when the server stops, so a handler's long
wait can be cut short with ``stopping.wait(seconds)``.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class _Server(ThreadingHTTPServer):
    daemon_threads = False  # server_close() joins every handler thread
    block_on_close = True
    owner: Any = None  # the fake's shared state, for handlers (``self.server.owner``)
    http: LoopbackHttp  # the request log, for handlers (``self.server.http``)

    def handle_error(self, request: object, client_address: object) -> None:
        # Clients that gave up (timeout tests) or were killed mid-download (resume tests) reset the connection.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)  # type: ignore[arg-type]


class LoopbackHttp:
    """Starts on ``__enter__``, stops on ``__exit__`` (shutdown, close, join: nothing outlives the test)."""

    def __init__(self, handler: type[BaseHTTPRequestHandler], name: str, owner: Any = None) -> None:
        self.server = _Server(("127.0.0.1", 0), handler)
        self.server.owner = owner
        self.server.http = self
        self.stopping = threading.Event()
        self._log: list[Any] = []
        self._active = 0  # requests being answered right now
        self._idle = threading.Condition()
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=name, daemon=True)

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` (no trailing slash)."""
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    @contextmanager
    def answering(self) -> Iterator[Callable[[Any], None]]:
        """Around one request's answer; the entries passed to the yielded function are logged when it ends."""
        entries: list[Any] = []
        with self._idle:
            self._active += 1
        try:
            yield entries.append
        finally:
            with self._idle:
                self._log.extend(entries)
                self._active -= 1
                self._idle.notify_all()

    def requests(self) -> list[Any]:
        """The log entries of finished requests (waits briefly for those still being answered)."""
        with self._idle:
            self._idle.wait_for(lambda: self._active == 0, timeout=5)
            return list(self._log)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.stopping.set()
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=10)

    def __enter__(self) -> LoopbackHttp:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def send(handler: BaseHTTPRequestHandler, status: int, content_type: str, body: bytes) -> None:
    """Answer ``status`` with ``body`` (Content-Type and Content-Length set)."""
    handler.send_response(status)
    handler.send_header("Content-Type", content_type)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)
