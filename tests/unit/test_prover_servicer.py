"""The prover's gRPC service in-process: the real servicer, core, interceptors and error seam on a real
gRPC server (port 0), with a fake pool in place of the worker processes (the grpc examples' way).

What reaches the pool (which job, which bytes), what comes back to the caller (status, trailers,
metadata), and what the pool never sees (refused requests) are checked without the whole stack.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import grpc
import pytest
from google.api import httpbody_pb2

from services.common.config import ProverConfig
from services.common.server import create_server
from services.prover import jobs
from services.prover.core import ProverCore, VersionInfo
from services.prover.server import SERVICE, make_auth_check
from services.prover.service import ProverServicer
from teeprover import apikeys
from teeprover.errors import NotFound, Overloaded, TeeProverError
from teeprover.v1 import prover_pb2, prover_pb2_grpc

KEY = apikeys.new_key()
MAX_BODY = 4096


@dataclass
class FakeJob:
    reply: bytes | TeeProverError
    cancelled: bool = False

    def result(self, timeout: float | None = None) -> bytes:
        if isinstance(self.reply, TeeProverError):
            raise self.reply
        return self.reply

    def cancel(self) -> bool:
        self.cancelled = True
        return True


@dataclass
class FakePool:
    """Records every submission; answers with the next scripted reply (or raises it at submit)."""

    replies: list[bytes | TeeProverError] = field(default_factory=list)
    refuse: TeeProverError | None = None
    submitted: list[tuple[str, Callable[..., bytes], bytes, float]] = field(default_factory=list)

    def submit(self, job_id: str, fn: Callable[..., bytes], payload: bytes, *, timeout: float) -> FakeJob:
        if self.refuse is not None:
            raise self.refuse
        self.submitted.append((job_id, fn, payload, timeout))
        return FakeJob(self.replies.pop(0))

    def stats(self) -> dict[str, int]:
        return {"queue_size": 0, "active_workers": 0, "total_workers": 2}

    def is_ready(self) -> bool:
        return True


@dataclass
class Observer:
    proofs: list[tuple[int, float]] = field(default_factory=list)
    rejections: list[tuple[str, str]] = field(default_factory=list)

    def rejected(self, kind: str, reason: str) -> None:
        self.rejections.append((kind, reason))

    def proof_finished(self, k: int, seconds: float) -> None:
        self.proofs.append((k, seconds))


@dataclass
class Served:
    pool: FakePool
    observer: Observer
    stub: Any


@pytest.fixture
def served() -> Iterator[Served]:
    pool, observer = FakePool(), Observer()
    version = VersionInfo("teeprover", "1.2.3", "abc", "2026-01-02T03:04:05Z", "3.11", False)
    core = ProverCore(pool, max_body_bytes=MAX_BODY, job_timeout=42.0, version=version,  # type: ignore[arg-type]
                      observer=observer)

    def register(server: grpc.Server) -> list[str]:
        prover_pb2_grpc.add_ProverServicer_to_server(ProverServicer(core), server)
        return [SERVICE]

    server, port, _health = create_server(service="prover", port=0, host="127.0.0.1", register=register,
                                          max_message_bytes=MAX_BODY, tracer_provider=None,
                                          before=make_auth_check(ProverConfig(api_keys=(KEY,))))
    server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield Served(pool, observer, prover_pb2_grpc.ProverStub(channel))
    finally:
        channel.close()
        server.stop(None)


def body(data: bytes, content_type: str = "application/cbor") -> httpbody_pb2.HttpBody:
    return httpbody_pb2.HttpBody(content_type=content_type, data=data)


AUTH = (("x-api-key", KEY),)


def test_prove_submits_the_body_to_the_prove_job_and_strips_its_header(served: Served) -> None:
    served.pool.replies.append(jobs.PROOF_HEADER.pack(14, 1.5) + b"proof-bytes")
    reply = served.stub.Prove(body(b"\xa1preimage", "application/cbor; charset=binary"), metadata=AUTH, timeout=10)
    assert (reply.content_type, reply.data) == ("application/cbor", b"proof-bytes")
    ((_, fn, payload, timeout),) = served.pool.submitted
    assert fn is jobs.prove and payload == b"\xa1preimage" and timeout == 42.0  # the body as sent, no prefix
    assert served.observer.proofs == [(14, 1.5)]


@pytest.mark.parametrize("rpc,job,content_type,reply_type", [
    ("K", jobs.k, "application/json", "text/plain"),
    ("Check", jobs.check, "application/cbor", "application/cbor"),
    ("ProveTx", jobs.prove_tx, "application/octet-stream", "application/cbor"),
])
def test_each_rpc_runs_its_own_job(served: Served, rpc: str, job: Any, content_type: str, reply_type: str) -> None:
    served.pool.replies.append(b"answer")
    reply, call = getattr(served.stub, rpc).with_call(body(b"{}", content_type), metadata=AUTH, timeout=10)
    assert (reply.content_type, reply.data) == (reply_type, b"answer")
    assert [(fn, payload) for _, fn, payload, _ in served.pool.submitted] == [(job, b"{}")]
    headers = dict(call.initial_metadata())
    assert ("deprecation" in headers) is (rpc == "ProveTx")
    assert served.observer.proofs == []  # only prove's reply has a proof header


@pytest.mark.parametrize("request_body,metadata,code,error", [
    (body(b"x"), (), grpc.StatusCode.UNAUTHENTICATED, "Unauthorized"),
    (body(b"x"), (("x-api-key", apikeys.new_key()),), grpc.StatusCode.UNAUTHENTICATED, "Unauthorized"),
    (body(b"x", "text/plain"), AUTH, grpc.StatusCode.INVALID_ARGUMENT, "BadRequest"),
    (body(b""), AUTH, grpc.StatusCode.INVALID_ARGUMENT, "BadRequest"),
    (body(b"x" * (MAX_BODY + 1)), AUTH, grpc.StatusCode.INVALID_ARGUMENT, "PayloadTooLarge"),
])
def test_refused_requests_never_reach_the_pool(served: Served, request_body: Any, metadata: Any,
                                               code: grpc.StatusCode, error: str) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        served.stub.Prove(request_body, metadata=metadata, timeout=10)
    assert caught.value.code() is code
    assert error in str(dict(caught.value.trailing_metadata() or ()))
    assert served.pool.submitted == []


def test_a_full_queue_is_503_with_retry_after_and_counted(served: Served) -> None:
    served.pool.refuse = Overloaded("queue full", retry_after=7)
    with pytest.raises(grpc.RpcError) as caught:
        served.stub.Check(body(b"x"), metadata=AUTH, timeout=10)
    assert caught.value.code() is grpc.StatusCode.UNAVAILABLE
    assert dict(caught.value.trailing_metadata() or ()).get("retry-after") == "7"
    assert served.observer.rejections == [("check", "queue_full")]


def test_a_job_error_reaches_the_caller_through_the_error_seam(served: Served) -> None:
    served.pool.replies.append(NotFound("no keys for key_location 'x'", details={"key_location": "x"}))
    with pytest.raises(grpc.RpcError) as caught:
        served.stub.Prove(body(b"x"), metadata=AUTH, timeout=10)
    assert caught.value.code() is grpc.StatusCode.NOT_FOUND
    assert "no keys for key_location" in (caught.value.details() or "")


def test_public_rpcs_need_no_key_and_do_not_touch_the_pool(served: Served) -> None:
    assert served.stub.Health(prover_pb2.HealthRequest(), timeout=10).status == "healthy"
    ready = served.stub.Ready(prover_pb2.ReadyRequest(), timeout=10)
    assert (ready.status, ready.total_workers) == ("ready", 2)
    version = served.stub.Version(prover_pb2.VersionRequest(), timeout=10)
    assert (version.version, version.build_date) == ("1.2.3", "2026-01-02T03:04:05Z")
    assert served.stub.ProofVersions(prover_pb2.ProofVersionsRequest(), timeout=10).data == b'["V1"]'
    assert served.pool.submitted == []
