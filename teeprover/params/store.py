"""The on-disk cache of universal parameters: fetch on first use, verify once, serve, evict.

Layout of ``cache_dir`` (shared with other caches; only these names are ours)::

    <file>                               verified parameter files, names from the manifest
    <file>.partial                       a download in progress or interrupted (never served)
    .teeprover-params-state.json         what was verified (see ``_state``), and LRU times
    .teeprover-params-locks/             cross-process locks (flock): k<k>.lock per download, state.lock

Guarantees:

- ``ensure(k)`` returns a path only once the file's size and SHA-256 matched
  the manifest; a file changed on disk since (size, mtime, ctime or inode)
  is hashed again, and fetched again if it no longer matches.
- One download per k at a time: threads of one store share it
  (single-flight), processes sharing the directory serialise on a flock.
- With a disk budget, whole files are evicted least recently used first,
  never one that is open through :meth:`ParamStore.open_verified` (in this
  process, or in another one: readers hold a shared flock on the file).

The store never reads the environment: the caller passes ``cache_dir``
(default ``$HOME/.cache/midnight/``, resolved by the service config).
"""

from __future__ import annotations

import builtins
import collections
import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from teeprover.errors import InvalidInput, NotFound, Unavailable
from teeprover.params import fetch
from teeprover.params._fileio import CHUNK, exclusive_lock, lock_shared, sha256_file, try_lock_exclusive
from teeprover.params._singleflight import SingleFlight
from teeprover.params._state import FileRecord, StateFile
from teeprover.params.fetch import Progress
from teeprover.params.manifest import Manifest, ParamEntry, check_k
from teeprover.params.observer import NullObserver, ParamsObserver

STATE_FILE = ".teeprover-params-state.json"
LOCK_DIR = ".teeprover-params-locks"
_LAST_USED_FLUSH_SECONDS = 30.0
_OPEN_ATTEMPTS = 3


@dataclass(frozen=True)
class CachedParams:
    """One file present in the cache (an answer of :meth:`ParamStore.list`)."""

    k: int
    file_name: str
    path: Path
    size: int
    sha256: str | None  # the verified hash; None while not (or no longer) verified
    insecure: bool
    verified_at: datetime | None
    last_used: datetime | None

    @property
    def verified(self) -> bool:
        return self.verified_at is not None


@dataclass(frozen=True)
class VerifiedFile:
    """A verified parameter file open for reading; valid inside :meth:`ParamStore.open_verified`."""

    entry: ParamEntry
    path: Path
    file: BinaryIO

    def chunks(self, size: int = CHUNK) -> Iterator[tuple[int, bytes]]:
        """(offset, bytes) pieces of the whole file from the start."""
        self.file.seek(0)
        offset = 0
        while data := self.file.read(size):
            yield offset, data
            offset += len(data)


