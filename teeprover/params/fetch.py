"""Download one parameter file from an ordered list of mirrors, verified and atomically.

Bytes stream into ``<file>.partial`` in the cache directory while SHA-256 is
computed on the way. When the expected size is reached the file is fsynced,
its size and hash compared with the manifest, and only then renamed onto the
final name (``os.replace``) and the directory fsynced: nothing half-written
ever carries the final name.

Resume: a ``.partial`` left by an interrupted run (even one killed with
SIGKILL) is re-hashed and the download continues with ``Range: bytes=N-``.
A mirror that ignores the range (200) restarts the file from zero; a resumed
download that ends with the wrong hash is retried once from zero on the same
mirror, since the old prefix may be what was wrong.

Failures per mirror, each recorded in ``details["mirrors"]``:

- transport (refused, timeout, HTTP error status, connection cut): the
  ``.partial`` is kept, the next mirror continues from where it stopped;
- integrity (wrong size, wrong hash, truncated): the ``.partial`` is deleted,
  the error names the expected and the actual hash.

When every mirror failed, :class:`Unavailable` is raised and only a resumable
prefix from cut connections can remain (as ``.partial``, never served).

The caller owns mutual exclusion: at most one download per file at a time.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urlsplit
from urllib.request import url2pathname

import httpx

from teeprover.errors import InvalidInput, Unavailable
from teeprover.params._fileio import CHUNK, fsync_dir, hash_file_into
from teeprover.params.manifest import ParamEntry, mirror_file_url

Progress = Callable[[str, int, int], None]
"""``progress(phase, bytes_done, bytes_total)`` with phase ``"download" | "verify" | "done"``."""

# A mirror sending more than expected is read this far past the expected size (not written) so the
# error can name the actual hash of a slightly wrong file; beyond it the download is cut.
OVERSIZE_SLACK = 1 << 20
DEFAULT_HTTP_TIMEOUT = 30.0
PARTIAL_SUFFIX = ".partial"

_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")


@dataclass(frozen=True)
class FetchResult:
    mirror: str
    bytes_downloaded: int  # fetched over the wire in this call (excludes a resumed prefix)
    resumed_from: int  # size of the prefix reused from an earlier .partial (0 if none)


class _TransportFailure(Exception):
    """The mirror did not deliver; what was written so far is still a good prefix."""


class _IntegrityFailure(Exception):
    """The mirror delivered the wrong file."""

    def __init__(self, message: str, *, actual_sha256: str | None, actual_size: int | None) -> None:
        super().__init__(message)
        self.actual_sha256 = actual_sha256
        self.actual_size = actual_size


class _RestartFromZero(Exception):
    """The mirror refused the range (416): fetch the whole file instead."""


def partial_path(final: Path) -> Path:
    return final.with_name(final.name + PARTIAL_SUFFIX)


def download(
    entry: ParamEntry,
    mirrors: tuple[str, ...],
    final: Path,
    *,
    http_timeout: float = DEFAULT_HTTP_TIMEOUT,
    http_proxy: str | None = None,
    progress: Progress | None = None,
    on_bytes: Callable[[int], None] | None = None,
) -> FetchResult:
    """Fetch ``entry`` into ``final`` from the first mirror that delivers it intact."""
    report = progress or _no_progress
    part = _Partial(partial_path(final), entry)
    part.resume(report)
    resumed_from = part.offset
    failures: list[dict[str, Any]] = []
    counter = _Counter(on_bytes)
    with httpx.Client(timeout=httpx.Timeout(http_timeout), follow_redirects=True, trust_env=False,
                      proxy=http_proxy, headers={"Accept-Encoding": "identity"}) as client:
        for base in mirrors:
            url = mirror_file_url(base, entry.file_name)
            may_restart = True
            while True:
                started_at = part.offset
                try:
                    _pull(client, url, part, report, counter)
                    part.check_complete()
                    _finalize(part.path, final)
                    return FetchResult(mirror=base, bytes_downloaded=counter.n, resumed_from=resumed_from)
                except (_IntegrityFailure, _RestartFromZero) as exc:
                    part.discard()
                    if started_at > 0 and may_restart:
                        may_restart = False  # the old prefix may be the bad part: once more from zero
                        continue
                    failures.append(_failure(base, url, exc))
                    break
                except (_TransportFailure, httpx.HTTPError, httpx.InvalidURL, OSError) as exc:
                    if isinstance(exc, OSError) and _is_local(exc, part.path):
                        part.discard()
                        raise Unavailable(f"k={entry.k}: cannot write {part.path.name}: {exc.strerror}",
                                          details={"k": entry.k, "file": entry.file_name}) from None
                    failures.append(_failure(base, url, exc))
                    break
    partial = part.path
    if partial.exists() and partial.stat().st_size == 0:
        _remove(partial)
    summary = "; ".join(f"{f['url']}: {f['error']}" for f in failures) or "the manifest lists no mirrors"
    raise Unavailable(
        f"k={entry.k}: no mirror delivered a valid {entry.file_name}: {summary}",
        details={"k": entry.k, "file": entry.file_name, "expected_size": entry.size,
                 "expected_sha256": entry.sha256, "mirrors": failures},
    )


class _Counter:
    def __init__(self, on_bytes: Callable[[int], None] | None) -> None:
        self.n = 0
        self._on_bytes = on_bytes

    def add(self, n: int) -> None:
        self.n += n
        if self._on_bytes is not None:
            self._on_bytes(n)


class _Partial:
    """The ``.partial`` file and the running hash of its content."""

    def __init__(self, path: Path, entry: ParamEntry) -> None:
        self.path = path
        self.entry = entry
        self.hasher = hashlib.sha256()
        self.offset = 0

    def resume(self, report: Progress) -> None:
        """Re-hash a prefix left by an earlier run; it is trusted only as far as the final hash says."""
        try:
            f = open(self.path, "rb", buffering=0)
        except FileNotFoundError:
            return
        with f:
            size = os.fstat(f.fileno()).st_size
            if size > self.entry.size:
                size = -1
            else:
                report("verify", 0, size)
                self.offset = hash_file_into(f, self.hasher, limit=size,  # type: ignore[arg-type]
                                             on_chunk=lambda n: report("verify", n, size))
        if size < 0:
            self.discard()

    def restart(self) -> None:
        self.hasher = hashlib.sha256()
        self.offset = 0

    def discard(self) -> None:
        _remove(self.path)
        self.restart()

    def write_stream(self, chunks: Iterator[bytes], report: Progress, counter: _Counter) -> None:
        """Append ``chunks`` at the current offset, hashing them; stop past the expected size; fsync."""
        entry = self.entry
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o644)
        with open(fd, "wb") as out:
            out.seek(self.offset)
            out.truncate(self.offset)
            excess = 0
            for chunk in chunks:
                counter.add(len(chunk))
                self.hasher.update(chunk)
                room = entry.size - self.offset
                if len(chunk) > room:  # never write past the expected size
                    out.write(chunk[:room])
                    self.offset += room
                    excess += len(chunk) - room
                    if excess > OVERSIZE_SLACK:
                        raise _IntegrityFailure(
                            f"size mismatch: expected {entry.size} bytes with sha256 {entry.sha256}, the mirror"
                            f" sent more than {entry.size + OVERSIZE_SLACK} bytes", actual_sha256=None,
                            actual_size=None)
                    continue
                out.write(chunk)
                self.offset += len(chunk)
                report("download", self.offset, entry.size)
            if excess:
                actual = self.hasher.hexdigest()
                raise _IntegrityFailure(
                    f"size mismatch: expected {entry.size} bytes with sha256 {entry.sha256}, got"
                    f" {entry.size + excess} bytes with sha256 {actual}",
                    actual_sha256=actual, actual_size=entry.size + excess)
            out.flush()
            os.fsync(out.fileno())

    def check_complete(self) -> None:
        entry, actual, size = self.entry, self.hasher.hexdigest(), self.offset
        if size != entry.size:
            raise _IntegrityFailure(
                f"size mismatch (truncated): expected {entry.size} bytes with sha256 {entry.sha256}, got {size}"
                f" bytes with sha256 {actual}", actual_sha256=actual, actual_size=size)
        if actual != entry.sha256:
            raise _IntegrityFailure(f"sha256 mismatch: expected {entry.sha256}, got {actual}",
                                    actual_sha256=actual, actual_size=size)


def _pull(client: httpx.Client, url: str, part: _Partial, report: Progress, counter: _Counter) -> None:
    """Append the rest of the file from ``url`` to the partial file."""
    if part.offset == part.entry.size:
        return  # an earlier run got every byte but died before the rename
    if urlsplit(url).scheme == "file":
        with open(url2pathname(urlsplit(url).path), "rb") as src:
            src.seek(part.offset)
            part.write_stream(_file_chunks(src), report, counter)
            return
    offset = part.offset
    headers = {"Range": f"bytes={offset}-"} if offset else {}
    with client.stream("GET", url, headers=headers) as resp:
        if offset and resp.status_code == 206:
            _check_content_range(resp.headers.get("content-range", ""), offset, part.entry)
        elif resp.status_code == 200:
            if offset:  # the mirror ignored our range: take the whole body from zero
                part.restart()
        elif resp.status_code == 416 and offset:
            raise _RestartFromZero(f"HTTP 416 for range bytes={offset}-")
        else:
            raise _TransportFailure(f"HTTP {resp.status_code}")
        part.write_stream(resp.iter_bytes(), report, counter)


def _file_chunks(src: BinaryIO) -> Iterator[bytes]:
    while chunk := src.read(CHUNK):
        yield chunk


def _check_content_range(value: str, offset: int, entry: ParamEntry) -> None:
    m = _CONTENT_RANGE.fullmatch(value.strip())
    if not m or int(m.group(1)) != offset:
        raise _TransportFailure(f"bad Content-Range {value!r} for a request from byte {offset}")
    if m.group(3) != "*" and int(m.group(3)) != entry.size:
        raise _IntegrityFailure(
            f"size mismatch: expected {entry.size} bytes with sha256 {entry.sha256}, the mirror has"
            f" {m.group(3)} bytes", actual_sha256=None, actual_size=int(m.group(3)))


def install_file(entry: ParamEntry, source: Path, final: Path, *, progress: Progress | None = None) -> None:
    """Copy a local file (e.g. freshly generated development parameters) into ``final``, verified.

    The same path as a download: copy into ``.partial`` while hashing, fsync, compare with ``entry``,
    rename. A mismatch raises :class:`InvalidInput` naming the expected and actual hash.
    """
    report = progress or _no_progress
    part = _Partial(partial_path(final), entry)
    try:
        with open(source, "rb") as src:
            part.write_stream(_file_chunks(src), report, _Counter(None))
        part.check_complete()
    except _IntegrityFailure as exc:
        part.discard()
        raise InvalidInput(f"k={entry.k}: {source.name} does not match the manifest: {exc}",
                           details={"k": entry.k, "file": entry.file_name, "expected_size": entry.size,
                                    "expected_sha256": entry.sha256, "actual_size": exc.actual_size,
                                    "actual_sha256": exc.actual_sha256}) from None
    except BaseException:
        part.discard()
        raise
    _finalize(part.path, final)


def _finalize(partial: Path, final: Path) -> None:
    os.replace(partial, final)
    fsync_dir(final.parent)


def _failure(base: str, url: str, exc: BaseException) -> dict[str, Any]:
    out: dict[str, Any] = {"mirror": base, "url": url, "error": _describe(exc)}
    if isinstance(exc, _IntegrityFailure):
        out["kind"] = "integrity"
        if exc.actual_sha256 is not None:
            out["actual_sha256"] = exc.actual_sha256
        if exc.actual_size is not None:
            out["actual_size"] = exc.actual_size
    else:
        out["kind"] = "transport"
    return out


def _describe(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return f"{type(exc).__name__}: {exc.strerror}"
    text = str(exc) or type(exc).__name__
    if isinstance(exc, httpx.HTTPError | httpx.InvalidURL):
        return f"{type(exc).__name__}: {text}"
    return text


def _is_local(exc: OSError, partial: Path) -> bool:
    """True for failures writing our own cache (disk full, permissions), which no other mirror can fix."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS):
        return True
    return exc.filename is not None and Path(exc.filename) == partial


def _remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def _no_progress(phase: str, done: int, total: int) -> None:
    return None
