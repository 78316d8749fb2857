"""Service plumbing shared by every gRPC server: wiring, request ids, error seam, metrics, shutdown.

``create_server(...) -> (server, port)`` binds (port 0 = any free port, so tests
can run servers side by side), adds ``grpc.health.v1`` and reflection, raises
the message-size limits to the body limit (a large body must never surface as
a misleading RESOURCE_EXHAUSTED → 429) and installs the interceptor that
carries the request id into logs and maps domain errors exactly once.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent import futures
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from services.common import errors as seam
from services.common import metrics, tracing, transport
from services.common.logs import request_id_var
from teeprover.errors import TeeProverError

log = logging.getLogger(__name__)

# gRPC framing and our own CBOR envelope add a little to the raw body.
MESSAGE_OVERHEAD = 64 * 1024


def request_id_from(context: grpc.ServicerContext) -> str:
    for key, value in context.invocation_metadata():
        if key == "x-request-id" and isinstance(value, str) and 0 < len(value) <= 128 and value.isprintable():
            return value
    return str(uuid.uuid4())


class ServiceInterceptor(grpc.ServerInterceptor):  # type: ignore[misc]
    """Request id → log context; domain error → status + public body; metrics per method."""

    def __init__(self, service: str, before: Callable[[str, grpc.ServicerContext], None] | None = None) -> None:
        self.service = service
        self.before = before  # e.g. the API-key check; raises a TeeProverError to refuse

    def intercept_service(self, continuation: Any, handler_call_details: Any) -> Any:
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        full_method: str = handler_call_details.method
        method = full_method.rsplit("/", 1)[-1]
        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(
                self._wrap_unary(handler.unary_unary, full_method, method),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(
                self._wrap_stream(handler.unary_stream, full_method, method),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        return handler

    def _enter(self, context: grpc.ServicerContext) -> tuple[str, Any]:
        rid = request_id_from(context)
        tracing.annotate_current_span(rid)
        return rid, request_id_var.set(rid)

    def _fail(self, context: grpc.ServicerContext, exc: BaseException, rid: str, method: str) -> None:
        mapping = seam.mapping_for(exc)
        metrics.ERRORS.labels(self.service, method, mapping.error).inc()
        tracing.mark_current_span_failed(mapping.error, server_fault=mapping.http >= 500,
                                         description=exc.message if isinstance(exc, TeeProverError) else "")
        if isinstance(exc, TeeProverError):
            log.info("request failed", extra={"method": method, "error": mapping.error, "reason": exc.message})
        else:
            log.exception("unexpected error", extra={"method": method})
        seam.abort(context, exc, rid)

    @contextlib.contextmanager
    def _call(self, context: grpc.ServicerContext, full_method: str, method: str) -> Iterator[None]:
        """Around every RPC: request id, auth hook, error seam, metrics and the access log line."""
        start = time.perf_counter()
        code = "OK"
        rid, token = self._enter(context)
        try:
            if self.before is not None:
                self.before(full_method, context)
            yield
        except TeeProverError as exc:
            code = seam.mapping_for(exc).code.name
            self._fail(context, exc, rid, method)
        except Exception as exc:  # noqa: BLE001 - the seam must catch everything
            if _is_abort(exc):
                code = (context.code() or grpc.StatusCode.UNKNOWN).name
                raise
            code = "INTERNAL"
            self._fail(context, exc, rid, method)
        finally:
            elapsed = time.perf_counter() - start
            metrics.REQUESTS.labels(self.service, method, code).inc()
            metrics.REQUEST_SECONDS.labels(self.service, method).observe(elapsed)
            log.info("rpc", extra={"method": method, "status": code, "duration_ms": round(elapsed * 1e3, 2)})
            request_id_var.reset(token)

    def _wrap_unary(self, behavior: Callable[..., Any], full_method: str, method: str) -> Callable[..., Any]:
        def wrapper(request: Any, context: grpc.ServicerContext) -> Any:
            with self._call(context, full_method, method):
                return behavior(request, context)

        return wrapper

    def _wrap_stream(self, behavior: Callable[..., Any], full_method: str, method: str) -> Callable[..., Any]:
        def wrapper(request: Any, context: grpc.ServicerContext) -> Iterable[Any]:
            with self._call(context, full_method, method):
                yield from behavior(request, context)

        return wrapper


def _is_abort(exc: BaseException) -> bool:
    # grpc's context.abort raises a bare Exception subclass after setting the status.
    return type(exc).__name__ == "_AbortedError" or (type(exc) is Exception and not exc.args)


def create_server(
    *,
    service: str,
    port: int,
    host: str,
    register: Callable[[grpc.Server], Iterable[str]],
    max_message_bytes: int,
    before: Callable[[str, grpc.ServicerContext], None] | None = None,
    max_workers: int = 16,
    extra_interceptors: Iterable[grpc.ServerInterceptor] = (),
    tracer_provider: Any = tracing.FROM_ENVIRONMENT,
) -> tuple[grpc.Server, int, health.HealthServicer]:
    """Build a server with health, reflection, limits and the service interceptor; returns (server, port, health).

    ``tracer_provider``: an OpenTelemetry ``TracerProvider``, None for no tracing, or by
    default the process's provider built once from ``TEEPROVER_OTEL_*`` (tracing.py).
    The tracing interceptor is outermost, so the service interceptor runs inside the span.
    """
    limit = max_message_bytes + MESSAGE_OVERHEAD
    if tracer_provider is tracing.FROM_ENVIRONMENT:
        tracer_provider = tracing.process_provider(service)
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix=service),
        interceptors=[*tracing.server_interceptors(tracer_provider), *extra_interceptors,
                      ServiceInterceptor(service, before)],
        options=[
            ("grpc.max_receive_message_length", limit),
            ("grpc.max_send_message_length", max(limit, 64 * 1024 * 1024)),
            ("grpc.so_reuseport", 0),
        ],
    )
    names = list(register(server))
    health_servicer = health.HealthServicer(experimental_non_blocking=True)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for name in ["", *names]:
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    reflection.enable_server_reflection([*names, health.SERVICE_NAME, reflection.SERVICE_NAME], server)
    bound = server.add_insecure_port(transport.grpc_listen_target(host, port, service))  # TCP or unix:
    if bound == 0:
        raise OSError(f"cannot bind {host}:{port}")
    return server, bound, health_servicer


_SIGNAL_POLL_S = 0.5


def run_until_signal(
    server: grpc.Server,
    health_servicer: health.HealthServicer,
    *,
    grace: float,
    on_drain: Callable[[float], None] | None = None,
    ready_message: str = "",
) -> None:
    """Start ``server`` and block until SIGTERM/SIGINT, then drain gracefully and return."""
    stop = threading.Event()

    def _signal(signum: int, _frame: Any) -> None:
        log.info("signal received, draining", extra={"signal": signal.Signals(signum).name})
        stop.set()

    signal.signal(signal.SIGTERM, _signal)
    signal.signal(signal.SIGINT, _signal)
    server.start()
    if ready_message:
        log.info(ready_message)
    # Waited in short steps, not at once: the kernel may hand SIGTERM to any thread (gRPC's among them),
    # and Python then runs the handler only when the main thread next runs bytecode; a main thread
    # blocked in one untimed wait would not, and /ready would stay "ready" after the signal.
    while not stop.wait(_SIGNAL_POLL_S):
        pass
    health_servicer.enter_graceful_shutdown()
    if on_drain is not None:
        on_drain(grace)
    server.stop(grace).wait(grace + 5)
    tracing.shutdown()
    log.info("stopped")
