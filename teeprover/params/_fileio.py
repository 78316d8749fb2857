"""Durable file operations shared by the parameter store: hashing, fsync, atomic writes, locks."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

CHUNK = 1 << 20


def hash_file_into(f: BinaryIO, hasher: hashlib._Hash, limit: int | None = None,
                   on_chunk: Callable[[int], None] | None = None) -> int:
    """Feed ``f`` (from its current position, up to ``limit`` bytes) into ``hasher``; return bytes read."""
    done = 0
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    while limit is None or done < limit:
        want = CHUNK if limit is None else min(CHUNK, limit - done)
        n = f.readinto(view[:want])  # type: ignore[attr-defined]
        if not n:
            break
        hasher.update(view[:n])
        done += n
        if on_chunk is not None:
            on_chunk(done)
    return done


def sha256_file(path: Path, on_chunk: Callable[[int], None] | None = None) -> tuple[str, int]:
    """(hex sha256, size) of the file at ``path``."""
    hasher = hashlib.sha256()
    with open(path, "rb", buffering=0) as f:
        size = hash_file_into(f, hasher, on_chunk=on_chunk)  # type: ignore[arg-type]
    return hasher.hexdigest(), size


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so readers see the old or the new content, never a mix."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)


@contextlib.contextmanager
def exclusive_lock(path: Path) -> Iterator[None]:
    """A cross-process lock (flock on ``path``); released by the kernel if the holder dies."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing drops the flock


def try_lock_exclusive(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def lock_shared(fd: int) -> None:
    fcntl.flock(fd, fcntl.LOCK_SH)
