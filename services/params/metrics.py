"""Prometheus metrics for the parameter store (a :class:`~teeprover.params.observer.ParamsObserver`).

The params service's own (like services/prover/metrics.py): the library's store reports through the observer
hooks and does not depend on prometheus-client.
"""

from __future__ import annotations

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram

_FETCH_BUCKETS = (0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)


class PrometheusObserver:
    """Counters and a histogram labelled by k; pass a fresh ``CollectorRegistry`` in tests."""

    def __init__(self, registry: CollectorRegistry = REGISTRY, *, namespace: str = "teeprover") -> None:
        def counter(name: str, doc: str, labels: tuple[str, ...] = ("k",)) -> Counter:
            return Counter(name, doc, labels, namespace=namespace, subsystem="params", registry=registry)

        self.hits = counter("cache_hits", "ensure(k) answered from the cache")
        self.misses = counter("cache_misses", "ensure(k) that needed a download")
        self.bytes = counter("fetched_bytes", "bytes downloaded from parameter mirrors")
        self.failures = counter("verification_failures", "files that did not match the manifest", ("k", "reason"))
        self.evictions = counter("evictions", "files evicted to respect the disk budget")
        self.duration = Histogram("fetch_duration_seconds", "duration of parameter downloads", ("k", "outcome"),
                                  namespace=namespace, subsystem="params", registry=registry,
                                  buckets=_FETCH_BUCKETS)

    def cache_hit(self, k: int) -> None:
        self.hits.labels(k=str(k)).inc()

    def cache_miss(self, k: int) -> None:
        self.misses.labels(k=str(k)).inc()

    def bytes_fetched(self, k: int, n: int) -> None:
        self.bytes.labels(k=str(k)).inc(n)

    def fetch_finished(self, k: int, seconds: float, ok: bool) -> None:
        self.duration.labels(k=str(k), outcome="ok" if ok else "failed").observe(seconds)

    def verification_failed(self, k: int, reason: str) -> None:
        self.failures.labels(k=str(k), reason=reason).inc()

    def evicted(self, k: int, size: int) -> None:
        self.evictions.labels(k=str(k)).inc()
