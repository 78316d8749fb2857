"""OpenTelemetry tracing for every gRPC service (docs/architecture.md §8).

Off by default (``TEEPROVER_OTEL_EXPORTER=none``).  With ``console`` or ``otlp``
each server gets the ``opentelemetry-instrumentation-grpc`` server interceptor
(one SERVER span per RPC, W3C ``traceparent`` picked up from the metadata) and
outgoing gRPC calls are instrumented too, so a trace follows a request from one
service to the next.  The service interceptor (``services/common/server.py``)
puts the request id on the span as ``teeprover.request_id``.

Sampling keeps a ratio of traces *and every trace with an error*.  A head
sampler cannot do that (it decides before the error happens), so every span is
recorded and :class:`ErrorKeepingProcessor` decides when the trace's local root
span ends: the whole local trace is exported when its trace id falls in the
ratio (the same test as ``TraceIdRatioBased``), when the caller's context said
"sampled", or when any of its spans has status ERROR.  Spans of traces not yet
decided are buffered, bounded by ``max_traces``.  What counts as an error is
OpenTelemetry's server convention (UNKNOWN, DEADLINE_EXCEEDED, UNIMPLEMENTED,
INTERNAL, UNAVAILABLE, DATA_LOSS) plus any span the service marks ERROR; a
client mistake (INVALID_ARGUMENT, UNAUTHENTICATED, ...) is not a server error,
and carries the attribute ``teeprover.error`` instead.

The ``otlp`` exporter needs ``opentelemetry-exporter-otlp-proto-grpc``
(pinned ``==1.45.2``, matching the SDK); it reads the standard
``OTEL_EXPORTER_OTLP_*`` variables for endpoint and headers.
"""

from __future__ import annotations

import collections
import logging
import threading
from collections.abc import Sequence
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_ON
from opentelemetry.trace import StatusCode

from services.common.config import ConfigError

log = logging.getLogger(__name__)

REQUEST_ID_ATTRIBUTE = "teeprover.request_id"
ERROR_ATTRIBUTE = "teeprover.error"
_TRACE_ID_LIMIT = (1 << 64) - 1  # TraceIdRatioBased compares the low 64 bits


def trace_in_ratio(trace_id: int, ratio: float) -> bool:
    """The same decision as ``TraceIdRatioBased(ratio)``: deterministic per trace id."""
    bound = round(ratio * (_TRACE_ID_LIMIT + 1))
    return trace_id & _TRACE_ID_LIMIT < bound


class ErrorKeepingProcessor(SpanProcessor):
    """Export a local trace when it is in the sampling ratio or any of its spans failed.

    ``delegate`` is the processor that really exports (batch in production, simple
    in tests).  Decisions are made when the trace's local root ends (a span with no
    parent or a remote parent); its children have ended by then in a unary RPC.
    """

    def __init__(self, delegate: SpanProcessor, ratio: float, *, max_traces: int = 4096) -> None:
        if not 0.0 <= ratio <= 1.0:
            raise ValueError("ratio must be within [0, 1]")
        self.delegate = delegate
        self.ratio = ratio
        self.max_traces = max_traces
        self._lock = threading.Lock()
        self._pending: collections.OrderedDict[int, list[ReadableSpan]] = collections.OrderedDict()

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        self.delegate.on_start(span, parent_context)

    def on_end(self, span: ReadableSpan) -> None:
        ctx = span.context
        if ctx is None:
            return
        trace_id = ctx.trace_id
        is_local_root = span.parent is None or span.parent.is_remote
        with self._lock:
            spans = self._pending.setdefault(trace_id, [])
            spans.append(span)
            if not is_local_root:
                while len(self._pending) > self.max_traces:  # a root that never ends must not leak memory
                    self._pending.popitem(last=False)
                return
            del self._pending[trace_id]
        if self._keep(spans, span):
            for s in spans:
                self.delegate.on_end(s)

    def _keep(self, spans: Sequence[ReadableSpan], root: ReadableSpan) -> bool:
        if any(s.status.status_code is StatusCode.ERROR for s in spans):
            return True
        if root.parent is not None and root.parent.is_remote and root.parent.trace_flags.sampled:
            return True  # the caller sampled this trace: keep our part of it
        assert root.context is not None
        return trace_in_ratio(root.context.trace_id, self.ratio)

    def shutdown(self) -> None:
        self.delegate.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.delegate.force_flush(timeout_millis)


