"""The prover's Prometheus metrics and job logs (docs/architecture.md §8).

Three sources feed them:

* the pool's ``observer`` (:meth:`ProverMetrics.observe`): one :class:`JobEvent` per job
  state transition → ``teeprover_prover_jobs_total{state}``, queue wait and run time
  histograms, and one JSON log line per transition with the job id (= request id);
* the core's hooks (:meth:`rejected`, :meth:`proof_finished`): refusals that never
  reach the pool (queue full, draining) and the proof time by k;
* the pool itself at scrape time (:class:`PoolCollector`): queue size, active and
  total workers, capacity -- read live from ``pool.stats()``, never cached.

Proof time by k is measured inside the worker, where k is known:
``services.prover.jobs.prove`` prefixes its reply with a fixed header (k, seconds)
that ``jobs.split_proof_reply`` strips again before the reply leaves the prover.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from services.common.metrics import LATENCY_BUCKETS
from services.prover.pool import FINAL_STATES, JobEvent, JobState

log = logging.getLogger("teeprover.prover.jobs")

# Queue waits matter from a millisecond (idle pool) to minutes (a backlog of big proofs).
QUEUE_WAIT_BUCKETS = (0.0005, *LATENCY_BUCKETS)


class PoolCollector(Collector):
    """Gauges read from ``stats()`` at every scrape (so they are never stale)."""

    def __init__(self, stats: Callable[[], dict[str, int]]) -> None:
        self._stats = stats

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            stats = self._stats()
        except Exception:  # a closed pool must not break the whole scrape
            return
        for key, doc in (
            ("queue_size", "jobs waiting for a worker"),
            ("active_workers", "workers running a job"),
            ("total_workers", "live worker processes"),
            ("capacity", "queue capacity (0 = unbounded)"),
        ):
            yield GaugeMetricFamily(f"teeprover_prover_{key}", doc, value=stats.get(key, 0))


class ProverMetrics:
    """Prometheus metrics of one prover process; pass a fresh ``CollectorRegistry`` in tests."""

    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.registry = registry
        self.jobs = Counter("teeprover_prover_jobs", "job state transitions (pending, in_progress, completed, failed, "
                            "cancelled, timed_out)", ["state"], registry=registry)
        self.job_errors = Counter("teeprover_prover_job_errors", "jobs that ended with an error, by error class",
                                  ["state", "error"], registry=registry)
        self.queue_wait = Histogram("teeprover_prover_queue_wait_seconds", "time from submit to a worker starting "
                                    "the job (or to its end, if it never started)", buckets=QUEUE_WAIT_BUCKETS,
                                    registry=registry)
        self.run_time = Histogram("teeprover_prover_job_run_seconds", "time a job held a worker, by final state",
                                  ["state"], buckets=LATENCY_BUCKETS, registry=registry)
        self.proof_time = Histogram("teeprover_prover_proof_seconds", "proof generation time in the worker, by k",
                                    ["k"], buckets=LATENCY_BUCKETS, registry=registry)
        self.rejections = Counter("teeprover_prover_rejections", "requests refused before reaching the pool",
                                  ["reason"], registry=registry)
        for state in JobState:  # every state shows (at 0) from the first scrape
            self.jobs.labels(state.value)
        for reason in ("queue_full", "draining", "unavailable"):
            self.rejections.labels(reason)
        self._collector: PoolCollector | None = None

    def watch_pool(self, stats: Callable[[], dict[str, int]]) -> None:
        """Expose the pool gauges (once per ProverMetrics)."""
        if self._collector is None:
            self._collector = PoolCollector(stats)
            self.registry.register(self._collector)

    # -- pool observer ------------------------------------------------------------
    def observe(self, event: JobEvent) -> None:
        """The pool's observer: count, time and log one transition. Quick, never raises into the pool."""
        self.jobs.labels(event.state.value).inc()
        if event.state is JobState.IN_PROGRESS or (event.state in FINAL_STATES and event.previous is JobState.PENDING):
            if event.queue_wait is not None:
                self.queue_wait.observe(event.queue_wait)
        if event.state in FINAL_STATES:
            if event.run_time is not None:
                self.run_time.labels(event.state.value).observe(event.run_time)
            if event.error is not None:
                self.job_errors.labels(event.state.value, event.error).inc()
        fields: dict[str, Any] = {"request_id": event.job_id, "job_id": event.job_id, "state": event.state.value}
        if event.previous is not None:
            fields["previous"] = event.previous.value
        if event.queue_wait is not None:
            fields["queue_wait_ms"] = round(event.queue_wait * 1e3, 2)
        if event.run_time is not None:
            fields["run_time_ms"] = round(event.run_time * 1e3, 2)
        if event.worker_pid is not None:
            fields["worker_pid"] = event.worker_pid
        if event.error is not None:
            fields["error"] = event.error
        level = logging.WARNING if event.state in (JobState.FAILED, JobState.TIMED_OUT) else logging.INFO
        log.log(level, "job", extra=fields)

    # -- core hooks ------------------------------------------------------------------
    def rejected(self, kind: str, reason: str) -> None:
        self.rejections.labels(reason).inc()

    def proof_finished(self, k: int, seconds: float) -> None:
        self.proof_time.labels(str(k)).observe(seconds)


# ---------------------------------------------------------------------- worker side
