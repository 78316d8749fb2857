"""Every public REST route through the real Envoy into the real services (docs/architecture.md §2)."""

from __future__ import annotations

import datetime as dt
import json
import re

import httpx
import pytest

from tests.support.stack import Stack

pytestmark = pytest.mark.e2e

ERROR_KEYS = {"error", "message", "details", "request_id"}
UUID = re.compile(r"^[0-9a-f-]{36}$")


def assert_error(reply: httpx.Response, status: int, error: str) -> dict:
    assert reply.status_code == status, reply.text
    assert reply.headers["content-type"].startswith("application/json")
    body = reply.json()
    assert ERROR_KEYS <= set(body), body
    assert body["error"] == error
    assert isinstance(body["message"], str) and body["message"]
    assert not body["message"].lstrip().startswith("{"), "message must not be a double-encoded JSON string"
    assert body["request_id"] == reply.headers["x-request-id"]
    return body


@pytest.mark.parametrize("path", ["/", "/health"])
def test_health_is_healthy_json(http: httpx.Client, path: str) -> None:
    reply = http.get(path)
    assert reply.status_code == 200
    assert reply.headers["content-type"] == "application/json"
    body = reply.json()
    assert body["status"] == "healthy"
    stamp = dt.datetime.fromisoformat(body["timestamp"].replace("Z", "+00:00"))
    assert abs((dt.datetime.now(dt.UTC) - stamp).total_seconds()) < 60
    assert UUID.match(reply.headers["x-request-id"])
    assert "grpc-status" not in reply.headers


def test_ready_reports_the_live_pool(http: httpx.Client) -> None:
    reply = http.get("/ready")
    assert reply.status_code == 200
    body = reply.json()
    assert body["status"] == "ready"
    assert body["total_workers"] >= 1
    assert body["queue_size"] == 0
    assert 0 <= body["active_workers"] <= body["total_workers"]


def test_version_names_the_build(http: httpx.Client) -> None:
    body = http.get("/version").json()
    assert body["name"] == "teeprover"
    assert re.match(r"^\d+\.\d+\.\d+", body["version"])
    assert re.match(r"^([0-9a-f]{40}|unknown)$", body["git_commit"])
    assert body["python_version"].startswith("3.")
    assert body["auth_disabled"] is False
    assert body["build_date"]


def test_proof_versions_is_a_json_array(http: httpx.Client) -> None:
    reply = http.get("/proof-versions")
    assert reply.status_code == 200
    assert reply.headers["content-type"] == "application/json"
    assert reply.content == b'["V1"]'


def test_unknown_path_is_404_json(http: httpx.Client) -> None:
    assert_error(http.get("/no/such/route"), 404, "NotFound")


def test_wrong_method_is_405_json_with_allow(http: httpx.Client) -> None:
    assert assert_error(http.get("/prove"), 405, "MethodNotAllowed")["message"] == "/prove takes only POST"


def test_unknown_query_parameter_is_400_json(http: httpx.Client) -> None:
    assert_error(http.get("/health", params={"debug": "1"}), 400, "BadRequest")


def test_raw_grpc_is_not_exposed_publicly(stack: Stack) -> None:
    # A real gRPC client aimed at the public port must not reach the services behind it.
    import grpc

    from teeprover.v1 import prover_pb2, prover_pb2_grpc

    with grpc.insecure_channel(f"127.0.0.1:{stack.ports['port']}") as ch:
        with pytest.raises(grpc.RpcError) as err:
            prover_pb2_grpc.ProverStub(ch).Health(prover_pb2.HealthRequest(), timeout=5)
    assert err.value.code() != grpc.StatusCode.OK


def test_client_request_id_is_replaced_and_echoed(http: httpx.Client) -> None:
    reply = http.get("/health", headers={"x-request-id": "spoofed"})
    assert reply.headers["x-request-id"] != "spoofed"
    assert UUID.match(reply.headers["x-request-id"])


