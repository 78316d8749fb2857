"""The wallet's client SDK (teeprover/client.py) against a real HTTP server on loopback.

The server is a ThreadingHTTPServer whose ``/attestation`` answers with the attestor's own document
(``evidence.collect`` with a simulated signer) and whose ``/prove`` opens the sealed body with the
matching HPKE private key, so the wallet's checks run against real evidence and real ciphertext.
Each test of a rejection changes one thing a hostile or broken server could change.  ``prove_checked`` runs
against real keys of the arithmetic fixture and a real proof, answered (or tampered with) by that server.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from teeprover import hpke
from teeprover.attestation.evidence import collect
from teeprover.attestation.evidence.simulated import SimulatedProvider
from teeprover.attestation.simulated import SimulatedSigner
from teeprover.client import (
    AttestationRejected,
    Client,
    ConnectionFailed,
    NoVerifyingKey,
    ProofRejected,
    RemoteError,
)
from teeprover.errors import InvalidInput
from teeprover.zkir import ProofPreimage, ProveRequest, ProvingKeyMaterial, load_preimage
from tests.support.loopback_http import LoopbackHttp, send

KEYS = hpke.generate()
SIGNER = SimulatedSigner()
Route = Callable[["_Handler", bytes], tuple[int, str, bytes]]


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:  # keep pytest's output clean
        pass

    def _answer(self, method: str) -> None:
        routes: dict[str, Route] = self.server.owner  # type: ignore[attr-defined]
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        with self.server.http.answering() as log:  # type: ignore[attr-defined]
            path = urlsplit(self.path).path
            log({"method": method, "path": path, "query": parse_qs(urlsplit(self.path).query),
                 "headers": dict(self.headers), "body": body})
            route = routes.get(f"{method} {path}") or routes.get(f"{method} *")
            if route is None:
                status, ctype, data = 404, "application/json", b'{"error": "NotFound", "message": "no route"}'
            else:
                status, ctype, data = route(self, body)
            if status == 0:  # drop the connection without a reply
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            send(self, status, ctype, data)

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self._answer("GET")

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        self._answer("POST")


@pytest.fixture
def server() -> Iterator[tuple[LoopbackHttp, dict[str, Route]]]:
    routes: dict[str, Route] = {}
    with LoopbackHttp(_Handler, "client-test", owner=routes) as srv:
        yield srv, routes


def _json(obj: Any, status: int = 200) -> tuple[int, str, bytes]:
    return status, "application/json", json.dumps(obj).encode()


def _attestation(handler: _Handler, body: bytes = b"", *, nonce: bytes | None = None,
                 hpke_key: bytes | None = KEYS.public_bytes, **metadata_changes: Any) -> tuple[int, str, bytes]:
    """The attestor's answer for the nonce the client sent (or ``nonce``), with ``metadata`` edits."""
    query = parse_qs(urlsplit(handler.path).query)
    sent = bytes.fromhex(query["nonce"][0]) if "nonce" in query else None
    doc = collect("simulated", nonce if nonce is not None else sent, None, hpke_key, dt.datetime.now(dt.UTC),
                  provider=SimulatedProvider(SIGNER))
    doc["metadata"].update(metadata_changes)
    return _json(doc)


def _request() -> ProveRequest:
    return ProveRequest(ProofPreimage(inputs=(1, 2), private_transcript=(3,), public_transcript_inputs=(),
                                      public_transcript_outputs=(), binding_input=5, communications_commitment=(6, 7),
                                      key_location="builtin/demo/range"))


