"""Tracing: spans per RPC through a real gRPC server, the request id on them, ratio sampling that keeps errors."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import grpc
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import Decision, TraceIdRatioBased
from opentelemetry.trace import StatusCode

from services.common import tracing
from services.common.config import ConfigError
from services.common.server import create_server
from teeprover.errors import InternalError, InvalidInput

SERVICE = "test.Echo"


def _echo(request: bytes, context: grpc.ServicerContext) -> bytes:
    if request == b"crash":
        raise InternalError("the worker fell over")
    if request == b"bad":
        raise InvalidInput("that is not a circuit")
    return request


def _register(server: grpc.Server) -> list[str]:
    handler = grpc.unary_unary_rpc_method_handler(_echo)  # bytes in, bytes out
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, {"Echo": handler}),))
    return [SERVICE]


class Traced:
    def __init__(self, ratio: float) -> None:
        self.exporter = InMemorySpanExporter()
        self.provider = tracing.make_provider("test", self.exporter, ratio, batch=False)
        self.server, port, _ = create_server(service="test", port=0, host="127.0.0.1", register=_register,
                                             max_message_bytes=1024, tracer_provider=self.provider)
        self.server.start()
        self.channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        self.echo = self.channel.unary_unary(f"/{SERVICE}/Echo")

    def call(self, data: bytes, request_id: str, traceparent: str | None = None) -> grpc.StatusCode:
        md = [("x-request-id", request_id)] + ([("traceparent", traceparent)] if traceparent else [])
        try:
            self.echo(data, timeout=5, metadata=md)
        except grpc.RpcError as exc:
            return exc.code()  # type: ignore[no-any-return]
        return grpc.StatusCode.OK

    def exported(self) -> dict[str, ReadableSpan]:
        return {str((s.attributes or {}).get(tracing.REQUEST_ID_ATTRIBUTE)): s
                for s in self.exporter.get_finished_spans()}

    def close(self) -> None:
        self.channel.close()
        self.server.stop(None)
        self.provider.shutdown()


@pytest.fixture()
def traced_none() -> Iterator[Traced]:
    t = Traced(ratio=0.0)
    yield t
    t.close()


@pytest.fixture()
def traced_all() -> Iterator[Traced]:
    t = Traced(ratio=1.0)
    yield t
    t.close()


def test_every_rpc_span_carries_the_request_id_at_ratio_one(traced_all: Traced) -> None:
    assert traced_all.call(b"hi", "rid-ok") is grpc.StatusCode.OK
    assert traced_all.call(b"bad", "rid-bad") is grpc.StatusCode.INVALID_ARGUMENT
    spans = traced_all.exported()
    assert set(spans) == {"rid-ok", "rid-bad"}
    ok = spans["rid-ok"]
    assert ok.name == f"/{SERVICE}/Echo" and ok.kind is trace.SpanKind.SERVER
    assert ok.status.status_code is StatusCode.UNSET
    # A client mistake is named on the span but is not a server error.
    assert (spans["rid-bad"].attributes or {})[tracing.ERROR_ATTRIBUTE] == "BadRequest"
    assert spans["rid-bad"].status.status_code is not StatusCode.ERROR


def test_ratio_zero_exports_no_successes_but_every_server_error(traced_none: Traced) -> None:
    for i in range(20):
        assert traced_none.call(b"hi", f"ok-{i}") is grpc.StatusCode.OK
    assert traced_none.call(b"bad", "bad-1") is grpc.StatusCode.INVALID_ARGUMENT
    for i in range(3):
        assert traced_none.call(b"crash", f"crash-{i}") is grpc.StatusCode.INTERNAL
    spans = traced_none.exported()
    assert set(spans) == {"crash-0", "crash-1", "crash-2"}
    crash = spans["crash-0"]
    assert crash.status.status_code is StatusCode.ERROR
    assert (crash.attributes or {})[tracing.ERROR_ATTRIBUTE] == "InternalError"


def test_a_caller_that_sampled_the_trace_gets_our_spans_in_it(traced_none: Traced) -> None:
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    assert traced_none.call(b"hi", "sampled", f"00-{trace_id}-00f067aa0ba902b7-01") is grpc.StatusCode.OK
    assert traced_none.call(b"hi", "not-sampled", f"00-{trace_id[::-1]}-00f067aa0ba902b7-00") is grpc.StatusCode.OK
    spans = traced_none.exported()
    assert set(spans) == {"sampled"}
    assert format(spans["sampled"].context.trace_id, "032x") == trace_id  # the W3C context was continued


def test_an_error_in_a_child_keeps_the_whole_local_trace() -> None:
    exporter = InMemorySpanExporter()
    provider = tracing.make_provider("test", exporter, 0.0, batch=False)
    tracer = provider.get_tracer("t")
    with tracer.start_as_current_span("quiet-root"):
        with tracer.start_as_current_span("quiet-child"):
            pass
    with tracer.start_as_current_span("root"):
        with tracer.start_as_current_span("ok-child"):
            pass
        with tracer.start_as_current_span("failing-child") as child:
            child.set_status(trace.Status(StatusCode.ERROR, "boom"))
    assert sorted(s.name for s in exporter.get_finished_spans()) == ["failing-child", "ok-child", "root"]
    provider.shutdown()


def test_pending_traces_are_bounded() -> None:
    exporter = InMemorySpanExporter()
    processor = tracing.ErrorKeepingProcessor(SimpleSpanProcessor(exporter), 1.0, max_traces=5)
    provider = tracing.make_provider("test", exporter, 1.0, batch=False)
    provider._active_span_processor._span_processors = (processor,)  # only ours, for this test
    tracer = provider.get_tracer("t")
    roots = [tracer.start_span(f"root-{i}") for i in range(10)]
    for i, root in enumerate(roots):  # children end, roots never do
        tracer.start_span(f"child-{i}", context=trace.set_span_in_context(root)).end()
    assert len(processor._pending) == 5


@pytest.mark.parametrize("ratio", [0.0, 0.1, 0.5, 1.0])
def test_ratio_decision_is_the_sdk_trace_id_ratio(ratio: float) -> None:
    sampler = TraceIdRatioBased(ratio)
    for i in range(200):
        trace_id = (i * 0x9E3779B97F4A7C15_F39CC0605CEDC834) % (1 << 128) or 1
        sdk = sampler.should_sample(None, trace_id, "x").decision is Decision.RECORD_AND_SAMPLE
        assert tracing.trace_in_ratio(trace_id, ratio) == sdk


def test_exporters_from_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    assert tracing.make_exporter("none") is None
    assert type(tracing.make_exporter("console")).__name__ == "ConsoleSpanExporter"
    with pytest.raises(ConfigError):
        tracing.make_exporter("zipkin")
    # Without the optional OTLP package, otlp is refused with a message that names it.
    monkeypatch.setitem(sys.modules, "opentelemetry.exporter.otlp.proto.grpc.trace_exporter", None)
    with pytest.raises(ConfigError, match="opentelemetry-exporter-otlp-proto-grpc"):
        tracing.make_exporter("otlp")


def test_tracing_off_adds_no_interceptor() -> None:
    assert tracing.server_interceptors(None) == []
    assert tracing.make_exporter("none") is None
