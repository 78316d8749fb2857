"""A real HTTP parameter mirror on loopback for the params tests.

``ThreadingHTTPServer`` in a thread, serving in-memory files under one or more
path prefixes, with ``Range: bytes=N-`` support and a log of every request.
Faults are switched per prefix: throttling, cutting the connection after some
bytes, ignoring ranges, a fixed error status.
"""

from __future__ import annotations

import re
import socket
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.support.loopback_http import LoopbackHttp

_RANGE = re.compile(r"bytes=(\d+)-")


@dataclass
class Behaviour:
    status: int | None = None  # answer every request with this status
    cut_after: int | None = None  # close the connection after this many body bytes
    ignore_range: bool = False
    chunk: int = 256 * 1024
    delay: float = 0.0  # seconds between chunks (throttling)


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    range: str | None
    bytes_sent: int


@dataclass
class _Shared:
    files: dict[str, bytes] = field(default_factory=dict)
    behaviours: dict[str, Behaviour] = field(default_factory=dict)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Any

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - keep test output quiet
        pass

    def do_GET(self) -> None:  # noqa: N802
        shared, http = self.server.owner, self.server.http
        prefix, _, name = self.path.lstrip("/").partition("/")
        beh = shared.behaviours.get(prefix, Behaviour())
        rng = self.headers.get("Range")
        sent = 0
        with http.answering() as log:
            try:
                data = shared.files.get(name)
                if beh.status is not None or data is None:
                    self._empty(beh.status or 404)
                    return
                start = 0
                m = _RANGE.fullmatch(rng or "")
                if m and not beh.ignore_range:
                    start = int(m.group(1))
                    if start >= len(data):
                        self._empty(416, {"Content-Range": f"bytes */{len(data)}"})
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(data) - start))
                self.send_header("Accept-Ranges", "bytes")
                self.end_headers()
                view = memoryview(data)[start:]
                limit = len(view) if beh.cut_after is None else min(beh.cut_after, len(view))
                while sent < limit and not http.stopping.is_set():
                    piece = view[sent:min(sent + beh.chunk, limit)]
                    self.wfile.write(piece)
                    sent += len(piece)
                    if beh.delay:
                        self.wfile.flush()
                        time.sleep(beh.delay)
                if sent < len(view):
                    self.close_connection = True  # cut: the client sees a short body
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True
            finally:
                log(Request("GET", self.path, rng, sent))

    def _empty(self, status: int, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", "0")
        self.end_headers()


class Mirror:
    """``with Mirror() as m: m.files["a.ptau"] = data; url = m.base("p")`` → http://127.0.0.1:PORT/p/"""

    def __init__(self) -> None:
        self._shared = _Shared()
        self._http = LoopbackHttp(_Handler, "params-mirror", owner=self._shared)

    @property
    def files(self) -> dict[str, bytes]:
        return self._shared.files

    def base(self, prefix: str = "m", behaviour: Behaviour | None = None) -> str:
        if behaviour is not None:
            self._shared.behaviours[prefix] = behaviour
        return f"{self._http.url}/{prefix}/"

    def behave(self, prefix: str, behaviour: Behaviour) -> None:
        self._shared.behaviours[prefix] = behaviour

    def requests(self, prefix: str | None = None) -> list[Request]:
        """Finished requests (waits briefly for those still being answered, so counts are exact)."""
        return [r for r in self._http.requests() if prefix is None or r.path.startswith(f"/{prefix}/")]

    def __enter__(self) -> Mirror:
        self._http.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._http.stop()


def dead_url() -> str:
    """An http:// base URL on loopback where nothing listens (connection refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/gone/"


def random_file(seed: int, size: int = 300 * 1024) -> bytes:
    """Stand-in parameter file: the content format does not matter to the store."""
    import random

    return random.Random(seed).randbytes(size)


def manifest_for(files: dict[int, bytes], mirrors: list[str], *, insecure: bool = False):  # noqa: ANN201
    """A manifest describing ``files`` (k → bytes) as ``p<k>.ptau`` under ``mirrors``."""
    import hashlib

    from teeprover.params.manifest import Manifest, ParamEntry

    entries = {k: ParamEntry(k=k, file_name=f"p{k}.ptau", size=len(data), sha256=hashlib.sha256(data).hexdigest(),
                             insecure=insecure) for k, data in files.items()}
    return Manifest(mirrors=tuple(mirrors), entries=entries)


def leftovers(cache_dir) -> list[str]:  # noqa: ANN001
    """Every name in ``cache_dir`` except the store's own bookkeeping (state file, lock folder)."""
    from teeprover.params.store import LOCK_DIR, STATE_FILE

    return sorted(p.name for p in cache_dir.iterdir() if p.name not in (STATE_FILE, LOCK_DIR))
