"""Worker-side job functions (run inside the pool's processes; module imported once per worker)."""

from __future__ import annotations

from collections.abc import Callable

from teeprover.errors import InternalError


def _split(payload: bytes) -> tuple[str, bytes]:
    content_type, _, body = payload.partition(b"\n")
    return content_type.decode(), body


def k(payload: bytes, should_stop: Callable[[], bool]) -> bytes:
    raise InternalError("engine not wired yet")


def check(payload: bytes, should_stop: Callable[[], bool]) -> bytes:
    raise InternalError("engine not wired yet")


def prove(payload: bytes, should_stop: Callable[[], bool]) -> bytes:
    raise InternalError("engine not wired yet")


def prove_tx(payload: bytes, should_stop: Callable[[], bool]) -> bytes:
    raise InternalError("engine not wired yet")
