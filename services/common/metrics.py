"""Prometheus metrics shared by every service (one registry per process)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram, start_http_server

from services.common import transport

# Buckets chosen so p50/p95/p99 of both health checks (ms) and proofs (minutes) resolve.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)

REQUESTS = Counter("teeprover_requests_total", "RPCs handled", ["service", "method", "code"])
REQUEST_SECONDS = Histogram(
    "teeprover_request_duration_seconds", "RPC duration", ["service", "method"], buckets=LATENCY_BUCKETS
)
ERRORS = Counter("teeprover_errors_total", "RPCs that ended in an error", ["service", "method", "error"])


def serve_metrics(port: int, host: str = "127.0.0.1") -> None:
    """Expose /metrics on ``port`` (0 = disabled)."""
    if port:
        start_http_server(port, addr=transport.metrics_host(host))
