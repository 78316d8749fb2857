"""The public surface is safe by default, proven through the real Envoy.

docs/architecture.md §7 and the issue "Security edge".

One stack for the module, with the production body limit (10 MiB), a CORS
allow-list and the HTTPS listener on.  Rate-limit tests bind their client
sockets to distinct loopback addresses (127.0.0.N), so each test has its own
per-IP buckets and the order of tests does not matter.
"""

from __future__ import annotations

import re
import socket
import ssl
import subprocess
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest

from teeprover.commands.certs import make_dev_cert
from teeprover.v1 import prover_pb2, prover_pb2_grpc
from tests.support.stack import Stack, free_port, running_stack

pytestmark = pytest.mark.e2e

ALLOWED_ORIGIN = "https://wallet.example"
REFUSED_ORIGIN = "https://evil.example"
BURST = 20
RPS = 10


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, Path]]:
    tmp = tmp_path_factory.mktemp("edge")
    cert, key = make_dev_cert(tmp / "certs")
    with running_stack(tmp, TEEPROVER_TLS_PORT=str(free_port()), TEEPROVER_TLS_CERT=str(cert),
                       TEEPROVER_TLS_KEY=str(key), TEEPROVER_CORS_ORIGINS=ALLOWED_ORIGIN) as stack:
        yield stack, cert


@pytest.fixture(scope="module")
def stack(edge: tuple[Stack, Path]) -> Stack:
    return edge[0]


def client(stack: Stack, source: str) -> httpx.Client:
    """A client whose TCP connections come from ``source`` (a 127.0.0.N address): one per-IP bucket."""
    return httpx.Client(base_url=stack.url, timeout=30, transport=httpx.HTTPTransport(local_address=source))


def cheap_protected(c: httpx.Client, stack: Stack, path: str = "/k", **headers: str) -> httpx.Response:
    # A valid key and a tiny JSON body: the prover answers 400 at once; what matters is 429 or not.
    return c.post(path, content=b"{}", headers={"content-type": "application/json",
                                                "x-api-key": stack.api_key or "", **headers})


def assert_public_error(reply: httpx.Response, status: int, error: str) -> dict:
    assert reply.status_code == status, reply.text
    assert reply.headers["content-type"].startswith("application/json")
    body = reply.json()
    assert {"error", "message", "details", "request_id"} <= set(body), body
    assert body["error"] == error
    assert body["message"]
    assert body["request_id"] == reply.headers["x-request-id"]
    return body


def admin_stats(stack: Stack) -> dict[str, int]:
    text = httpx.get(f"{stack.admin}/stats", timeout=10).text
    out = {}
    for line in text.splitlines():
        name, _, value = line.partition(": ")
        if value.strip().isdigit():
            out[name] = int(value)
    return out


# --------------------------------------------------------------------------- per-IP rate limit


def test_burst_is_served_then_429_in_the_public_shape(stack: Stack) -> None:
    with client(stack, "127.0.0.5") as c:
        start = time.monotonic()
        codes = [cheap_protected(c, stack).status_code for _ in range(30)]
        elapsed = time.monotonic() - start
        last = cheap_protected(c, stack)
    assert 429 not in codes[:BURST], codes
    assert set(codes[:BURST]) == {400}, codes  # the request really reached the prover
    served = sum(code != 429 for code in codes)
    assert served <= BURST + int(elapsed * RPS) + 1, (served, elapsed)
    assert 429 in codes
    body = assert_public_error(last, 429, "TooManyRequests")
    assert "Retry-After" in body["message"]
    assert int(last.headers["retry-after"]) >= 1
    assert last.headers["x-ratelimit-limit"] == str(BURST)
    assert last.headers["x-ratelimit-remaining"] == "0"


def test_another_address_has_its_own_bucket(stack: Stack) -> None:
    with client(stack, "127.0.0.6") as noisy, client(stack, "127.0.0.7") as quiet:
        noisy_codes = [cheap_protected(noisy, stack).status_code for _ in range(30)]
        quiet_codes = [cheap_protected(quiet, stack).status_code for _ in range(5)]
    assert 429 in noisy_codes
    assert 429 not in quiet_codes


def test_rotating_x_forwarded_for_does_not_open_new_buckets(stack: Stack) -> None:
    with client(stack, "127.0.0.8") as c:
        codes = [cheap_protected(c, stack, **{"x-forwarded-for": f"203.0.113.{i}", "x-real-ip": f"198.51.100.{i}"}
                                 ).status_code for i in range(30)]
    assert 429 in codes, codes


def test_protected_routes_share_one_bucket_per_address(stack: Stack) -> None:
    with client(stack, "127.0.0.9") as c:
        codes = [cheap_protected(c, stack, path).status_code
                 for _ in range(8) for path in ("/k", "/check", "/prove", "/prove-tx")]
    assert 429 in codes, codes  # 32 requests over four routes: one burst of 20, not four


