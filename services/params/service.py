"""Thin gRPC handlers of teeprover.v1.Params over :class:`teeprover.params.store.ParamStore`."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import Any

import grpc
from google.api import httpbody_pb2

from teeprover.errors import InvalidInput, NotFound, Unavailable
from teeprover.params.manifest import check_k
from teeprover.params.store import ParamStore
from teeprover.v1 import params_pb2, params_pb2_grpc

CHUNK = 1 << 20


def parse_k(text: str) -> int:
    """The REST path segment ``{k}`` → an int in 10..24, or a 400 naming the rule."""
    if not text.isascii() or not text.isdigit() or len(text) > 3:
        raise InvalidInput(f"k must be an integer in 10..24, not {text!r}", details={"k": text})
    return check_k(int(text))


class ParamsServicer(params_pb2_grpc.ParamsServicer):
    def __init__(self, store: ParamStore | None, *, fetch_enabled: bool = True) -> None:
        self._store = store
        self.fetch_enabled = fetch_enabled

    @property
    def store(self) -> ParamStore:
        if self._store is None:
            raise Unavailable("the parameter cache directory is not usable yet")
        return self._store

    @store.setter
    def store(self, value: ParamStore) -> None:
        self._store = value

    def FetchParams(self, request: Any, context: grpc.ServicerContext) -> httpbody_pb2.HttpBody:
        if not self.fetch_enabled:
            raise NotFound("fetching parameters over the API is disabled on this server")
        self.store.ensure(parse_k(request.k))
        return httpbody_pb2.HttpBody(content_type="text/plain", data=b"success")

    def Fetch(self, request: Any, context: grpc.ServicerContext) -> Iterator[params_pb2.FetchProgress]:
        k = check_k(request.k)
        updates: queue.Queue[tuple[str, int, int] | BaseException | None] = queue.Queue(maxsize=256)

        def progress(phase: str, done: int, total: int) -> None:
            try:
                updates.put_nowait((phase, done, total))
            except queue.Full:  # a slow reader only misses intermediate updates
                pass

        def work() -> None:
            try:
                self.store.ensure(k, progress)
                updates.put(None)
            except BaseException as exc:  # noqa: BLE001 - handed to the RPC thread
                updates.put(exc)

        threading.Thread(target=work, name=f"fetch-{k}", daemon=True).start()
        while True:
            item = updates.get(timeout=3600)
            if item is None:
                break
            if isinstance(item, BaseException):
                raise item
            phase, done, total = item
            yield params_pb2.FetchProgress(phase=phase, bytes_done=done, bytes_total=total)
        entry = self.store.manifest.entry(k)
        yield params_pb2.FetchProgress(phase="done", bytes_done=entry.size, bytes_total=entry.size)

    def Get(self, request: Any, context: grpc.ServicerContext) -> Iterator[params_pb2.ParamsChunk]:
        k = check_k(request.k)
        with self.store.open_verified(k) as verified:
            entry = verified.entry
            for offset, data in verified.chunks(CHUNK):
                if not context.is_active():
                    return
                yield params_pb2.ParamsChunk(offset=offset, data=data, total_size=entry.size, sha256=entry.sha256,
                                             file_name=entry.file_name)

    def List(self, request: Any, context: grpc.ServicerContext) -> params_pb2.ListResponse:
        entries = [
            params_pb2.ParamsEntry(k=c.k, file_name=c.file_name, size=c.size, sha256=c.sha256 or "",
                                   insecure=c.insecure,
                                   verified_at=c.verified_at.isoformat() if c.verified_at else "")
            for c in self.store.list()
        ]
        return params_pb2.ListResponse(entries=entries)
