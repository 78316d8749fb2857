"""Loopback fakes of Microsoft Azure Attestation (``/attest/SevSnpVm``) and the Azure IMDS THIM endpoint.

``FakeMaa`` checks a request the way MAA does before it issues anything: the exact body shape
(``report`` = base64url(JSON{SnpReport, VcekCertChain}), ``runtimeData`` {data, dataType: JSON},
optional ``nonce``), unpadded base64url, a 1184-byte SNP report whose report_data is SHA-256 of
the runtime data, the VCEK chain IMDS handed out, and runtime data that is a JSON object with
``user-data``.  It then issues an RS256 JWT with the claims of a real SevSnpVm token
(MicrosoftDocs ``attestation-token-examples.md``: flat ``x-ms-sevsnpvm-*`` claims,
``x-ms-runtime`` = the runtime data, ``nonce``).  ``nested=True`` puts the TEE claims under
``x-ms-isolation-tee`` instead, as ``/attest/AzureGuest`` tokens do.  A refused request gets
HTTP 400 with MAA's error shape, and the reason is kept in ``refusals``.

``mode`` makes a server misbehave: ``"ok"``, ``"status400"``, ``"status500"``, ``"garbage"`` (not
JSON), ``"no-token"``, ``"bad-token"`` (a token that is not a JWS), ``"oversized"`` (a body beyond
any sane limit); ``delay`` (seconds) stalls every answer.  Servers are
``tests.support.loopback_http.LoopbackHttp`` servers on 127.0.0.1:0; use them as context managers.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from http.server import BaseHTTPRequestHandler
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from teeprover.attestation import Roots
from teeprover.attestation.snp import POLICY_DEBUG, REPORT_SIZE, parse_report
from tests.support.loopback_http import LoopbackHttp

B64URL = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
FAKE_VCEK = "-----BEGIN CERTIFICATE-----\nRkFLRSBWQ0VL\n-----END CERTIFICATE-----\n"
FAKE_CHAIN = (
    "-----BEGIN CERTIFICATE-----\nRkFLRSBBU0s=\n-----END CERTIFICATE-----\n"
    "-----BEGIN CERTIFICATE-----\nRkFLRSBBUks=\n-----END CERTIFICATE-----\n"
)


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: Any, what: str) -> bytes:
    if not isinstance(text, str) or not text or set(text) - B64URL:
        raise ValueError(f"{what} is not unpadded base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class _Server:
    """One loopback HTTP server in a thread; subclasses implement ``handle``."""

    mode = "ok"
    delay = 0.0

    def __init__(self) -> None:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                owner._dispatch(self, "GET")

            def do_POST(self) -> None:  # noqa: N802
                owner._dispatch(self, "POST")

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet tests
                pass

        self._http = LoopbackHttp(Handler, type(self).__name__)

    @property
    def url(self) -> str:
        return self._http.url

    @property
    def requests(self) -> list[dict[str, Any]]:
        """Finished requests: method, path, query, headers, body."""
        return self._http.requests()

    def __enter__(self) -> Self:
        self._http.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._http.stop()

    def _dispatch(self, request: BaseHTTPRequestHandler, method: str) -> None:
        length = int(request.headers.get("Content-Length") or 0)
        body = request.rfile.read(min(length, 1 << 20)) if length else b""
        split = urlsplit(request.path)
        path, query = split.path, parse_qs(split.query)
        with self._http.answering() as log:
            log({"method": method, "path": path, "query": query, "headers": dict(request.headers), "body": body})
            self._http.stopping.wait(self.delay)  # cut short when the server stops
            self._answer(request, method, path, query, body)

    def _answer(self, request: BaseHTTPRequestHandler, method: str, path: str, query: dict[str, list[str]],
                body: bytes) -> None:
        if self.mode == "status400":
            status, payload = 400, json.dumps({"error": {"code": "InvalidParameter", "message": "bad"}}).encode()
        elif self.mode == "status500":
            status, payload = 500, b"internal"
        elif self.mode == "garbage":
            status, payload = 200, b"\x00not json at all"
        elif self.mode == "no-token":
            status, payload = 200, b'{"tokn": 1}'
        elif self.mode == "bad-token":
            status, payload = 200, b'{"token": "not a token"}'
        elif self.mode == "oversized":
            status, payload = 200, b'{"token": "' + b"A" * (2 << 20) + b'"}'
        else:
            status, payload = self.handle(method, path, query, request.headers, body)
        request.send_response(status)
        request.send_header("Content-Type", "application/json")
        request.send_header("Content-Length", str(len(payload)))
        request.end_headers()
        try:
            request.wfile.write(payload)
        except OSError:  # the client gave up on an oversized answer
            pass

    def handle(self, method: str, path: str, query: dict[str, list[str]], headers: Any,
               body: bytes) -> tuple[int, bytes]:
        raise NotImplementedError


class FakeImds(_Server):
    """``GET /metadata/THIM/amd/certification`` with ``Metadata: true`` -> ``{vcekCert, certificateChain, ...}``."""

    vcek = FAKE_VCEK
    chain = FAKE_CHAIN

    def handle(self, method: str, path: str, query: dict[str, list[str]], headers: Any,
               body: bytes) -> tuple[int, bytes]:
        if method != "GET" or path != "/metadata/THIM/amd/certification":
            return 404, b'{"error": "not found"}'
        if headers.get("Metadata") != "true":
            return 400, b'{"error": "Bad request. Required metadata header not specified"}'
        return 200, json.dumps({"vcekCert": self.vcek, "tcbm": "DB18000000000004",
                                "certificateChain": self.chain}).encode()


class FakeMaa(_Server):
    """``POST /attest/SevSnpVm?api-version=2022-08-01`` -> ``{"token": JWT}`` signed by ``self.key``."""

    def __init__(self, *, issuer: str | None = None, nested: bool = False, key: rsa.RSAPrivateKey | None = None,
                 expected_chain: str = FAKE_VCEK + FAKE_CHAIN, lifetime: int = 8 * 3600) -> None:
        super().__init__()
        self.key = key or rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = b64url_encode(hashlib.sha256(str(self.key.public_key().public_numbers().n).encode()).digest())
        self._issuer = issuer
        self.nested = nested
        self.expected_chain = expected_chain
        self.lifetime = lifetime
        self.refusals: list[str] = []

    @property
    def issuer(self) -> str:
        return self._issuer or self.url

    def jwks(self) -> dict[str, Any]:
        numbers = self.key.public_key().public_numbers()
        n = numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big")
        return {"keys": [{"kty": "RSA", "kid": self.kid, "n": b64url_encode(n), "e": "AQAB"}]}

    def roots(self) -> Roots:
        return Roots(jwks={self.issuer: self.jwks()})

    # ------------------------------------------------------------------ request checks and token

    def handle(self, method: str, path: str, query: dict[str, list[str]], headers: Any,
               body: bytes) -> tuple[int, bytes]:
        if method != "POST" or path != "/attest/SevSnpVm":
            return 404, b'{"error": {"code": "NotFound", "message": "no such route"}}'
        try:
            if query.get("api-version") != ["2022-08-01"]:
                raise ValueError(f"api-version {query.get('api-version')}")
            if "application/json" not in headers.get("Content-Type", ""):
                raise ValueError("Content-Type is not JSON")
            snp, runtime, nonce = self._check(json.loads(body))
        except (ValueError, KeyError, TypeError) as exc:
            self.refusals.append(str(exc))
            return 400, json.dumps({"error": {"code": "InvalidParameter", "message": str(exc)}}).encode()
        return 200, json.dumps({"token": self.token(snp, runtime, nonce)}).encode()

    def _check(self, request: Any) -> tuple[bytes, dict[str, Any], str | None]:
        if not isinstance(request, dict) or not {"report", "runtimeData"} <= set(request) <= {
                "report", "runtimeData", "nonce"}:
            raise ValueError(f"request keys {sorted(request) if isinstance(request, dict) else request!r}")
        report = json.loads(b64url_decode(request["report"], "report"))
        if not isinstance(report, dict) or set(report) != {"SnpReport", "VcekCertChain"}:
            raise ValueError("report must be JSON {SnpReport, VcekCertChain}")
        snp = b64url_decode(report["SnpReport"], "SnpReport")
        chain = b64url_decode(report["VcekCertChain"], "VcekCertChain").decode()
        if len(snp) != REPORT_SIZE:
            raise ValueError(f"SnpReport is {len(snp)} bytes")
        if chain != self.expected_chain:
            raise ValueError("VcekCertChain is not the VCEK + chain of this platform")
        runtime_data = request["runtimeData"]
        if not isinstance(runtime_data, dict) or runtime_data.get("dataType") != "JSON" or set(runtime_data) != {
                "data", "dataType"}:
            raise ValueError("runtimeData must be {data, dataType: JSON}")
        raw = b64url_decode(runtime_data["data"], "runtimeData.data")
        if snp[0x50:0x90] != hashlib.sha256(raw).digest() + bytes(32):
            raise ValueError("report_data is not SHA-256 of the runtime data")
        runtime = json.loads(raw)
        if not isinstance(runtime, dict) or not isinstance(runtime.get("user-data"), str):
            raise ValueError("runtime data is not a JSON object with user-data")
        bytes.fromhex(runtime["user-data"])
        nonce = request.get("nonce")
        if nonce is not None and not isinstance(nonce, str):
            raise ValueError("nonce must be a string")
        return snp, runtime, nonce

    def token(self, snp: bytes, runtime: dict[str, Any], nonce: str | None) -> str:
        r = parse_report(snp)
        tcb = r["reported_tcb"].to_bytes(8, "little")
        tee: dict[str, Any] = {
            "x-ms-attestation-type": "sevsnpvm",
            "x-ms-compliance-status": "azure-compliant-cvm",
            "x-ms-runtime": runtime,
            "x-ms-sevsnpvm-authorkeydigest": r["author_key_digest"].hex(),
            "x-ms-sevsnpvm-bootloader-svn": tcb[0],
            "x-ms-sevsnpvm-familyId": r["family_id"].hex(),
            "x-ms-sevsnpvm-guestsvn": r["guest_svn"],
            "x-ms-sevsnpvm-hostdata": r["host_data"].hex(),
            "x-ms-sevsnpvm-idkeydigest": r["id_key_digest"].hex(),
            "x-ms-sevsnpvm-imageId": r["image_id"].hex(),
            "x-ms-sevsnpvm-is-debuggable": bool(r["policy"] & POLICY_DEBUG),
            "x-ms-sevsnpvm-launchmeasurement": r["measurement"].hex(),
            "x-ms-sevsnpvm-microcode-svn": tcb[7],
            "x-ms-sevsnpvm-migration-allowed": bool(r["policy"] & (1 << 18)),
            "x-ms-sevsnpvm-reportdata": r["report_data"].hex(),
            "x-ms-sevsnpvm-reportid": r["report_id"].hex(),
            "x-ms-sevsnpvm-smt-allowed": bool(r["policy"] & (1 << 16)),
            "x-ms-sevsnpvm-snpfw-svn": tcb[6],
            "x-ms-sevsnpvm-tee-svn": tcb[1],
            "x-ms-sevsnpvm-vmpl": r["vmpl"],
        }
        now = int(time.time())
        claims: dict[str, Any] = {"exp": now + self.lifetime, "iat": now, "iss": self.issuer,
                                  "jti": secrets.token_hex(32), "nbf": now,
                                  "x-ms-policy-hash": b64url_encode(hashlib.sha256(b"default policy").digest()),
                                  "x-ms-ver": "1.0"}
        if nonce is not None:
            claims["nonce"] = nonce
        if self.nested:
            claims.update({"x-ms-attestation-type": "azurevm", "x-ms-isolation-tee": tee})
        else:
            claims.update(tee)
        return self.sign(claims)

    def sign(self, claims: dict[str, Any], *, key: rsa.RSAPrivateKey | None = None) -> str:
        header = {"alg": "RS256", "jku": f"{self.issuer}/certs", "kid": self.kid, "typ": "JWT"}
        signing_input = f"{b64url_encode(json.dumps(header).encode())}.{b64url_encode(json.dumps(claims).encode())}"
        signature = (key or self.key).sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{b64url_encode(signature)}"
