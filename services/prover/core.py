"""The prover's core: admission, limits and job submission; no gRPC here.

Heavy work runs in the process pool (``services/prover/pool.py``) through the
registered job functions in ``services/prover/jobs.py``; this layer checks what can be
checked cheaply (body size, content type), submits the body to the kind's job, and waits.
"""

from __future__ import annotations

import datetime as dt
import platform
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from services.prover import jobs
from services.prover._worker import JobFunction
from teeprover import __version__, hpke
from teeprover.errors import InvalidInput, NotFound, Overloaded, PayloadTooLarge, Unavailable
from teeprover.keystore import KeyStore

if TYPE_CHECKING:
    from services.prover.builtin import BuiltinKeys

CBOR_TYPES = {"application/cbor", "application/octet-stream"}
ZKIR_TYPES = CBOR_TYPES | {"application/json"}


class JobLike(Protocol):
    def result(self, timeout: float | None = None) -> bytes: ...
    def cancel(self) -> bool: ...


class CoreObserver(Protocol):
    """What the core reports for metrics (services/prover/metrics.py implements it)."""

    def rejected(self, kind: str, reason: str) -> None: ...
    def proof_finished(self, k: int, seconds: float) -> None: ...


class _NoObserver:
    def rejected(self, kind: str, reason: str) -> None:
        pass

    def proof_finished(self, k: int, seconds: float) -> None:
        pass


# The pool job for each kind of request (services/prover/jobs.py).
JOBS: dict[str, JobFunction] = {"k": jobs.k, "check": jobs.check, "prove": jobs.prove, "prove_tx": jobs.prove_tx}


class PoolLike(Protocol):
    def submit(self, job_id: str, fn: JobFunction, payload: bytes, *, timeout: float) -> JobLike: ...
    def stats(self) -> dict[str, int]: ...
    def is_ready(self) -> bool: ...


@dataclass(frozen=True)
class VersionInfo:
    name: str
    version: str
    git_commit: str
    build_date: str
    python_version: str
    auth_disabled: bool

    @classmethod
    def detect(cls, *, auth_disabled: bool, build_date: str = "") -> VersionInfo:
        """This build's version; ``build_date`` ("" = the install time) is ``TEEPROVER_BUILD_DATE_OVERRIDE``."""
        return cls(
            name="teeprover",
            version=__version__,
            git_commit=_git_commit(),
            build_date=build_date or _build_date(),
            python_version=platform.python_version(),
            auth_disabled=auth_disabled,
        )


def _git_commit() -> str:
    repo = Path(__file__).resolve().parents[2]
    try:
        out = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 else "unknown"