def test_many_other_clients_do_not_evict_a_spent_bucket(stack: Stack) -> None:
    """More distinct clients than Envoy's default bucket table (20) must not give a spent bucket back full."""
    others = [httpx.Client(base_url=stack.url, timeout=30, transport=httpx.HTTPTransport(local_address=f"127.0.1.{i}"))
              for i in range(1, 31)]
    try:
        with client(stack, "127.0.0.10") as spender:
            for other in others:  # warm the connections so the loop below is fast
                other.get("/health")
            for _ in range(BURST + 5):
                cheap_protected(spender, stack)
            for other in others:
                cheap_protected(other, stack)
            again = cheap_protected(spender, stack)
    finally:
        for other in others:
            other.close()
    remaining = int(again.headers.get("x-ratelimit-remaining", "0"))
    assert remaining < BURST // 2, (again.status_code, again.headers)


@pytest.mark.parametrize("path", ["/health", "/ready", "/version", "/proof-versions", "/attestation"])
def test_public_routes_are_not_rate_limited(stack: Stack, path: str) -> None:
    source = {"/health": "127.0.0.20", "/ready": "127.0.0.21", "/version": "127.0.0.22",
              "/proof-versions": "127.0.0.23", "/attestation": "127.0.0.24"}[path]
    with client(stack, source) as c:
        for _ in range(BURST + 5):  # spend the protected bucket of this address first
            cheap_protected(c, stack)
        codes = [c.get(path).status_code for _ in range(BURST + 10)]
    assert set(codes) == {200}, codes


def test_fetch_params_is_one_per_hour_per_address_per_k(stack: Stack) -> None:
    with client(stack, "127.0.0.30") as c, client(stack, "127.0.0.31") as other:
        first = c.get("/fetch-params/10")
        second = c.get("/fetch-params/10")
        with_query = c.get("/fetch-params/10?")
        other_k = c.get("/fetch-params/11")
        other_ip = other.get("/fetch-params/10")
        padded = c.get("/fetch-params/010")
        encoded = c.get("/fetch-params/%31%30")
    assert first.status_code != 429, first.text
    assert_public_error(second, 429, "TooManyRequests")
    assert second.headers["retry-after"] == "3600"
    assert with_query.status_code == 429
    assert other_k.status_code != 429, other_k.text
    assert other_ip.status_code != 429, other_ip.text
    # Other spellings of the same k cannot open a fresh bucket: Envoy refuses them outright.
    assert_public_error(padded, 400, "BadRequest")
    assert_public_error(encoded, 400, "BadRequest")


# --------------------------------------------------------------------------- body limit


def test_body_over_the_default_10_mib_limit_is_413_json(stack: Stack) -> None:
    with client(stack, "127.0.0.40") as c:
        reply = c.post("/prove", content=b"\x00" * (11 * 1000 * 1000),
                       headers={"content-type": "application/cbor", "x-api-key": stack.api_key or ""})
    assert_public_error(reply, 413, "PayloadTooLarge")


# --------------------------------------------------------------------------- CORS


def test_preflight_from_an_allowed_origin_is_answered_by_envoy(stack: Stack) -> None:
    with client(stack, "127.0.0.50") as c:
        reply = c.options("/prove", headers={"origin": ALLOWED_ORIGIN, "access-control-request-method": "POST",
                                             "access-control-request-headers": "content-type, x-api-key"})
    assert reply.status_code == 200, reply.text
    assert reply.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
    assert "POST" in reply.headers["access-control-allow-methods"]
    assert "x-api-key" in reply.headers["access-control-allow-headers"]
    assert "x-request-id" in reply.headers["access-control-expose-headers"]


def test_preflight_from_a_refused_origin_gets_no_allow_origin(stack: Stack) -> None:
    with client(stack, "127.0.0.51") as c:
        reply = c.options("/prove", headers={"origin": REFUSED_ORIGIN, "access-control-request-method": "POST"})
    assert "access-control-allow-origin" not in reply.headers
    assert_public_error(reply, 403, "Forbidden")


@pytest.mark.parametrize("key, status, error", [(None, 401, "Unauthorized"), ("valid", 400, "BadRequest")])
def test_errors_are_readable_by_an_allowed_origin_only(stack: Stack, key: str | None, status: int, error: str) -> None:
    headers = {"content-type": "application/json"}
    if key:
        headers["x-api-key"] = stack.api_key or ""
    with client(stack, "127.0.0.52") as c:
        allowed = c.post("/k", content=b"{}", headers={**headers, "origin": ALLOWED_ORIGIN})
        refused = c.post("/k", content=b"{}", headers={**headers, "origin": REFUSED_ORIGIN})
    assert_public_error(allowed, status, error)
    assert allowed.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
    assert "x-request-id" in allowed.headers["access-control-expose-headers"]
    assert_public_error(refused, status, error)
    assert "access-control-allow-origin" not in refused.headers


def test_envoys_own_429_is_readable_by_an_allowed_origin(stack: Stack) -> None:
    with client(stack, "127.0.0.53") as c:
        replies = [cheap_protected(c, stack, origin=ALLOWED_ORIGIN) for _ in range(30)]
    limited = [r for r in replies if r.status_code == 429]
    assert limited
    assert limited[-1].headers["access-control-allow-origin"] == ALLOWED_ORIGIN
    assert "retry-after" in limited[-1].headers["access-control-expose-headers"]