class ParamStore:
    def __init__(
        self,
        cache_dir: str | Path,
        manifest: Manifest,
        *,
        disk_budget_bytes: int | None = None,
        http_timeout: float = fetch.DEFAULT_HTTP_TIMEOUT,
        http_proxy: str | None = None,
        observer: ParamsObserver | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if disk_budget_bytes is not None and disk_budget_bytes <= 0:
            raise InvalidInput("disk_budget_bytes must be positive (or None for no budget)")
        self._dir = Path(cache_dir)
        self._dir.mkdir(parents=True, exist_ok=True)
        (self._dir / LOCK_DIR).mkdir(exist_ok=True)
        self._manifest = manifest
        self._budget = disk_budget_bytes
        self._http_timeout = http_timeout
        self._http_proxy = http_proxy
        self._observer: ParamsObserver = observer or NullObserver()
        self._clock = clock
        self._state = StateFile(self._dir / STATE_FILE, self._dir / LOCK_DIR / "state.lock")
        self._flight: SingleFlight[Path] = SingleFlight()
        self._local_flight: SingleFlight[Path] = SingleFlight()
        self._lock = threading.Lock()  # readers, reservations, eviction, manifest swaps
        self._readers: collections.Counter[int] = collections.Counter()
        self._reserved: dict[int, int] = {}
        self._last_flush = clock()

    # -- public API ---------------------------------------------------------------------------

    @property
    def cache_dir(self) -> Path:
        return self._dir

    @property
    def manifest(self) -> Manifest:
        """The manifest in use, including entries registered by :meth:`put_local`."""
        return self._manifest

    def path_of(self, k: int) -> Path:
        return self._dir / self._manifest.entry(k).file_name

    def ensure(self, k: int, progress: Progress | None = None) -> Path:
        """The path of the verified file for ``k``, downloading it first if needed.

        Raises :class:`InvalidInput` (k outside 10..24), :class:`NotFound` (k not in the manifest),
        :class:`Unavailable` (every mirror failed, or the disk budget cannot make room).
        ``progress(phase, done, total)`` sees "verify" (re-hashing), "download" and finally "done";
        a caller that waits for another caller's download only sees "done". An exception raised by
        ``progress`` aborts the download (a ``.partial`` stays for a later resume).
        """
        entry = self._manifest.entry(k)
        path = self._dir / entry.file_name
        if self._is_verified(entry, path):
            self._observer.cache_hit(k)
            self._used(k)
            _report(progress, "done", entry.size, entry.size)
            return path
        _, shared = self._flight.do(k, lambda: self._ensure_slow(entry, path, progress))
        if shared:
            _report(progress, "done", entry.size, entry.size)
        return path

    @contextlib.contextmanager
    def open_verified(self, k: int, progress: Progress | None = None) -> Iterator[VerifiedFile]:
        """Ensure ``k`` and open its file for reading; it cannot be evicted until the block ends."""
        entry, path = self._ensure_and_pin(k, progress)
        try:
            f = open(path, "rb")
        except BaseException:
            self._unpin(k)
            raise
        try:
            lock_shared(f.fileno())  # tells evictors in other processes that we read it
            rec = self._state.get(k)
            if rec is None or not rec.matches(os.fstat(f.fileno())):
                raise Unavailable(f"k={k}: parameter file changed while being opened; retry",
                                  details={"k": k})
            yield VerifiedFile(entry=entry, path=path, file=f)
        finally:
            f.close()
            self._unpin(k)

    def list(self) -> list[CachedParams]:
        """Parameter files present in the cache, by k (no hashing: ``verified`` reflects the state file)."""
        out = []
        for k, entry in self._manifest.entries.items():
            path = self._dir / entry.file_name
            st = _stat(path)
            if st is None:
                continue
            rec = self._state.get(k)
            ok = rec is not None and rec.matches(st) and rec.sha256 == entry.sha256
            out.append(CachedParams(
                k=k, file_name=entry.file_name, path=path, size=st.st_size,
                sha256=rec.sha256 if ok and rec else None, insecure=entry.insecure,
                verified_at=_dt(rec.verified_at) if ok and rec else None,
                last_used=_dt(rec.last_used) if ok and rec else None))
        return out

    def put_local(self, k: int, source: str | Path, *, register_insecure: bool = False,
                  file_name: str | None = None) -> ParamEntry:
        """Copy a locally made file into the cache, verified; return its manifest entry.

        If the manifest has an entry for ``k``, the file must match its size and SHA-256
        (:class:`InvalidInput` naming both hashes otherwise). With ``register_insecure=True``
        (``teeprover params generate K --dev``) a missing entry — or an existing *insecure*
        one — is replaced by a new entry marked ``insecure`` describing this file; persist it
        with ``save_manifest(store.manifest, path)``. Entries not marked insecure are never
        replaced.
        """
        check_k(k)
        src = Path(source)
        existing = self._manifest.entries.get(k)
        replace = register_insecure and (existing is None or existing.insecure)
        if existing is None and not replace:
            raise NotFound(f"no parameters for k={k} in the manifest; pass register_insecure=True to add"
                           " development parameters", details={"k": k})
        try:
            if replace:
                sha, size = sha256_file(src)
                name = existing.file_name if existing is not None else (file_name or src.name)
                entry = ParamEntry(k=k, file_name=name, size=size, sha256=sha, insecure=True)
                self._manifest.with_entry(entry)  # validate (e.g. a file name taken by another k) first
            else:
                assert existing is not None
                entry = existing
            self._local_flight.do(k, lambda: self._install_local(entry, src))
        except InvalidInput:
            self._observer.verification_failed(k, "local_file")
            raise
        except OSError as exc:
            raise InvalidInput(f"cannot read {src}: {exc.strerror}", details={"k": k}) from None
        return entry

    def evict(self, k: int) -> bool:
        """Remove the cached file for ``k`` unless it is being read; True if it was removed."""
        entry = self._manifest.entry(k)
        with self._lock:
            return self._evict_locked(entry)

    def flush(self) -> None:
        """Persist last-use times (kept in memory between verifications)."""
        self._state.flush()
        self._last_flush = self._clock()

    def close(self) -> None:
        self.flush()

    def __enter__(self) -> ParamStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals ----------------------------------------------------------------------------

    def _is_verified(self, entry: ParamEntry, path: Path) -> bool:
        rec = self._state.get(entry.k)
        if rec is None or rec.sha256 != entry.sha256 or rec.file_name != entry.file_name:
            return False
        st = _stat(path)
        return st is not None and rec.matches(st)

    def _ensure_slow(self, entry: ParamEntry, path: Path, progress: Progress | None) -> Path:
        k = entry.k
        with exclusive_lock(self._dir / LOCK_DIR / f"k{k}.lock"):
            self._state.reload()  # another process may have verified it while we waited
            if self._is_verified(entry, path) or self._reverify(entry, path, progress):
                self._observer.cache_hit(k)
                self._used(k)
                _report(progress, "done", entry.size, entry.size)
                return path
            self._observer.cache_miss(k)
            self._reserve(entry)
            started = time.monotonic()
            try:
                fetch.download(entry, self._manifest.mirrors, path, http_timeout=self._http_timeout,
                               http_proxy=self._http_proxy, progress=progress,
                               on_bytes=lambda n: self._observer.bytes_fetched(k, n))
            except Unavailable as exc:
                self._observer.fetch_finished(k, time.monotonic() - started, False)
                if any(m.get("kind") == "integrity" for m in exc.details.get("mirrors", ())):
                    self._observer.verification_failed(k, "mirror")
                raise
            finally:
                with self._lock:
                    self._reserved.pop(k, None)
            self._observer.fetch_finished(k, time.monotonic() - started, True)
            _report(progress, "verify", entry.size, entry.size)  # hashed while streaming
            self._record(entry, path, entry.sha256)
            _report(progress, "done", entry.size, entry.size)
            return path

    def _reverify(self, entry: ParamEntry, path: Path, progress: Progress | None) -> bool:
        """Hash a present but unverified (or changed) file; delete it if it does not match."""
        st = _stat(path)
        if st is None:
            return False
        if st.st_size == entry.size:
            sha, _ = sha256_file(path, on_chunk=lambda n: _report(progress, "verify", n, entry.size))
            if sha == entry.sha256:
                self._record(entry, path, sha, st)
                return True
        self._observer.verification_failed(entry.k, "changed_on_disk")
        with self._lock:
            if self._readers[entry.k] == 0:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
            # else a reader holds the old inode open; the download replaces the name atomically
        self._state.put(entry.k, None)
        return False

    def _record(self, entry: ParamEntry, path: Path, sha: str, st: os.stat_result | None = None) -> None:
        st = st or os.stat(path)
        self._state.put(entry.k, FileRecord.of(entry.file_name, st, sha, self._clock()))

    def _install_local(self, entry: ParamEntry, src: Path) -> Path:
        path = self._dir / entry.file_name
        with exclusive_lock(self._dir / LOCK_DIR / f"k{entry.k}.lock"):
            with self._lock:
                if entry.k in self._manifest.entries and self._manifest.entries[entry.k] != entry:
                    if self._readers[entry.k]:
                        raise Unavailable(f"k={entry.k}: the current file is being read; retry",
                                          details={"k": entry.k})
            if not self._is_verified(entry, path):
                self._reserve(entry)
                try:
                    fetch.install_file(entry, src, path)
                finally:
                    with self._lock:
                        self._reserved.pop(entry.k, None)
                self._record(entry, path, entry.sha256)
            with self._lock:
                self._manifest = self._manifest.with_entry(entry)
            return path

    def _ensure_and_pin(self, k: int, progress: Progress | None) -> tuple[ParamEntry, Path]:
        for _ in range(_OPEN_ATTEMPTS):
            path = self.ensure(k, progress)
            entry = self._manifest.entry(k)
            with self._lock:
                if self._is_verified(entry, path):
                    self._readers[k] += 1
                    return entry, path
            # evicted or replaced between ensure() and pinning: go round again
        raise Unavailable(f"k={k}: parameter file keeps disappearing (disk budget too tight?)", details={"k": k})

    def _unpin(self, k: int) -> None:
        with self._lock:
            self._readers[k] -= 1
            if self._readers[k] <= 0:
                del self._readers[k]

    def _used(self, k: int) -> None:
        now = self._clock()
        self._state.touch(k, now)
        if now - self._last_flush > _LAST_USED_FLUSH_SECONDS:
            self.flush()

    # -- disk budget ----------------------------------------------------------------------------

    def _reserve(self, entry: ParamEntry) -> None:
        """Make room for ``entry`` by evicting least recently used files, and reserve it."""
        if self._budget is None:
            return
        if entry.size > self._budget:
            raise Unavailable(f"k={entry.k}: {entry.size} bytes do not fit the disk budget of {self._budget}",
                              details={"k": entry.k, "size": entry.size, "disk_budget_bytes": self._budget})
        with self._lock:
            used = self._usage_locked(exclude=entry.k)
            if used + entry.size > self._budget:
                for victim in self._lru_candidates_locked(exclude=entry.k):
                    size = _size_or_zero(self._dir / victim.file_name)
                    if self._evict_locked(victim):
                        used -= size
                        if used + entry.size <= self._budget:
                            break
            if used + entry.size > self._budget:
                busy = sorted(set(self._readers) | set(self._reserved))
                raise Unavailable(
                    f"k={entry.k}: disk budget of {self._budget} bytes is full ({used} used) and the remaining"
                    f" files are in use", details={"k": entry.k, "disk_budget_bytes": self._budget,
                                                   "used_bytes": used, "in_use": busy})
            self._reserved[entry.k] = entry.size

    def _usage_locked(self, exclude: int) -> int:
        used = 0
        for k, e in self._manifest.entries.items():
            if k == exclude:
                continue
            if k in self._reserved:
                used += self._reserved[k]  # counts its .partial too
                continue
            path = self._dir / e.file_name
            used += _size_or_zero(path) + _size_or_zero(fetch.partial_path(path))
        return used

    def _lru_candidates_locked(self, exclude: int) -> builtins.list[ParamEntry]:
        records = self._state.all()
        candidates = []
        for k, e in self._manifest.entries.items():
            if k == exclude or self._readers[k] or k in self._reserved:
                continue
            st = _stat(self._dir / e.file_name)
            if st is None:
                continue
            rec = records.get(k)
            last = rec.last_used if rec is not None and rec.inode == st.st_ino else st.st_mtime
            candidates.append((last, k, e))
        return [e for _, _, e in sorted(candidates)]

    def _evict_locked(self, entry: ParamEntry) -> bool:
        k = entry.k
        if self._readers[k] or k in self._reserved:
            return False
        path = self._dir / entry.file_name
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            return False
        try:
            if not try_lock_exclusive(fd):  # a reader in another process holds it
                return False
            size = os.fstat(fd).st_size
            os.unlink(path)
        finally:
            os.close(fd)
        self._state.put(k, None)
        self._observer.evicted(k, size)
        return True


def _report(progress: Progress | None, phase: str, done: int, total: int) -> None:
    if progress is not None:
        progress(phase, done, total)


def _stat(path: Path) -> os.stat_result | None:
    try:
        return os.stat(path)
    except FileNotFoundError:
        return None


def _size_or_zero(path: Path) -> int:
    st = _stat(path)
    return 0 if st is None else st.st_size


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)

