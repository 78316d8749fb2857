"""A real Intel PCS / PCCS (API v4) on loopback, serving one platform's DCAP collateral.

``ThreadingHTTPServer`` in a thread.  The collateral comes from a ``QuoteCollateralV3`` JSON
(e.g. the real sample ``dcapqvl_tdx_quote_v4_collateral.json``) and is served the way Intel's
PCS serves it:

    /sgx/certification/v4/pckcrl?ca=<ca>&encoding=der   DER CRL     SGX-PCK-CRL-Issuer-Chain
    /tdx/certification/v4/tcb?fmspc=<FMSPC>             {"tcbInfo": ..., "signature": hex}
                                                                    TCB-Info-Issuer-Chain
    /tdx/certification/v4/qe/identity                   {"enclaveIdentity": ..., "signature": hex}
                                                                    SGX-Enclave-Identity-Issuer-Chain
    /sgx/certification/v4/rootcacrl                     hex of the DER CRL (what Intel's PCCS serves)
    /IntelSGXRootCA.der                                 the DER CRL (Intel's CRL distribution point)

Issuer chains are URL-encoded PEM, as Intel sends them.  Faults are switched per path
(prefix match on the path without the query): a status, garbage, an oversized body, a delay.
Every request is logged, so tests can count them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from tests.support.loopback_http import LoopbackHttp

PCK_CRL = "/sgx/certification/v4/pckcrl"
TCB = "/tdx/certification/v4/tcb"
QE_IDENTITY = "/tdx/certification/v4/qe/identity"
ROOT_CA_CRL = "/sgx/certification/v4/rootcacrl"
ROOT_CA_CRL_DER = "/IntelSGXRootCA.der"


@dataclass
class Fault:
    status: int | None = None  # answer with this status (and an Intel-style Error-Code header)
    body: bytes | None = None  # answer 200 with these bytes instead of the real ones
    delay: float = 0.0  # seconds to wait before answering (cut short when the server stops)
    keep_headers: bool = True  # send the issuer-chain header along with a replaced body


@dataclass
class _Shared:
    collateral: dict[str, str]
    faults: dict[str, Fault] = field(default_factory=dict)


def _raw_json_member(key: str, raw: str, signature_hex: str) -> bytes:
    # tcbInfo / enclaveIdentity are spliced in as the exact text Intel signed, never re-serialised.
    return ("{" + json.dumps(key) + ":" + raw + ',"signature":' + json.dumps(signature_hex) + "}").encode()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Any

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - keep test output quiet
        pass

    def do_GET(self) -> None:  # noqa: N802
        with self.server.http.answering() as log:
            try:
                self._answer(self.server.owner)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True
            finally:
                log(self.path)

    def _answer(self, shared: _Shared) -> None:
        c = shared.collateral
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        headers: dict[str, str] = {}
        if url.path == PCK_CRL and query.get("encoding") == "der" and query.get("ca") in ("processor", "platform"):
            body, ctype = bytes.fromhex(c["pck_crl"]), "application/pkix-crl"
            headers["SGX-PCK-CRL-Issuer-Chain"] = quote(c["pck_crl_issuer_chain"], safe="")
        elif url.path == TCB and query.get("fmspc", "").upper() == json.loads(c["tcb_info"])["fmspc"].upper():
            body, ctype = _raw_json_member("tcbInfo", c["tcb_info"], c["tcb_info_signature"]), "application/json"
            headers["TCB-Info-Issuer-Chain"] = quote(c["tcb_info_issuer_chain"], safe="")
        elif url.path == QE_IDENTITY:
            body = _raw_json_member("enclaveIdentity", c["qe_identity"], c["qe_identity_signature"])
            ctype = "application/json"
            headers["SGX-Enclave-Identity-Issuer-Chain"] = quote(c["qe_identity_issuer_chain"], safe="")
        elif url.path == ROOT_CA_CRL:
            body, ctype = c["root_ca_crl"].encode(), "application/x-pem-file"
        elif url.path == ROOT_CA_CRL_DER:
            body, ctype = bytes.fromhex(c["root_ca_crl"]), "application/pkix-crl"
        else:
            self._send(404, b"", "text/plain", {"Error-Code": "NotFound"})
            return
        fault = next((f for p, f in shared.faults.items() if url.path.startswith(p)), None)
        if fault is not None:
            if fault.delay and self.server.http.stopping.wait(fault.delay):
                return
            if fault.status is not None:
                self._send(fault.status, b"", "text/plain", {"Error-Code": "FakeFault"})
                return
            if fault.body is not None:
                body = fault.body
                headers = headers if fault.keep_headers else {}
        self._send(200, body, ctype, headers)

    def _send(self, status: int, body: bytes, ctype: str, headers: dict[str, str]) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)


class FakePccs:
    """``with FakePccs(collateral) as pccs: url = pccs.url`` → http://127.0.0.1:PORT"""

    def __init__(self, collateral: dict[str, str]) -> None:
        self._shared = _Shared(collateral=dict(collateral))
        self._http = LoopbackHttp(_Handler, "fake-pccs", owner=self._shared)

    @property
    def url(self) -> str:
        return self._http.url

    def fault(self, path: str, fault: Fault | None) -> None:
        """Make requests whose path starts with ``path`` misbehave (``None`` heals it)."""
        if fault is None:
            self._shared.faults.pop(path, None)
        else:
            self._shared.faults[path] = fault

    def requests(self) -> list[str]:
        """Finished requests, path and query (waits briefly for those still being answered)."""
        return self._http.requests()

    def __enter__(self) -> FakePccs:
        self._http.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._http.stop()