def test_attested_keys_verify_the_document_and_sealed_prove_reaches_the_attested_key(server) -> None:
    srv, routes = server
    routes["GET /attestation"] = _attestation
    opened: list[bytes] = []

    def prove(handler: _Handler, body: bytes) -> tuple[int, str, bytes]:
        opened.append(hpke.open_sealed(KEYS, body) if hpke.is_sealed(body) else b"plain")
        return 200, "application/cbor", b"proof bytes"

    routes["POST /prove"] = prove
    request = _request()
    with Client(srv.url + "/", "key-1") as client:
        keys = client.attested_keys(allow_simulated=True)
        assert keys.platform == "simulated" and keys.hpke_public_key == KEYS.public_bytes and keys.result.ok
        assert client.prove(request, seal_to=keys) == b"proof bytes"
        assert client.prove(request) == b"proof bytes"  # unsealed: the plain CBOR body
    assert opened == [request.to_cbor(), b"plain"]
    first, sealed, plain = srv.requests()
    assert len(first["query"]["nonce"][0]) == 64  # 32 fresh random bytes, hex
    assert first["headers"]["x-api-key"] == "key-1"
    assert hpke.is_sealed(sealed["body"]) and plain["body"] == request.to_cbor()
    assert plain["headers"]["content-type"] == "application/cbor"


def test_simulated_evidence_is_refused_unless_allowed(server) -> None:
    srv, routes = server
    routes["GET /attestation"] = _attestation
    with Client(srv.url) as client, pytest.raises(AttestationRejected, match="at step policy: simulated evidence"):
        client.attested_keys()


@pytest.mark.parametrize(("tamper", "message"), [
    # A man in the middle swaps in his own HPKE key: the signed report data no longer matches.
    (lambda h, _: _attestation(h, binding={"hpke_public_key": hpke.generate().public_bytes.hex(),
                                        "tls_spki_sha256": None}), "attestation failed at step"),
    # A replayed document made for another nonce.
    (lambda h, _: _attestation(h, nonce=b"\x01" * 32), "attestation failed at step"),
    # The server claims another timestamp than the one it signed.
    (lambda h, _: _attestation(h, timestamp_ms=1), "attestation failed at step"),
    (lambda h, _: _attestation(h, binding={}), "does not carry an HPKE key binding"),
    (lambda h, _: _attestation(h, timestamp_ms="soon"), "does not carry an HPKE key binding"),
    (lambda h, _: _attestation(h, binding={"hpke_public_key": "zz"}), "does not carry an HPKE key binding"),
    (lambda h, _: _json({"platform": "sev-snp", "error": "no device", "metadata": {}, "attestation": ""}),
     "the server could not attest: no device"),
])
def test_attested_keys_refuse_a_document_that_does_not_bind_the_key(server, tamper, message: str) -> None:
    srv, routes = server
    routes["GET /attestation"] = tamper
    routes["POST /prove"] = lambda h, body: pytest.fail("nothing may be sent after a rejected attestation")
    with Client(srv.url) as client, pytest.raises(AttestationRejected, match=message):
        client.attested_keys(allow_simulated=True)


def test_error_replies_become_remote_errors_with_the_public_fields(server) -> None:
    srv, routes = server
    routes["POST /k"] = lambda h, body: _json({"error": "BadRequest", "message": "not a circuit",
                                               "request_id": "r-1", "details": {"at": 3}}, 400)
    routes["GET /health"] = lambda h, body: (502, "text/html", b"<html>bad gateway</html>" + b"x" * 500)
    with Client(srv.url) as client:
        with pytest.raises(RemoteError) as err:
            client.k(b"{}", json_body=True)
        assert err.value.status == 400
        assert err.value.message == "400 BadRequest: not a circuit (request r-1)"
        assert err.value.body["details"] == {"at": 3} and err.value.details == err.value.body
        with pytest.raises(RemoteError) as err:
            client.health()
        assert err.value.status == 502 and err.value.body["error"] == "HTTP"
        assert err.value.body["message"].startswith("<html>bad gateway</html>")
        assert len(err.value.body["message"]) == 300  # an HTML page is cut, not copied whole