def make_exporter(kind: str) -> SpanExporter | None:
    """``none`` → None; ``console`` → stdout; ``otlp`` → OTLP/gRPC (needs the optional exporter package)."""
    if kind == "none":
        return None
    if kind == "console":
        return ConsoleSpanExporter()
    if kind == "otlp":
        try:
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
        except ImportError:
            raise ConfigError(
                "TEEPROVER_OTEL_EXPORTER=otlp needs the package opentelemetry-exporter-otlp-proto-grpc==1.45.2; "
                "install it or use 'console' / 'none'"
            ) from None
        return OTLPSpanExporter()  # type: ignore[no-any-return]
    raise ConfigError(f"TEEPROVER_OTEL_EXPORTER must be none, console or otlp, not {kind!r}")


def make_provider(service: str, exporter: SpanExporter, ratio: float, *, batch: bool = True) -> TracerProvider:
    """A provider that records every span and exports through :class:`ErrorKeepingProcessor`."""
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    provider = TracerProvider(sampler=ALWAYS_ON, resource=Resource.create({"service.name": f"teeprover-{service}"}))
    delegate: SpanProcessor = BatchSpanProcessor(exporter) if batch else SimpleSpanProcessor(exporter)
    provider.add_span_processor(ErrorKeepingProcessor(delegate, ratio))
    return provider


def server_interceptors(provider: TracerProvider | None) -> list[Any]:
    """The gRPC server interceptors that trace RPCs (none when tracing is off)."""
    if provider is None:
        return []
    from opentelemetry.instrumentation.grpc import server_interceptor

    return [server_interceptor(tracer_provider=provider)]


_client_instrumented = False


def setup(service: str, exporter_kind: str, ratio: float) -> TracerProvider | None:
    """Build the process's tracer provider from configuration; None when tracing is off.

    Also instruments outgoing gRPC channels (once per process) so that calls between
    services carry the trace context.
    """
    global _client_instrumented
    exporter = make_exporter(exporter_kind)
    if exporter is None:
        return None
    provider = make_provider(service, exporter, ratio)
    trace.set_tracer_provider(provider)
    if not _client_instrumented:
        from opentelemetry.instrumentation.grpc import GrpcInstrumentorClient

        GrpcInstrumentorClient().instrument(tracer_provider=provider)
        _client_instrumented = True
    log.info("tracing on", extra={"exporter": exporter_kind, "sample_ratio": ratio})
    return provider


def annotate_current_span(request_id: str) -> None:
    """Put the request id on the active span (a no-op span when tracing is off)."""
    span = trace.get_current_span()
    if span.is_recording():
        span.set_attribute(REQUEST_ID_ATTRIBUTE, request_id)


def mark_current_span_failed(error: str, *, server_fault: bool, description: str = "") -> None:
    """Record the public error name; server faults (5xx) also get status ERROR, so their traces are kept."""
    span = trace.get_current_span()
    if not span.is_recording():
        return
    span.set_attribute(ERROR_ATTRIBUTE, error)
    if server_fault:
        span.set_status(trace.Status(StatusCode.ERROR, description or error))


class _FromEnvironment:
    def __repr__(self) -> str:
        return "FROM_ENVIRONMENT"


#: ``create_server``'s default: use the process's provider, built once from the configuration.
FROM_ENVIRONMENT: Any = _FromEnvironment()

_process_lock = threading.Lock()
_process_provider: TracerProvider | None = None
_process_configured = False


def process_provider(service: str) -> TracerProvider | None:
    """The process's provider from ``TEEPROVER_OTEL_EXPORTER`` / ``TEEPROVER_OTEL_SAMPLE_RATIO``, made once.

    Server wiring is where configuration is read (core code never is): every service's
    ``create_server`` gets tracing without each ``main`` having to pass it.
    """
    global _process_provider, _process_configured
    with _process_lock:
        if not _process_configured:
            from services.common import config as cfgmod

            config = cfgmod.load(cfgmod.CommonConfig)
            _process_provider = setup(service, config.otel_exporter, config.otel_sample_ratio)
            _process_configured = True
        return _process_provider


def shutdown() -> None:
    """Flush and stop the process's provider (at the end of ``run_until_signal``)."""
    with _process_lock:
        provider = _process_provider
    if provider is not None:
        provider.shutdown()