def test_request_id_reaches_the_service_logs(http: httpx.Client, stack: Stack) -> None:
    reply = http.post("/k", content=b"{}", headers={"content-type": "application/json"})
    rid = reply.headers["x-request-id"]
    assert_error(reply, 401, "Unauthorized")
    deadline = 50
    while deadline and rid not in stack.log_text():
        import time

        time.sleep(0.1)
        deadline -= 1
    lines = [json.loads(line) for line in stack.lines if rid in line and line.startswith("{")]
    assert any(entry.get("service") == "prover" and entry.get("request_id") == rid for entry in lines)


@pytest.mark.parametrize("path", ["/check", "/prove", "/prove-tx", "/k"])
def test_protected_routes_need_a_key(http: httpx.Client, path: str) -> None:
    body = assert_error(http.post(path, content=b"\xa0", headers={"content-type": "application/cbor"}),
                        401, "Unauthorized")
    assert "key" in body["message"].lower()


def test_wrong_key_is_401_and_never_logged(http: httpx.Client, stack: Stack) -> None:
    wrong = "tpk_" + "A" * 43
    reply = http.post("/k", content=b"{}", headers={"content-type": "application/json", "x-api-key": wrong})
    assert_error(reply, 401, "Unauthorized")
    assert wrong not in stack.log_text()
    # The development key is printed once in the banner, never in a log line.
    assert stack.api_key is not None
    assert not [line for line in stack.lines if line.startswith("{") and stack.api_key in line]
    failures = [line for line in stack.lines if "authentication failed" in line]
    assert failures and all('"route"' in line and '"request_id"' in line for line in failures)


def test_wrong_content_type_is_400(http: httpx.Client, stack: Stack) -> None:
    reply = http.post("/prove", content=b"abc", headers={"x-api-key": stack.api_key or "",
                                                         "content-type": "application/x-www-form-urlencoded"})
    body = assert_error(reply, 400, "BadRequest")
    assert "content type" in body["message"]


def test_body_over_the_python_limit_is_413(http: httpx.Client, stack: Stack) -> None:
    # The stack runs with a 1 MiB limit; Envoy allows a small margin, Python enforces the exact byte.
    reply = http.post("/prove", content=b"\x00" * (1048576 + 1),
                      headers={"x-api-key": stack.api_key or "", "content-type": "application/cbor"})
    body = assert_error(reply, 413, "PayloadTooLarge")
    assert body["details"]["limit"] == 1048576


def test_body_far_over_the_limit_is_413_from_envoy(http: httpx.Client, stack: Stack) -> None:
    reply = http.post("/prove", content=b"\x00" * (2 * 1048576),
                      headers={"x-api-key": stack.api_key or "", "content-type": "application/cbor"})
    assert_error(reply, 413, "PayloadTooLarge")


def test_attestation_without_nonce(http: httpx.Client) -> None:
    body = http.get("/attestation").json()
    assert set(body) == {"platform", "format", "nonce", "attestation", "metadata", "error"}
    assert body["platform"] == "simulated"
    assert body["error"] is None
    assert body["attestation"]


def test_attestation_echoes_the_nonce(http: httpx.Client) -> None:
    nonce = "ab" * 64
    body = http.get("/attestation", params={"nonce": nonce}).json()
    assert body["nonce"] == nonce


@pytest.mark.parametrize("nonce", ["xyz", "abc", "ab" * 65])
def test_attestation_bad_nonce_is_400(http: httpx.Client, nonce: str) -> None:
    assert_error(http.get("/attestation", params={"nonce": nonce}), 400, "BadRequest")


@pytest.mark.parametrize("k", ["abc", "9", "25", "-1", "1e1"])
def test_fetch_params_rejects_bad_k(http: httpx.Client, k: str) -> None:
    assert_error(http.get(f"/fetch-params/{k}"), 400, "BadRequest")
