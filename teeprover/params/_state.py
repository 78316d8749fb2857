"""What the store has verified: ``{k: size, mtime_ns, ctime_ns, inode, sha256, verified_at, last_used}``.

Hashing a k=24 file takes seconds, so a file is hashed once and the result is
kept here with the file's identity (size, mtime, ctime, inode). A file whose
identity changed since is hashed again. Losing or corrupting this file only
costs a re-hash: it is a cache of verification, never a source of trust on
its own (the manifest's hash is).

The JSON lives in the cache directory and may be shared by several processes;
every update re-reads it under a flock and rewrites it atomically.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from teeprover.params._fileio import atomic_write_bytes, exclusive_lock

STATE_VERSION = 1


@dataclass(frozen=True)
class FileRecord:
    file_name: str
    size: int
    mtime_ns: int
    ctime_ns: int
    inode: int
    sha256: str
    verified_at: float  # seconds since the epoch (UTC)
    last_used: float  # seconds since the epoch; orders eviction

    def matches(self, st: os.stat_result) -> bool:
        return (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino) == (
            self.size, self.mtime_ns, self.ctime_ns, self.inode)

    @classmethod
    def of(cls, file_name: str, st: os.stat_result, sha256: str, now: float) -> FileRecord:
        return cls(file_name=file_name, size=st.st_size, mtime_ns=st.st_mtime_ns, ctime_ns=st.st_ctime_ns,
                   inode=st.st_ino, sha256=sha256, verified_at=now, last_used=now)


class StateFile:
    def __init__(self, path: Path, lock_path: Path) -> None:
        self._path = path
        self._lock_path = lock_path
        self._mutex = threading.Lock()
        self._records: dict[int, FileRecord] = self._load()

    def get(self, k: int) -> FileRecord | None:
        with self._mutex:
            return self._records.get(k)

    def all(self) -> dict[int, FileRecord]:
        with self._mutex:
            return dict(self._records)

    def put(self, k: int, record: FileRecord | None) -> None:
        """Set (or with None, forget) the record for ``k`` here and on disk."""
        with self._mutex, exclusive_lock(self._lock_path):
            records = self._load()  # merge with what other processes wrote
            if record is None:
                records.pop(k, None)
            else:
                records[k] = record
            atomic_write_bytes(self._path, _dump(records))
            self._records = records

    def reload(self) -> None:
        """Pick up records written by other processes (keeping our newer last-use times)."""
        disk = self._load()
        with self._mutex:
            for k, mine in self._records.items():
                theirs = disk.get(k)
                if theirs is not None and theirs.inode == mine.inode and theirs.sha256 == mine.sha256:
                    disk[k] = replace(theirs, last_used=max(theirs.last_used, mine.last_used))
            self._records = disk

    def touch(self, k: int, now: float) -> None:
        """Mark ``k`` as used now (in memory; persisted with the next :meth:`put` or :meth:`flush`)."""
        with self._mutex:
            rec = self._records.get(k)
            if rec is not None:
                self._records[k] = replace(rec, last_used=now)

    def flush(self) -> None:
        with self._mutex, exclusive_lock(self._lock_path):
            records = self._load()
            for k, mine in self._records.items():
                theirs = records.get(k)
                if theirs is not None and theirs.inode == mine.inode and theirs.sha256 == mine.sha256:
                    records[k] = replace(theirs, last_used=max(theirs.last_used, mine.last_used))
            atomic_write_bytes(self._path, _dump(records))
            self._records = records

    def _load(self) -> dict[int, FileRecord]:
        try:
            doc = json.loads(self._path.read_bytes())
            if doc.get("version") != STATE_VERSION:
                return {}
            return {int(k): FileRecord(**v) for k, v in doc["files"].items()}
        except FileNotFoundError:
            return {}
        except (ValueError, TypeError, KeyError, AttributeError):
            return {}  # unreadable state only costs a re-hash


def _dump(records: dict[int, FileRecord]) -> bytes:
    doc = {"version": STATE_VERSION, "files": {str(k): asdict(r) for k, r in sorted(records.items())}}
    return (json.dumps(doc, indent=1) + "\n").encode()
