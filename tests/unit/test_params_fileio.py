"""Durable file operations of the parameter store (teeprover/params/_fileio.py), on real files.

An atomic write leaves the old content or the new one and never a temporary file; hashing reads a given
prefix; the locks are flock locks that a second open file description sees.
"""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

import pytest

from teeprover.params._fileio import (
    atomic_write_bytes,
    hash_file_into,
    lock_shared,
    sha256_file,
    try_lock_exclusive,
)


def test_atomic_write_replaces_the_content_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "manifest.json"
    atomic_write_bytes(target, b"old")
    atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"new"
    assert [p.name for p in tmp_path.iterdir()] == ["manifest.json"]


def test_a_failed_atomic_write_keeps_nothing_of_itself(tmp_path: Path) -> None:
    target = tmp_path / "taken"
    (target / "child").mkdir(parents=True)  # a non-empty directory where the file should go: rename fails
    with pytest.raises(OSError):
        atomic_write_bytes(target, b"data")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]  # the temporary file is gone
    assert (target / "child").is_dir()


def test_hashing_reads_a_prefix_and_reports_progress(tmp_path: Path) -> None:
    data = os.urandom(3 * (1 << 20) + 5)
    seen: list[int] = []
    hasher = hashlib.sha256()
    assert hash_file_into(io.BytesIO(data), hasher, limit=(1 << 20) + 1, on_chunk=seen.append) == (1 << 20) + 1
    assert hasher.hexdigest() == hashlib.sha256(data[:(1 << 20) + 1]).hexdigest()
    assert seen == [1 << 20, (1 << 20) + 1]
    (tmp_path / "f").write_bytes(data)
    assert sha256_file(tmp_path / "f") == (hashlib.sha256(data).hexdigest(), len(data))


def test_an_exclusive_lock_is_refused_while_another_holder_has_the_file(tmp_path: Path) -> None:
    path = tmp_path / "k.lock"
    first = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    second = os.open(path, os.O_RDWR)
    try:
        lock_shared(first)
        assert not try_lock_exclusive(second)  # a reader holds it
        os.close(first)  # closing drops the lock
        first = -1
        assert try_lock_exclusive(second)
    finally:
        for fd in (first, second):
            if fd >= 0:
                os.close(fd)