# --------------------------------------------------------------------------- TLS


def tls_port(stack: Stack) -> int:
    return int(stack.env["TEEPROVER_TLS_PORT"])


def handshake(stack: Stack, configure) -> ssl.SSLSocket:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    configure(ctx)
    sock = socket.create_connection(("127.0.0.1", tls_port(stack)), timeout=10)
    try:
        return ctx.wrap_socket(sock)
    except BaseException:
        sock.close()
        raise


def test_grpcio_negotiates_the_hybrid_post_quantum_group_and_raw_grpc_stays_outside(
        edge: tuple[Stack, Path]) -> None:
    stack, cert = edge
    stat = f"listener.127.0.0.1_{tls_port(stack)}.ssl.curves.X25519MLKEM768"
    before = admin_stats(stack)
    creds = grpc.ssl_channel_credentials(cert.read_bytes())
    with grpc.secure_channel(f"127.0.0.1:{tls_port(stack)}", creds) as ch:
        with pytest.raises(grpc.RpcError) as err:
            prover_pb2_grpc.ProverStub(ch).Health(prover_pb2.HealthRequest(), timeout=10)
    assert err.value.code() != grpc.StatusCode.OK
    after = admin_stats(stack)
    assert after.get(stat, 0) == before.get(stat, 0) + 1, {k: v for k, v in after.items() if ".ssl." in k}
    # The catch-all 404 answered: nothing went upstream to the prover.
    assert after.get("cluster.prover.upstream_rq_total", 0) == before.get("cluster.prover.upstream_rq_total", 0)


def test_https_rest_works_and_prefers_tls_1_3_with_h2_and_http11_alpn(edge: tuple[Stack, Path]) -> None:
    stack, cert = edge
    trust = ssl.create_default_context(cafile=str(cert))
    with httpx.Client(base_url=f"https://127.0.0.1:{tls_port(stack)}", verify=trust, timeout=30) as c:
        assert c.get("/health").json()["status"] == "healthy"
    for alpn in ("h2", "http/1.1"):
        with handshake(stack, lambda ctx, a=alpn: ctx.set_alpn_protocols([a])) as tls:
            assert tls.version() == "TLSv1.3"
            assert tls.selected_alpn_protocol() == alpn


def test_tls_1_1_is_refused(stack: Stack) -> None:
    def tls11(ctx: ssl.SSLContext) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            ctx.minimum_version = ssl.TLSVersion.TLSv1_1
            ctx.maximum_version = ssl.TLSVersion.TLSv1_1
        ctx.set_ciphers("ALL:@SECLEVEL=0")

    try:
        with pytest.raises(ssl.SSLError):
            handshake(stack, tls11).close()
    except ssl.SSLError:  # this OpenSSL cannot even offer TLS 1.1: ask the openssl binary instead
        out = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{tls_port(stack)}", "-tls1_1"],
                             input="", capture_output=True, text=True, timeout=20)
        text = out.stdout + out.stderr
        assert out.returncode != 0 or "no peer certificate available" in text, text
        assert "Protocol  : TLSv1.1" not in text


def test_tls_1_2_uses_the_spec_cipher_order_and_refuses_others(stack: Stack) -> None:
    def offer(ciphers: str):
        def configure(ctx: ssl.SSLContext) -> None:
            ctx.maximum_version = ssl.TLSVersion.TLSv1_2
            ctx.set_ciphers(ciphers)
        return configure

    # The client prefers the weakest allowed suite; the server's order picks AES-256-GCM.
    with handshake(stack, offer("ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-CHACHA20-POLY1305:"
                                "ECDHE-ECDSA-AES256-GCM-SHA384")) as tls:
        assert tls.version() == "TLSv1.2"
        assert (tls.cipher() or ("",))[0] == "ECDHE-ECDSA-AES256-GCM-SHA384"
    with handshake(stack, offer("ECDHE-ECDSA-CHACHA20-POLY1305")) as tls:
        assert (tls.cipher() or ("",))[0] == "ECDHE-ECDSA-CHACHA20-POLY1305"
    for refused in ("ECDHE-ECDSA-AES128-SHA", "AES128-SHA", "ECDHE-ECDSA-AES256-SHA384"):
        with pytest.raises(ssl.SSLError):
            handshake(stack, offer(refused)).close()


# --------------------------------------------------------------------------- headers


def test_a_junk_binary_header_is_dropped_not_a_500(stack: Stack) -> None:
    with client(stack, "127.0.0.60") as c:
        reply = c.get("/health", headers={"x-junk-bin": "!!! not base64 !!!"})
    assert reply.status_code == 200, reply.text


def test_spoofed_forwarding_headers_do_not_change_the_request_id_rule(stack: Stack) -> None:
    with client(stack, "127.0.0.61") as c:
        reply = c.get("/health", headers={"x-forwarded-for": "203.0.113.9", "x-request-id": "mine"})
    assert reply.status_code == 200
    assert re.match(r"^[0-9a-f-]{36}$", reply.headers["x-request-id"])