def _build_date() -> str:
    # The install time of the package stands in for a build date outside container images.
    stamp = Path(__file__).resolve().parents[2] / ".venv" / ".installed"
    try:
        mtime = stamp.stat().st_mtime
    except OSError:
        mtime = Path(__file__).stat().st_mtime
    return dt.datetime.fromtimestamp(mtime, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def media_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


class ProverCore:
    def __init__(self, pool: PoolLike, *, max_body_bytes: int, job_timeout: float, version: VersionInfo,
                 observer: CoreObserver | None = None, max_in_flight: int = 0) -> None:
        self.pool = pool
        # Each job request holds a gRPC handler thread while its job waits and runs. Bounding them leaves
        # threads for Health/Ready/Version (server.py sizes the thread pool above this bound): without it,
        # `make loadtest` saw /health wait 30 s behind a backlog of proofs and Envoy answer 504. 0 = no bound.
        self.max_in_flight = max_in_flight
        self._in_flight = threading.BoundedSemaphore(max_in_flight) if max_in_flight else None
        self.max_body_bytes = max_body_bytes
        self.job_timeout = job_timeout
        self.version = version
        self.observer: CoreObserver = observer or _NoObserver()
        self.draining = False
        self.hpke_keys: hpke.KeyPair | None = None
        self.builtin: BuiltinKeys | None = None  # Midnight's built-in keys, set up in the background
        self.keys: KeyStore | None = None  # the key store, for GET /verifying-key

    # -- status -----------------------------------------------------------------
    def health(self) -> dict[str, str]:
        return {"status": "healthy", "timestamp": dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z")}

    def ready(self) -> dict[str, Any]:
        stats = self.pool.stats()
        ok = not self.draining and self.pool.is_ready()
        return {
            "status": "ready" if ok else "not_ready",
            "queue_size": stats["queue_size"],
            "active_workers": stats["active_workers"],
            "total_workers": stats["total_workers"],
            # Each built-in key's state (ready, setting_up, pending, failed); other circuits prove meanwhile.
            "builtin_keys": self.builtin.states() if self.builtin is not None else {},
        }

    def verifying_key(self, location: str, *, snarkjs_json: bool) -> bytes:
        if self.keys is None:
            raise NotFound("this prover has no key store", details={"key_location": location})
        return self.keys.verifying_key(location, snarkjs_json=snarkjs_json)

    # -- work -------------------------------------------------------------------
    def _admit(self, kind: str, body: bytes, content_type: str, allowed: set[str]) -> None:
        if self.draining:
            self.observer.rejected(kind, "draining")
            raise Unavailable("the prover is shutting down", details={"retry": "another replica"})
        if len(body) > self.max_body_bytes:
            raise PayloadTooLarge(
                f"request body is {len(body)} bytes; the limit is {self.max_body_bytes}",
                details={"limit": self.max_body_bytes, "size": len(body)},
            )
        if not body:
            raise InvalidInput("empty request body")
        mt = media_type(content_type)
        if mt not in allowed:
            raise InvalidInput(
                f"unsupported content type {mt or '(none)'!r}; send one of {sorted(allowed)}",
                details={"content_type": mt},
            )

    def run(
        self,
        kind: str,
        body: bytes,
        content_type: str,
        request_id: str,
        on_cancel: Callable[[Callable[[], Any]], Any],
    ) -> bytes:
        """Run job ``kind`` (k, check, prove, prove_tx) on ``body`` in the pool and return its reply bytes."""
        allowed = ZKIR_TYPES if kind == "k" else CBOR_TYPES
        self._admit(kind, body, content_type, allowed)
        if self._in_flight is None:
            return self._run(kind, body, content_type, request_id, on_cancel)
        if not self._in_flight.acquire(blocking=False):
            self.observer.rejected(kind, "queue_full")
            raise Overloaded("too many requests in progress",
                             details={"in_flight": self.max_in_flight, "capacity": self.max_in_flight})
        try:
            return self._run(kind, body, content_type, request_id, on_cancel)
        finally:
            self._in_flight.release()

    def _run(self, kind: str, body: bytes, content_type: str, request_id: str,
             on_cancel: Callable[[Callable[[], Any]], Any]) -> bytes:
        if self.hpke_keys is not None and hpke.is_sealed(body):
            # A confidential request sealed to the attested key: opened here, inside the TEE.
            body = hpke.open_sealed(self.hpke_keys, body)
        fn = JOBS[kind]
        try:
            job = self.pool.submit(request_id, fn, body, timeout=self.job_timeout)
        except Overloaded:  # the pool's observer never sees refused jobs: count them here
            self.observer.rejected(kind, "queue_full")
            raise
        except Unavailable:
            self.observer.rejected(kind, "unavailable")  # pool draining, closed or without workers
            raise
        on_cancel(job.cancel)
        try:
            reply = job.result()
        except NotFound as exc:
            location = exc.details.get("key_location")
            if self.builtin is not None and isinstance(location, str):
                self.builtin.require_ready(location)  # a built-in still being set up: 503 + Retry-After
            raise
        if fn is jobs.prove:
            k, seconds, reply = jobs.split_proof_reply(reply)
            self.observer.proof_finished(k, seconds)
        return reply
