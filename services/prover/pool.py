"""A pool of prover worker processes with a bounded FIFO queue (docs/architecture.md §4).

Core code: no gRPC here; the servicer maps the domain errors raised below at the
one error seam.

    pool = WorkerPool(num_workers=4, capacity=32)
    job = pool.submit(request_id, jobs.prove, payload, timeout=600)  # a @pool_job function
    context.add_callback(job.cancel)          # caller went away -> cooperative cancel
    proof = job.result()                      # bytes, or raises a TeeProverError
    ...
    pool.drain(grace=30); pool.close()

Design
------
* Workers are processes made with the ``forkserver`` start method (``spawn`` where
  that is missing): the parent is a threaded gRPC server and must never ``fork``
  itself. A worker imports a job function's module once and keeps it, so
  module-level caches (decoded proving keys) stay warm between jobs.
* One dispatcher thread owns the workers. It sleeps in
  ``multiprocessing.connection.wait`` on every worker pipe, every process sentinel
  and a wake-up socket, with a timeout equal to the nearest deadline (job timeout,
  SIGKILL after SIGTERM, cancel grace, respawn backoff) -- no polling loop.
* A job's ``timeout`` counts from the moment a worker starts it (queue wait is not
  included). When it expires the worker gets SIGTERM, SIGKILL ``term_grace``
  seconds later, a fresh worker is started at once and the waiter gets
  ``JobTimeout``.
* A worker that dies fails only its own job (``InternalError``) and is replaced.
* ``job.cancel()`` removes a queued job; on a running job it sets the worker's stop
  event, which the job function reads through ``should_stop()`` at its stage
  boundaries. A job function that ignores it is killed after ``cancel_grace``
  seconds (the job still ends ``cancelled``) so that it cannot hold a worker until
  its timeout.

Memory budget (``memory_budget`` bytes; ``TEEPROVER_MEMORY_BUDGET``, by default 80 % of the
cgroup memory limit or of the RAM: :func:`default_memory_budget`). Workers report their
resident set and the peak of each job (``_worker.memory_report``); the pool reserves, for
every live worker, what it last reported idle (interpreter, modules, cached keys) and, for
every running job, that job's expected growth: the ``memory`` given to ``submit`` or else the
largest growth (peak minus resident at start) seen in recent jobs of the same function. A
queued job starts only when its reservation fits in what is left of the budget, so jobs
wait in the queue (FIFO) instead of overcommitting the machine. A job whose growth is not
known yet runs only while no other job runs; one job always may run, even if it alone is
larger than the budget (it is then the only one). Key caches are sized in bytes
(:func:`key_cache_bytes`), so what idle workers keep cannot eat the budget.

Job functions are module-level functions registered with ``@pool_job`` (``_worker.py``),
of signature ``fn(payload: bytes, should_stop: () -> bool) -> bytes``, and may raise any
``TeeProverError``; it reaches the waiter as the same class with
the same message and details. Returning normally after ``should_stop()`` became
true, or raising ``Cancelled``, ends the job ``cancelled``.

Job states::

    pending ──▶ in_progress ──▶ completed | failed | cancelled | timed_out
       └──────▶ cancelled (removed from the queue) | failed (pool closed)
"""

from __future__ import annotations

import collections
import enum
import logging
import math
import multiprocessing
import multiprocessing.connection
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from services.prover import _worker
from services.prover._worker import JobFunction
from teeprover.errors import (
    Cancelled,
    InternalError,
    JobTimeout,
    Overloaded,
    TeeProverError,
    Unavailable,
)

logger = logging.getLogger("teeprover.prover.pool")

MAX_WORKERS = 64
BUDGET_FRACTION = 0.8  # of the cgroup limit or the RAM: the default memory budget
_GROWTH_HISTORY = 8  # recent jobs of a function whose growth sets its reservation
DEFAULT_RETRY_AFTER = 5  # seconds, before any job has finished
_MAX_RETRY_AFTER = 60
_STARTUP_FAILURES_BEFORE_BROKEN = 3


class JobState(enum.StrEnum):
    PENDING = "pending"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    TIMED_OUT = "timed_out"


FINAL_STATES = frozenset({JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED, JobState.TIMED_OUT})


