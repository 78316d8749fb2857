"""The same services over gRPC directly (internal callers), and grpc.health.v1 for each."""

from __future__ import annotations

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from teeprover.v1 import attestor_pb2, attestor_pb2_grpc, params_pb2, params_pb2_grpc, prover_pb2, prover_pb2_grpc
from tests.support.stack import Stack

pytestmark = pytest.mark.e2e


def channel(stack: Stack, name: str) -> grpc.Channel:
    return grpc.insecure_channel(f"127.0.0.1:{stack.ports[name + '_port']}")


@pytest.mark.parametrize("name,service", [("prover", "teeprover.v1.Prover"), ("attestor", "teeprover.v1.Attestor"),
                                          ("params", "teeprover.v1.Params")])
def test_health_check_serving(stack: Stack, name: str, service: str) -> None:
    with channel(stack, name) as ch:
        stub = health_pb2_grpc.HealthStub(ch)
        for svc in ("", service):
            reply = stub.Check(health_pb2.HealthCheckRequest(service=svc), timeout=5)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING


def test_health_check_unknown_service_is_not_found(stack: Stack) -> None:
    with channel(stack, "prover") as ch:
        with pytest.raises(grpc.RpcError) as err:
            health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(service="nope"), timeout=5)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


def test_prover_status_rpcs(stack: Stack) -> None:
    with channel(stack, "prover") as ch:
        stub = prover_pb2_grpc.ProverStub(ch)
        assert stub.Health(prover_pb2.HealthRequest(), timeout=5).status == "healthy"
        ready = stub.Ready(prover_pb2.ReadyRequest(), timeout=5)
        assert ready.status == "ready" and ready.total_workers >= 1
        assert stub.Version(prover_pb2.VersionRequest(), timeout=5).name == "teeprover"
        assert stub.ProofVersions(prover_pb2.ProofVersionsRequest(), timeout=5).data == b'["V1"]'


def test_grpc_auth_uses_metadata(stack: Stack) -> None:
    from google.api import httpbody_pb2

    with channel(stack, "prover") as ch:
        stub = prover_pb2_grpc.ProverStub(ch)
        with pytest.raises(grpc.RpcError) as err:
            stub.K(httpbody_pb2.HttpBody(content_type="application/json", data=b"{}"), timeout=5)
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
        # The public error fields also travel as a google.rpc.Status detail.
        from grpc_status import rpc_status

        status = rpc_status.from_call(err.value)
        assert status is not None and status.details
        from teeprover.v1 import errors_pb2

        info = errors_pb2.ErrorInfo()
        assert status.details[0].Unpack(info)
        assert info.error == "Unauthorized" and info.request_id


def test_attestor_over_grpc(stack: Stack) -> None:
    with channel(stack, "attestor") as ch:
        reply = attestor_pb2_grpc.AttestorStub(ch).GetAttestation(attestor_pb2.AttestationRequest(nonce="00ff"),
                                                                   timeout=10)
    assert reply.platform == "simulated" and reply.nonce == "00ff" and reply.attestation


def test_params_list_over_grpc(stack: Stack) -> None:
    with channel(stack, "params") as ch:
        reply = params_pb2_grpc.ParamsStub(ch).List(params_pb2.ListRequest(), timeout=5)
    # The stack's development parameters were generated (k = 10, 11) and are listed as verified, insecure files.
    listed = {e.k: e for e in reply.entries}
    assert {10, 11} <= set(listed)
    for k in (10, 11):
        assert listed[k].insecure and len(listed[k].sha256) == 64 and listed[k].verified_at
        assert "INSECURE" in listed[k].file_name


def test_params_fetch_streams_progress_and_get_streams_the_verified_file(stack: Stack) -> None:
    import hashlib

    with channel(stack, "params") as ch:
        stub = params_pb2_grpc.ParamsStub(ch)
        progress = list(stub.Fetch(params_pb2.FetchRequest(k=10), timeout=120))
        assert progress[-1].phase == "done" and progress[-1].bytes_done == progress[-1].bytes_total > 0
        chunks = list(stub.Get(params_pb2.GetRequest(k=10), timeout=120))
    data = b"".join(c.data for c in chunks)
    assert [c.offset for c in chunks] == sorted(c.offset for c in chunks)
    assert len(data) == chunks[0].total_size
    # The receiving side checks the hash again, as a prover would.
    assert hashlib.sha256(data).hexdigest() == chunks[0].sha256
    assert data[:4] == b"ptau"


def test_params_get_unknown_k_is_not_found(stack: Stack) -> None:
    with channel(stack, "params") as ch:
        with pytest.raises(grpc.RpcError) as err:
            list(params_pb2_grpc.ParamsStub(ch).Get(params_pb2.GetRequest(k=23), timeout=30))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


def test_fetch_params_rest_answers_success(stack: Stack) -> None:
    import httpx

    reply = httpx.get(f"{stack.url}/fetch-params/10", timeout=60)
    assert reply.status_code == 200 and reply.text == "success"
    assert reply.headers["content-type"].startswith("text/plain")