def test_plain_routes_send_what_the_server_expects(server) -> None:
    srv, routes = server
    routes["POST /k"] = lambda h, body: (200, "text/plain", b"14")
    routes["GET *"] = lambda h, body: (200, "application/cbor", b"vk:" + h.path.encode())
    routes["GET /health"] = lambda h, body: _json({"status": "ok"})
    with Client(srv.url) as client:
        assert client.k(b"\xa0", json_body=False) == 14
        assert client.verifying_key("builtin/demo/range") == b"vk:/verifying-key/builtin/demo/range"
        assert client.verifying_key("a b", snarkjs_json=True) == b"vk:/verifying-key/a%20b"
        assert client.health() == {"status": "ok"}
    k_req, vk_req, vk_json_req, _ = srv.requests()
    assert k_req["headers"]["content-type"] == "application/cbor" and k_req["body"] == b"\xa0"
    assert vk_req["headers"]["accept"] == "application/cbor"
    assert vk_json_req["headers"]["accept"] == "application/json"


def test_a_refused_connection_is_connection_failed_with_the_os_reason() -> None:
    with socket.socket() as s:  # a port that was free a moment ago and has no listener now
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with Client(f"http://127.0.0.1:{port}") as client, pytest.raises(ConnectionFailed) as err:
        client.health()
    assert err.value.message == f"cannot connect to http://127.0.0.1:{port}: connection refused"


def test_a_connection_closed_without_a_reply_is_connection_failed(server) -> None:
    srv, routes = server
    routes["GET /health"] = lambda h, body: (0, "", b"")
    with Client(srv.url) as client, pytest.raises(ConnectionFailed,
                                                  match="closed the connection without a complete reply"):
        client.health()


def test_a_server_that_does_not_answer_in_time_is_connection_failed(server) -> None:
    srv, routes = server
    release = threading.Event()

    def stall(handler: _Handler, body: bytes) -> tuple[int, str, bytes]:
        release.wait(5)
        return _json({})

    routes["GET /health"] = stall
    try:
        with Client(srv.url, timeout=0.2) as client, pytest.raises(ConnectionFailed,
                                                                   match=r"no reply from .* within 0.2 s"):
            client.health()
    finally:
        release.set()


@pytest.mark.parametrize(("url", "message"), [
    ("http://name.invalid", "cannot connect to http://name.invalid: "),
    ("ftp://127.0.0.1", "request to ftp://127.0.0.1 failed: Request URL has an unsupported protocol"),
])
def test_unreachable_urls_are_connection_failed(url: str, message: str) -> None:
    with Client(url) as client, pytest.raises(ConnectionFailed, match=message):
        client.health()


def test_a_malformed_url_is_invalid_input_before_any_request() -> None:
    # Regression: httpx.InvalidURL escaped the constructor (a traceback in `teeprover attestation get --url`).
    with pytest.raises(InvalidInput, match=r"^http://\[::1 is not a usable URL: Invalid port"):
        Client("http://[::1")


# -- prove_checked: the proof is verified before it is returned ------------------------------------------------

CIRCUIT = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "zkir" / "arithmetic.zkir.json"
PREIMAGE = Path(__file__).resolve().parents[2] / "examples" / "arithmetic.preimage.json"


@dataclass(frozen=True)
class _Arithmetic:
    """Real keys of the arithmetic fixture (on a small dev .ptau) and a real proof made with them."""

    preimage: ProofPreimage
    material: ProvingKeyMaterial
    proof: bytes
    public: list[int]


@pytest.fixture(scope="module")
def arithmetic(tmp_path_factory: pytest.TempPathFactory) -> _Arithmetic:
    from teeprover.groth16 import encoding
    from teeprover.keysetup import setup_keys
    from teeprover.keystore import read_key_dir
    from teeprover.proving import Prover
    from teeprover.snarkjs import ptau

    root = tmp_path_factory.mktemp("keys")
    ptau.generate_dev_ptau(4, root / "dev4.ptau", random.Random(7))
    setup_keys(CIRCUIT.read_bytes(), root / "k", ptau=root / "dev4.ptau")
    files = read_key_dir(root / "k")
    preimage = load_preimage(PREIMAGE.read_bytes())
    material = ProvingKeyMaterial(prover_key=files.prover_key, verifier_key=files.verifier_key,
                                  ir_source=CIRCUIT.read_bytes())
    result = Prover(None).prove(ProveRequest(preimage, material))
    return _Arithmetic(preimage, material, encoding.encode_proof(result.proof), result.public_inputs)