@dataclass(frozen=True)
class JobEvent:
    """One job state transition, handed to the pool's ``observer`` (for metrics).

    ``queue_wait`` is set from ``in_progress`` on (or at a final state for a job that
    never ran); ``run_time`` at a final state of a job that ran. Seconds.
    """

    job_id: str
    state: JobState
    previous: JobState | None
    queue_wait: float | None
    run_time: float | None
    worker_pid: int | None
    error: str | None  # class name of the job's error at a final state


Observer = Callable[[JobEvent], None]


def format_seconds(value: float) -> str:
    """600.0 -> '600', 2 -> '2', 1.5 -> '1.5'."""
    value = float(value)
    return str(int(value)) if value.is_integer() else repr(value)


class Job:
    """A handle on one submitted job. Thread-safe; made only by :meth:`WorkerPool.submit`."""

    def __init__(self, pool: WorkerPool, job_id: str, fn: str, payload: bytes, timeout: float,
                 memory: int | None = None) -> None:
        self._pool = pool
        self.job_id = job_id
        self.fn = fn  # the job function's name (_worker.job_name)
        self.timeout = timeout
        self.memory = memory  # expected growth of the worker while running it (bytes), if the caller knows
        self._payload: bytes | None = payload
        self._state = JobState.PENDING
        self._result: bytes | None = None
        self._error: TeeProverError | None = None
        self._done = threading.Event()
        self._callbacks: list[Callable[[Job], None]] = []
        self.cancel_requested = False
        self.worker_pid: int | None = None
        # Wall-clock timestamps (time.time()) for display; durations use the monotonic twins.
        self.queued_at: float = time.time()
        self.started_at: float | None = None
        self.finished_at: float | None = None
        self._queued_mono = time.monotonic()
        self._started_mono: float | None = None
        self._finished_mono: float | None = None

    def __repr__(self) -> str:  # never shows the payload
        return f"<Job {self.job_id!r} {self._state.value} pid={self.worker_pid}>"

    @property
    def state(self) -> JobState:
        return self._state

    @property
    def error(self) -> TeeProverError | None:
        return self._error

    @property
    def queue_wait(self) -> float | None:
        """Seconds between submit and start (or until the job ended, if it never started)."""
        end = self._started_mono if self._started_mono is not None else self._finished_mono
        return None if end is None else end - self._queued_mono

    @property
    def run_time(self) -> float | None:
        if self._started_mono is None or self._finished_mono is None:
            return None
        return self._finished_mono - self._started_mono

    def done(self) -> bool:
        return self._done.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the job reaches a final state; False if ``timeout`` passed first."""
        return self._done.wait(timeout)

    def result(self, timeout: float | None = None) -> bytes:
        """The job's bytes, or raise its domain error.

        Raises builtin ``TimeoutError`` when *this wait* times out (the job goes on);
        ``JobTimeout`` is the job's own deadline.
        """
        if not self._done.wait(timeout):
            raise TimeoutError(f"job {self.job_id} still {self._state.value} after waiting {timeout}s")
        if self._error is not None:
            raise self._error
        assert self._result is not None
        return self._result

    def cancel(self) -> bool:
        """Cancel the job: a queued job is removed at once; a running one is asked to stop.

        Returns False when the job had already finished. A running job can still end
        ``completed`` if it finished before it saw the request.
        """
        return self._pool._cancel(self)

    def add_done_callback(self, fn: Callable[[Job], None]) -> None:
        """Call ``fn(job)`` once the job is final (at once if it already is).

        Runs in the thread that finishes the job, usually the dispatcher: keep it short.
        """
        with self._pool._lock:
            if not self._done.is_set():
                self._callbacks.append(fn)
                return
        _call_quietly(fn, self)


def _call_quietly(fn: Callable[..., Any], *args: Any) -> None:
    try:
        fn(*args)
    except Exception:
        logger.exception("pool callback %r failed", fn)


class _WorkerState(enum.Enum):
    STARTING = "starting"  # process started, has not said "ready" yet
    IDLE = "idle"
    BUSY = "busy"
    DYING = "dying"  # being killed or already gone; waiting for its sentinel


class _Worker:
    def __init__(self, process: Any, conn: multiprocessing.connection.Connection, stop_event: Any) -> None:
        self.process = process
        self.conn: multiprocessing.connection.Connection | None = conn
        self.stop_event = stop_event
        self.pid: int = process.pid
        self.state = _WorkerState.STARTING
        self.job: Job | None = None
        self.deadline: float | None = None  # job timeout (monotonic)
        self.cancel_deadline: float | None = None  # kill if a cancelled job has not stopped
        self.kill_at: float | None = None  # SIGKILL after SIGTERM grace
        self.resident = 0  # bytes, as last reported (idle: what the worker keeps between jobs)
        self.reserve = 0  # bytes reserved for the running job's growth
        self.resident_at_start = 0  # resident when the running job started

    @property
    def alive(self) -> bool:
        return self.state is not _WorkerState.DYING


class WorkerPool:
    """Fixed-size pool of worker processes with a bounded FIFO queue.

    ``num_workers``: number of worker processes (default ``os.cpu_count()``, at most 64).
    ``capacity``: queued (not yet running) jobs allowed; 0 means unbounded.
    ``observer``: called with a :class:`JobEvent` at every job state transition, from
    whichever thread made it; must be quick and must not call back into ``submit``.
    ``initializer``: optional module-level function run once in each new worker
    (logging setup, preloading keys).
    ``term_grace``: seconds between SIGTERM and SIGKILL when a worker is killed.
    ``cancel_grace``: seconds a cancelled running job has to stop before its worker
    is killed (None: wait for the job's own timeout).
    ``start_method``: ``"forkserver"`` (default where available) or ``"spawn"``.
    ``memory_budget``: bytes all workers together may hold (None: no budget); see the module
    docstring.
    """

    def __init__(
        self,
        num_workers: int | None = None,
        capacity: int = 0,
        *,
        observer: Observer | None = None,
        initializer: Callable[[], None] | None = None,
        term_grace: float = 1.0,
        cancel_grace: float | None = 30.0,
        start_method: str | None = None,
        memory_budget: int | None = None,
    ) -> None:
        size = min(os.cpu_count() or 1, MAX_WORKERS) if num_workers is None else num_workers
        if not 1 <= size <= MAX_WORKERS:
            raise ValueError(f"num_workers must be 1..{MAX_WORKERS}, got {size}")
        if capacity < 0:
            raise ValueError(f"queue capacity must be >= 0, got {capacity}")
        if memory_budget is not None and memory_budget <= 0:
            raise ValueError(f"memory_budget must be > 0 bytes, got {memory_budget}")
        if start_method is None:
            start_method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
        if start_method not in ("forkserver", "spawn"):
            # fork would copy a threaded gRPC server into the child.
            raise ValueError(f"start_method must be 'forkserver' or 'spawn', got {start_method!r}")
        self.size = size
        self.capacity = capacity
        self.memory_budget = memory_budget
        self._growth: dict[str, collections.deque[int]] = {}  # fn -> recent job growths (bytes)
        self._peak_reserved = 0
        self._observer = observer
        self._initializer = initializer
        self._term_grace = term_grace
        self._cancel_grace = cancel_grace
        self._ctx: Any = multiprocessing.get_context(start_method)

        self._lock = threading.Lock()
        # Serialises observer events so that a job's events arrive in order (pending
        # before in_progress). Always taken before ``_lock``, never while holding it.
        self._events_lock = threading.RLock()
        self._changed = threading.Condition(self._lock)  # job finished / worker state changed
        self._queue: collections.deque[Job] = collections.deque()
        self._workers: list[_Worker] = []
        self._draining = False
        self._closed = False
        self._stop_dispatcher = False
        self._next_spawn_at = 0.0
        self._startup_failures = 0
        self._avg_run_time: float | None = None
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)

        with self._lock:
            for _ in range(size):
                self._spawn_locked()
        self._dispatcher = threading.Thread(target=self._dispatch_loop, name="prover-pool-dispatcher", daemon=True)
        self._dispatcher.start()

    # ------------------------------------------------------------------ public API

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def submit(self, job_id: str, fn: JobFunction, payload: bytes, *, timeout: float,
               memory: int | None = None) -> Job:
        """Queue a job. Raises ``Overloaded`` when the queue is full, ``Unavailable`` when
        draining, closed, or when no worker can be started.

        ``memory``: how many bytes the job is expected to add to a worker while it runs (its key
        and domain), if the caller knows; otherwise the pool uses what jobs of ``fn`` needed."""
        name = _worker.registered_name(fn)  # ValueError unless fn is a @pool_job function
        if not (isinstance(timeout, int | float) and math.isfinite(timeout) and timeout > 0):
            raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
        if not isinstance(payload, bytes):
            raise TypeError("payload must be bytes")
        if memory is not None and memory < 0:
            raise ValueError(f"memory must be >= 0 bytes, got {memory}")
        job = Job(self, job_id, name, payload, float(timeout), memory)
        with self._events_lock:
            with self._lock:
                if self._closed:
                    raise Unavailable("worker pool is closed")
                if self._draining:
                    raise Unavailable("worker pool is draining; not accepting new jobs")
                if self._broken_locked():
                    raise Unavailable("no proof worker could be started")
                if self.capacity and len(self._queue) >= self.capacity:
                    raise Overloaded(
                        "proof queue is full",
                        retry_after=self._retry_after_locked(),
                        details={"queue_size": len(self._queue), "capacity": self.capacity},
                    )
                self._queue.append(job)
            self._emit(job, JobState.PENDING, None)
        self._wake()
        return job

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {
                "queue_size": len(self._queue),
                "active_workers": sum(w.state is _WorkerState.BUSY for w in self._workers),
                "total_workers": sum(w.alive for w in self._workers),
                "capacity": self.capacity,
            }

    def memory(self) -> dict[str, int]:
        """The memory budget's state, in bytes: ``budget`` (0: none), ``reserved`` now (what live workers
        keep plus what running jobs may add), ``peak_reserved`` since the pool started, ``resident``
        (sum of the workers' last reports)."""
        with self._lock:
            return {"budget": self.memory_budget or 0, "reserved": self._reserved_locked(),
                    "peak_reserved": self._peak_reserved,
                    "resident": sum(w.resident for w in self._workers if w.alive)}

    def expected_growth(self, fn: JobFunction) -> int | None:
        """Bytes the pool reserves for a job of ``fn`` submitted without ``memory`` (None: unknown yet)."""
        with self._lock:
            return self._expected_locked(_worker.job_name(fn), None)

    def workers(self) -> list[int]:
        """Pids of live workers (starting, idle or busy)."""
        with self._lock:
            return [w.pid for w in self._workers if w.alive]

    def is_ready(self) -> bool:
        """True when admitting jobs and at least one worker has started."""
        with self._lock:
            return (
                not self._draining
                and not self._closed
                and any(w.state in (_WorkerState.IDLE, _WorkerState.BUSY) for w in self._workers)
            )

    def wait_ready(self, timeout: float) -> bool:
        """Block until every worker has started (or ``timeout``); returns whether they all have."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                ready = sum(w.state in (_WorkerState.IDLE, _WorkerState.BUSY) for w in self._workers)
                if ready >= self.size:
                    return True
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._closed:
                    return False
                self._changed.wait(remaining)

    def drain(self, grace: float) -> bool:
        """Stop admission, let queued and running jobs finish for up to ``grace`` seconds,
        then fail whatever is left (``Unavailable``) and kill the workers running it.

        Returns True when everything finished within the grace period. Blocking.
        """
        deadline = time.monotonic() + max(0.0, grace)
        with self._changed:
            self._draining = True
            while self._queue or any(w.state is _WorkerState.BUSY for w in self._workers):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._changed.wait(remaining)
            clean = not self._queue and not any(w.state is _WorkerState.BUSY for w in self._workers)
            finished = self._abort_all_locked("prover is shutting down")
        self._after(finished)
        self._wake()
        return clean

    def close(self, grace: float = 0.0) -> None:
        """Drain for ``grace`` seconds (default none), stop the workers and the dispatcher.
        Idempotent."""
        with self._lock:
            if self._closed:
                return
        self.drain(grace)
        with self._lock:
            self._closed = True
            self._stop_dispatcher = True
            self._changed.notify_all()
        self._wake()
        self._dispatcher.join(timeout=10)
        if self._dispatcher.is_alive():  # pragma: no cover - a dispatcher bug
            logger.error("pool dispatcher did not stop")
        with self._lock:
            workers, self._workers = self._workers, []
        self._stop_workers(workers)
        self._wake_r.close()
        self._wake_w.close()

    # ------------------------------------------------------------------ internals: admission

    def _broken_locked(self) -> bool:
        return self._startup_failures >= _STARTUP_FAILURES_BEFORE_BROKEN and not any(
            w.state in (_WorkerState.IDLE, _WorkerState.BUSY) for w in self._workers
        )

    def _retry_after_locked(self) -> int:
        if self._avg_run_time is None:
            return DEFAULT_RETRY_AFTER
        # Roughly when the next worker frees up.
        return max(1, min(_MAX_RETRY_AFTER, math.ceil(self._avg_run_time / self.size)))

    def _reserved_locked(self) -> int:
        return sum(w.resident + w.reserve for w in self._workers if w.alive)

    def _expected_locked(self, fn: str, memory: int | None) -> int | None:
        if memory is not None:
            return memory
        seen = self._growth.get(fn)
        return max(seen) if seen else None

    def _admits_locked(self, job: Job) -> bool:
        """Whether ``job`` may start now under the memory budget (see the module docstring)."""
        if self.memory_budget is None:
            return True
        if not any(w.state is _WorkerState.BUSY for w in self._workers):
            return True  # one job always may run
        need = self._expected_locked(job.fn, job.memory)
        if need is None:
            return False  # unknown growth: only alone
        return self._reserved_locked() + need <= self.memory_budget

    def _cancel(self, job: Job) -> bool:
        finished: list[tuple[Job, JobState, JobState | None]] = []
        with self._lock:
            if job._state in FINAL_STATES:
                return False
            job.cancel_requested = True
            if job._state is JobState.PENDING:
                try:
                    self._queue.remove(job)
                except ValueError:  # pragma: no cover - pending jobs are always queued
                    pass
                finished.append(self._finish_locked(job, JobState.CANCELLED, error=Cancelled("job cancelled")))
            else:
                for w in self._workers:
                    if w.job is job and w.state is _WorkerState.BUSY:
                        w.stop_event.set()
                        if self._cancel_grace is not None:
                            w.cancel_deadline = time.monotonic() + self._cancel_grace
                        break
        self._after(finished)
        self._wake()
        return True

    # ------------------------------------------------------------------ internals: job bookkeeping

    def _finish_locked(
        self, job: Job, state: JobState, *, result: bytes | None = None, error: TeeProverError | None = None
    ) -> tuple[Job, JobState, JobState | None]:
        previous = job._state
        job._state = state
        job._result = result
        job._error = error
        job._payload = None
        job.finished_at = time.time()
        job._finished_mono = time.monotonic()
        if job.run_time is not None and state is JobState.COMPLETED:
            rt = job.run_time
            self._avg_run_time = rt if self._avg_run_time is None else 0.8 * self._avg_run_time + 0.2 * rt
        job._done.set()
        self._changed.notify_all()
        return job, state, previous

    def _after(self, transitions: list[tuple[Job, JobState, JobState | None]]) -> None:
        """Outside the lock: observer events, and done callbacks of jobs that finished."""
        for job, state, previous in transitions:
            with self._events_lock:
                self._emit(job, state, previous)
            if state not in FINAL_STATES:
                continue
            with self._lock:
                callbacks, job._callbacks = job._callbacks, []
            for cb in callbacks:
                _call_quietly(cb, job)

    def _emit(self, job: Job, state: JobState, previous: JobState | None) -> None:
        if self._observer is None:
            return
        event = JobEvent(
            job_id=job.job_id,
            state=state,
            previous=previous,
            queue_wait=job.queue_wait if state is not JobState.PENDING else None,
            run_time=job.run_time if state in FINAL_STATES else None,
            worker_pid=job.worker_pid,
            error=type(job._error).__name__ if state in FINAL_STATES and job._error is not None else None,
        )
        _call_quietly(self._observer, event)

    def _abort_all_locked(self, reason: str) -> list[tuple[Job, JobState, JobState | None]]:
        finished = []
        while self._queue:
            job = self._queue.popleft()
            finished.append(self._finish_locked(job, JobState.FAILED, error=Unavailable(reason)))
        for w in self._workers:
            if w.state is _WorkerState.BUSY and w.job is not None:
                job, w.job = w.job, None
                finished.append(self._finish_locked(job, JobState.FAILED, error=Unavailable(reason)))
                self._kill_locked(w)
        return finished

    # ------------------------------------------------------------------ internals: workers

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"\0")
        except (BlockingIOError, OSError):
            pass  # a wake-up is already pending, or the pool is closed

    def _spawn_locked(self) -> None:
        parent_conn, child_conn = self._ctx.Pipe(duplex=True)
        stop_event = self._ctx.Event()
        process = self._ctx.Process(
            target=_worker.worker_main,
            args=(child_conn, stop_event, self._initializer),
            name="prover-worker",
            daemon=True,
        )
        try:
            process.start()
        finally:
            child_conn.close()
        self._workers.append(_Worker(process, parent_conn, stop_event))
        logger.debug("started worker %d", process.pid)

    def _kill_locked(self, w: _Worker, *, terminate: bool = True) -> None:
        """SIGTERM now, SIGKILL after the grace (done by the dispatcher); stop listening to it.

        ``terminate=False``: a worker that is leaving by itself; SIGKILL only if it lingers.
        """
        w.state = _WorkerState.DYING
        w.job = None
        w.deadline = w.cancel_deadline = None
        w.reserve = 0
        if w.conn is not None:
            w.conn.close()
            w.conn = None
        if terminate:
            try:
                w.process.terminate()
            except (OSError, ValueError):
                pass
        w.kill_at = time.monotonic() + self._term_grace
        self._changed.notify_all()

    def _stop_workers(self, workers: list[_Worker]) -> None:
        """Close time: ask idle workers to leave, then terminate / kill stragglers, reap all."""
        for w in workers:
            if w.conn is not None and w.state is _WorkerState.IDLE:
                try:
                    w.conn.send(("stop",))
                except OSError:
                    pass
            elif w.state is not _WorkerState.DYING:
                w.process.terminate()
        deadline = time.monotonic() + max(self._term_grace, 0.5)
        for w in workers:
            w.process.join(max(0.0, deadline - time.monotonic()))
        for w in workers:
            if w.process.exitcode is None:
                w.process.kill()
                w.process.join(5)
            if w.conn is not None:
                w.conn.close()
                w.conn = None
            if w.process.exitcode is not None:
                w.process.close()

    # ------------------------------------------------------------------ dispatcher

    def _dispatch_loop(self) -> None:
        while True:
            try:
                with self._lock:
                    if self._stop_dispatcher:
                        return
                    finished = self._tick_locked()
                    objects, timeout = self._wait_list_locked()
                self._after(finished)
                ready = multiprocessing.connection.wait(objects, timeout)
                finished = []
                with self._lock:
                    for obj in ready:  # pipes first, so a result sent just before exit is kept
                        if obj is self._wake_r:
                            self._drain_wake()
                    for obj in ready:
                        if isinstance(obj, multiprocessing.connection.Connection):
                            w = self._worker_by_conn(obj)
                            if w is not None:
                                finished += self._read_locked(w)
                    for obj in ready:
                        if isinstance(obj, int):
                            w = self._worker_by_sentinel(obj)
                            if w is not None:
                                finished += self._reap_locked(w)
                self._after(finished)
            except Exception:  # pragma: no cover - keep serving even after a bug here
                logger.exception("pool dispatcher error")
                time.sleep(0.1)

    def _drain_wake(self) -> None:
        try:
            while self._wake_r.recv(4096):
                pass
        except (BlockingIOError, OSError):
            pass

    def _worker_by_conn(self, conn: object) -> _Worker | None:
        return next((w for w in self._workers if w.conn is conn), None)

    def _worker_by_sentinel(self, sentinel: int) -> _Worker | None:
        return next((w for w in self._workers if w.process.sentinel == sentinel), None)

    def _wait_list_locked(self) -> tuple[list[Any], float | None]:
        objects: list[Any] = [self._wake_r]
        deadlines: list[float] = []
        for w in self._workers:
            if w.conn is not None:
                objects.append(w.conn)
            objects.append(w.process.sentinel)
            deadlines += [d for d in (w.deadline, w.cancel_deadline, w.kill_at) if d is not None]
        if self._spawn_deficit_locked() > 0:
            deadlines.append(self._next_spawn_at)
        if not deadlines:
            return objects, None
        return objects, max(0.0, min(deadlines) - time.monotonic())

    def _spawn_deficit_locked(self) -> int:
        if self._draining or self._closed:
            return 0
        return self.size - sum(w.alive for w in self._workers)

    def _tick_locked(self) -> list[tuple[Job, JobState, JobState | None]]:
        """Deadlines, respawns, then hand queued jobs to idle workers."""
        finished = []
        now = time.monotonic()
        for w in self._workers:
            if w.deadline is not None and now >= w.deadline and w.job is not None:
                job = w.job
                logger.warning("job %s timed out after %ss on worker %d; killing it", job.job_id, job.timeout, w.pid)
                err = JobTimeout(
                    f"Proof generation exceeded timeout ({format_seconds(job.timeout)}s)",
                    details={"timeout_seconds": job.timeout},
                )
                finished.append(self._finish_locked(job, JobState.TIMED_OUT, error=err))
                self._kill_locked(w)
            elif w.cancel_deadline is not None and now >= w.cancel_deadline and w.job is not None:
                job = w.job
                logger.warning("job %s ignored cancellation; killing worker %d", job.job_id, w.pid)
                finished.append(self._finish_locked(job, JobState.CANCELLED, error=Cancelled("job cancelled")))
                self._kill_locked(w)
            elif w.kill_at is not None and now >= w.kill_at and w.process.exitcode is None:
                try:
                    w.process.kill()
                except (OSError, ValueError):
                    pass
                w.kill_at = None

        deficit = self._spawn_deficit_locked()
        if deficit > 0 and now >= self._next_spawn_at:
            for _ in range(deficit):
                try:
                    self._spawn_locked()
                except Exception:
                    logger.exception("could not start a prover worker")
                    self._startup_failures += 1
                    self._next_spawn_at = now + self._backoff()
                    break

        for w in self._workers:
            if not self._queue:
                break
            if w.state is _WorkerState.IDLE:
                if not self._admits_locked(self._queue[0]):
                    break  # FIFO: the head waits for memory, and nothing overtakes it
                finished += self._assign_locked(w, self._queue.popleft())
        return finished

    def _backoff(self) -> float:
        return min(10.0, 0.1 * 2 ** max(0, self._startup_failures - 1))

    def _assign_locked(self, w: _Worker, job: Job) -> list[tuple[Job, JobState, JobState | None]]:
        assert w.conn is not None
        w.stop_event.clear()
        try:
            w.conn.send(("run", job.job_id, job.fn, job._payload))
        except (OSError, ValueError):
            # The worker is gone; its sentinel will tell us how. The job never started.
            self._queue.appendleft(job)
            w.state = _WorkerState.DYING
            w.conn.close()
            w.conn = None
            return []
        now = time.monotonic()
        w.state = _WorkerState.BUSY
        w.job = job
        w.deadline = now + job.timeout
        w.cancel_deadline = None
        w.resident_at_start = w.resident
        if self.memory_budget is not None:
            need = self._expected_locked(job.fn, job.memory)
            # Growth not known yet: the job runs alone (see _admits_locked) and holds the rest of the budget.
            w.reserve = need if need is not None else max(0, self.memory_budget - self._reserved_locked())
            self._peak_reserved = max(self._peak_reserved, self._reserved_locked())
        job._state = JobState.IN_PROGRESS
        job.worker_pid = w.pid
        job.started_at = time.time()
        job._started_mono = now
        job._payload = None
        return [(job, JobState.IN_PROGRESS, JobState.PENDING)]

    def _read_locked(self, w: _Worker) -> list[tuple[Job, JobState, JobState | None]]:
        finished = []
        while w.conn is not None:
            try:
                if not w.conn.poll():
                    break
                msg = w.conn.recv()
            except (EOFError, OSError):
                w.conn.close()  # the process is gone or going; its sentinel finishes the story
                w.conn = None
                break
            finished += self._on_message_locked(w, msg)
        return finished

    def _on_message_locked(self, w: _Worker, msg: tuple[Any, ...]) -> list[tuple[Job, JobState, JobState | None]]:
        kind = msg[0]
        if kind == "mem":
            resident, peak = int(msg[1]), int(msg[2])
            if w.job is not None:  # the report that precedes "done": learn what jobs of this kind add
                hist = self._growth.setdefault(w.job.fn, collections.deque(maxlen=_GROWTH_HISTORY))
                hist.append(max(0, peak - w.resident_at_start))
            w.resident = resident
            return []
        if kind == "ready":
            if w.state is _WorkerState.STARTING:
                w.state = _WorkerState.IDLE
                self._startup_failures = 0
                self._changed.notify_all()
            return []
        if kind != "done" or w.job is None or msg[1] != w.job.job_id:
            logger.error("unexpected message %r from worker %d", kind, w.pid)
            return []
        job = w.job
        w.job = None
        w.deadline = w.cancel_deadline = None
        w.reserve = 0
        w.state = _WorkerState.IDLE
        retiring, outcome = msg[2], msg[3]
        if outcome == "ok":
            entry = self._finish_locked(job, JobState.COMPLETED, result=msg[4])
        elif outcome == "cancelled":
            entry = self._finish_locked(job, JobState.CANCELLED, error=Cancelled("job cancelled"))
        else:
            entry = self._finish_locked(job, JobState.FAILED, error=_worker.decode_error(*msg[4:8]))
        if retiring:  # it exits by itself; give it no more work
            self._kill_locked(w, terminate=False)
        return [entry]

    def _reap_locked(self, w: _Worker) -> list[tuple[Job, JobState, JobState | None]]:
        finished = self._read_locked(w)  # a reply written just before the exit still counts
        w.process.join(1)
        code = w.process.exitcode
        if w.job is not None:
            job = w.job
            err = InternalError(f"worker process died ({_describe_exit(code)})", details={"exit": _describe_exit(code)})
            logger.error("worker %d died (%s) running job %s", w.pid, _describe_exit(code), job.job_id)
            finished.append(self._finish_locked(job, JobState.FAILED, error=err))
        elif w.state is _WorkerState.STARTING:
            self._startup_failures += 1
            self._next_spawn_at = time.monotonic() + self._backoff()
            logger.error("worker %d died while starting (%s)", w.pid, _describe_exit(code))
        elif w.state is not _WorkerState.DYING and not self._closed:
            logger.warning("idle worker %d exited (%s); replacing it", w.pid, _describe_exit(code))
        if w.conn is not None:
            w.conn.close()
            w.conn = None
        if code is None:  # pragma: no cover - the sentinel fired but the process lingers
            w.process.kill()
            w.process.join(5)
        if w.process.exitcode is not None:
            w.process.close()
        self._workers.remove(w)
        self._changed.notify_all()
        return finished


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "unknown exit status"
    if code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"exit code {code}"


def default_memory_budget() -> int:
    """``BUDGET_FRACTION`` of the memory this process may use: the cgroup limit (v2 ``memory.max``, v1
    ``memory.limit_in_bytes``) where one is set, else the RAM (``MemTotal``)."""
    limit = _cgroup_limit()
    total = _mem_total()
    base = min(x for x in (limit, total) if x) if (limit or total) else 0
    if not base:
        raise RuntimeError("cannot tell how much memory this machine has: set TEEPROVER_MEMORY_BUDGET")
    return int(base * BUDGET_FRACTION)


def _cgroup_limit() -> int:
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            with open(path) as f:
                text = f.read().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) < 1 << 60:  # "max" or a huge number: no limit
            return int(text)
    return 0


def _mem_total() -> int:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    pages, size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
    return pages * size if pages > 0 and size > 0 else 0


def key_cache_bytes(memory_budget: int, num_workers: int) -> int:
    """Bytes of decoded proving keys one worker may keep between jobs: together, idle workers' caches
    hold at most half the budget, so the other half is always there for running jobs."""
    return memory_budget // (2 * max(1, num_workers))
