"""One error shape and wording whoever answers, Envoy or Python (through the real gateway).

The session stack runs with a 1 MiB body limit (tests/conftest.py).
"""

from __future__ import annotations

import httpx
import pytest

from tests.support.stack import Stack

pytestmark = pytest.mark.e2e

KEYS_IN_ORDER = ["error", "message", "details", "request_id"]
LIMIT = 1048576


def _error(reply: httpx.Response, status: int, error: str) -> dict:
    assert reply.status_code == status, reply.text
    assert reply.headers["content-type"].startswith("application/json")
    assert "x-teeprover-local-reply" not in reply.headers
    body = reply.json()
    assert list(body) == KEYS_IN_ORDER, reply.text
    assert body["error"] == error
    assert body["request_id"] == reply.headers["x-request-id"]
    return dict(body)


def _prove(http: httpx.Client, stack: Stack, body: bytes) -> httpx.Response:
    return http.post("/prove", content=body, headers={"x-api-key": stack.api_key or "",
                                                       "content-type": "application/cbor"})


def test_413_states_the_limit_from_envoy_and_from_python(http: httpx.Client, stack: Stack) -> None:
    envoy = _error(_prove(http, stack, b"\x00" * (2 * LIMIT)), 413, "PayloadTooLarge")
    python = _error(_prove(http, stack, b"\x00" * (LIMIT + 1)), 413, "PayloadTooLarge")
    for body in (envoy, python):
        assert str(LIMIT) in body["message"], body
        assert body["details"]["limit"] == LIMIT


@pytest.mark.parametrize(("path", "route", "takes"), [
    ("/attestation?nonce=00&foo=1", "GET /attestation", "only nonce"),
    ("/health?foo=1", "GET /health", "no query parameters"),
])
def test_unknown_query_parameter_names_the_parameter_and_the_route(http: httpx.Client, path: str, route: str,
                                                                   takes: str) -> None:
    body = _error(http.get(path), 400, "BadRequest")
    assert body["message"] == f'unknown query parameter "foo" on {route} (it takes {takes})'
    assert "google" not in body["message"] and "HttpBody" not in body["message"]


@pytest.mark.parametrize(("method", "path", "allow"), [
    ("GET", "/prove", "POST"),
    ("PUT", "/k", "POST"),
    ("POST", "/health", "GET"),
    ("DELETE", "/attestation", "GET"),
    ("POST", "/fetch-params/12", "GET"),
])
def test_wrong_method_on_a_known_path_is_405_with_allow(http: httpx.Client, method: str, path: str,
                                                         allow: str) -> None:
    reply = http.request(method, path)
    body = _error(reply, 405, "MethodNotAllowed")
    assert reply.headers["allow"] == allow
    assert allow in body["message"]


def test_unknown_path_is_still_404(http: httpx.Client) -> None:
    _error(http.get("/no/such/route"), 404, "NotFound")
    _error(http.post("/no/such/route"), 404, "NotFound")


def test_key_order_is_the_same_from_envoy_and_from_python(http: httpx.Client) -> None:
    # Envoy: 404 route, 400 from a route's variable check; Python: 400 bad nonce, 401 no key.
    _error(http.get("/no/such/route"), 404, "NotFound")
    _error(http.get("/fetch-params/99"), 400, "BadRequest")
    _error(http.get("/attestation", params={"nonce": "zz"}), 400, "BadRequest")
    _error(http.post("/k", content=b"{}", headers={"content-type": "application/json"}), 401, "Unauthorized")