def _cbor(data: bytes) -> Route:
    return lambda h, body: (200, "application/cbor", data)


def _tampered(proof_bytes: bytes) -> bytes:
    from teeprover.groth16 import encoding

    proof = encoding.decode_proof(proof_bytes)
    return encoding.encode_proof(type(proof)(a=proof.c, b=proof.b, c=proof.a))


def _calls(srv: LoopbackHttp) -> list[str]:
    return [f"{r['method']} {r['path']}" for r in srv.requests()]


def test_prove_checked_fetches_the_servers_key_first_and_returns_a_verified_proof(server, arithmetic) -> None:
    srv, routes = server
    routes["GET /verifying-key/builtin/demo/arithmetic"] = _cbor(arithmetic.material.verifier_key)
    routes["POST /prove"] = _cbor(arithmetic.proof)
    with Client(srv.url) as client:
        checked = client.prove_checked(ProveRequest(arithmetic.preimage), CIRCUIT.read_bytes())
    assert checked.key_source == "server" and checked.public_inputs == arithmetic.public == [1234567, 14]
    assert _calls(srv) == ["GET /verifying-key/builtin/demo/arithmetic", "POST /prove"]


def test_prove_checked_prefers_a_given_key_then_the_key_material(server, arithmetic) -> None:
    srv, routes = server
    routes["POST /prove"] = _cbor(arithmetic.proof)  # no verifying-key route: nothing may fetch it
    with Client(srv.url) as client:
        given = client.prove_checked(ProveRequest(arithmetic.preimage), CIRCUIT.read_bytes(),
                                     verifying_key=arithmetic.material.verifier_key)
        from_material = client.prove_checked(ProveRequest(arithmetic.preimage, arithmetic.material))
    assert (given.key_source, from_material.key_source) == ("given", "key material")
    assert _calls(srv) == ["POST /prove", "POST /prove"]


def test_prove_checked_refuses_a_proof_that_does_not_verify(server, arithmetic) -> None:
    srv, routes = server
    routes["GET /verifying-key/builtin/demo/arithmetic"] = _cbor(arithmetic.material.verifier_key)
    routes["POST /prove"] = _cbor(_tampered(arithmetic.proof))
    with Client(srv.url) as client, pytest.raises(ProofRejected) as err:
        client.prove_checked(ProveRequest(arithmetic.preimage), CIRCUIT.read_bytes())
    assert err.value.message == "the server's proof does not verify against the verifying key"
    assert err.value.details == {"key_source": "server"}
    # A valid proof of another statement (another binding input) is refused the same way.
    routes["POST /prove"] = _cbor(arithmetic.proof)
    with Client(srv.url) as client, pytest.raises(ProofRejected):
        client.prove_checked(ProveRequest(arithmetic.preimage, None, 99), CIRCUIT.read_bytes())


def test_prove_checked_without_any_verifying_key_sends_nothing(server, arithmetic) -> None:
    srv, routes = server
    routes["POST /prove"] = _cbor(arithmetic.proof)  # GET /verifying-key/... is the handler's 404
    with Client(srv.url) as client, pytest.raises(NoVerifyingKey) as err:
        client.prove_checked(ProveRequest(arithmetic.preimage), CIRCUIT.read_bytes())
    assert err.value.message == ("cannot check the server's proof: the server has no verifying key for "
                                 "'builtin/demo/arithmetic' (404 NotFound: no route (request None))")
    assert _calls(srv) == ["GET /verifying-key/builtin/demo/arithmetic"]
    with Client(srv.url) as client, pytest.raises(InvalidInput, match="needs the circuit"):
        client.prove_checked(ProveRequest(arithmetic.preimage))
