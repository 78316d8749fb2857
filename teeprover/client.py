"""The wallet-side client SDK for the REST API (through Envoy).

    client = Client("https://prover.example", api_key)
    keys = client.attested_keys(allow_simulated=False)     # verify the TEE first
    checked = client.prove_checked(request, circuit, seal_to=keys)   # the proof, verified before it is returned

``prove`` returns the server's bytes unchecked; ``prove_checked`` verifies them first (see its
docstring for where the verifying key comes from) and raises :class:`ProofRejected` or
:class:`NoVerifyingKey` instead of returning a proof nobody checked.

Errors from the server arrive as :class:`RemoteError` with the public error
fields (``error``, ``message``, ``details``, ``request_id``) and the HTTP status;
a server that cannot be reached, or that drops the connection, as
:class:`ConnectionFailed`.
"""

from __future__ import annotations

import base64
import datetime as dt
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx

from teeprover import hpke
from teeprover.attestation import binding_digest
from teeprover.attestation import verify as verify_attestation
from teeprover.attestation.result import Result
from teeprover.errors import InvalidInput, MalformedEncoding, TeeProverError
from teeprover.progress import QUIET, Progress
from teeprover.zkir import ProveRequest

if TYPE_CHECKING:
    from teeprover.groth16.types import Proof, VerifyingKey


class RemoteError(TeeProverError):
    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(f"{status} {body.get('error')}: {body.get('message')} (request {body.get('request_id')})",
                         details=body)
        self.status = status
        self.body = body


class ConnectionFailed(TeeProverError):
    """No HTTP answer: connection refused, reset or closed early, a timeout, a name that does not resolve."""


class AttestationRejected(TeeProverError):
    """The server's attestation document did not verify; nothing was sent."""


class ProofRejected(TeeProverError):
    """The server's answer is not a proof that verifies against the verifying key."""


class NoVerifyingKey(InvalidInput):
    """No verifying key to check the server's proof with: none given, none in the request's key
    material, and the server serves none for the preimage's key_location."""


@dataclass(frozen=True)
class CheckedProof:
    """A proof from the server that verified against ``verifying_key`` for ``public_inputs``.

    ``key_source``: where the verifying key came from — ``"given"``, ``"key material"`` or ``"server"``.
    """

    proof: Proof
    public_inputs: list[int]
    verifying_key: VerifyingKey
    key_source: str


@dataclass(frozen=True)
class AttestedKeys:
    platform: str
    hpke_public_key: bytes
    result: Result


class Client:
    def __init__(self, url: str, api_key: str | None = None, *, timeout: float = 700.0) -> None:
        headers = {"x-api-key": api_key} if api_key else {}
        self.url = url.rstrip("/")
        try:
            self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout)
        except httpx.InvalidURL as exc:  # e.g. "http://[::1": a user's mistake, not a network failure
            raise InvalidInput(f"{self.url} is not a usable URL: {exc}") from None

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _send(self, method: str, path: str, **kw: Any) -> httpx.Response:
        """One request; transport failures become :class:`ConnectionFailed`, error replies :class:`RemoteError`."""
        try:
            reply = self._http.request(method, path, **kw)
        except httpx.TimeoutException:
            raise ConnectionFailed(f"no reply from {self.url} within {self._http.timeout.read} s") from None
        except httpx.RemoteProtocolError:
            raise ConnectionFailed(f"{self.url} closed the connection without a complete reply") from None
        except httpx.ConnectError as exc:
            raise ConnectionFailed(f"cannot connect to {self.url}: {_reason(exc)}") from None
        except httpx.TransportError as exc:
            raise ConnectionFailed(f"request to {self.url} failed: {_reason(exc)}") from None
        except httpx.InvalidURL as exc:
            raise ConnectionFailed(f"{self.url} is not a usable URL: {exc}") from None
        return self._check(reply)

    def _check(self, reply: httpx.Response) -> httpx.Response:
        if reply.status_code >= 400:
            try:
                body = reply.json()
            except ValueError:
                body = {"error": "HTTP", "message": reply.text[:300]}
            raise RemoteError(reply.status_code, body)
        return reply

    def health(self) -> dict[str, Any]:
        return dict(self._send("GET", "/health").json())

    def attestation(self, nonce: bytes | None = None) -> dict[str, Any]:
        params = {"nonce": nonce.hex()} if nonce else {}
        return dict(self._send("GET", "/attestation", params=params).json())

    def attested_keys(self, *, allow_simulated: bool = False, now: dt.datetime | None = None,
                      **verify_options: Any) -> AttestedKeys:
        """Fetch a fresh attestation (random nonce), verify it and its key binding; return the HPKE key."""
        nonce = os.urandom(32)
        doc = self.attestation(nonce)
        if doc.get("error"):
            raise AttestationRejected(f"the server could not attest: {doc['error']}")
        meta = doc.get("metadata") or {}
        try:
            hpke_key = bytes.fromhex(meta["binding"]["hpke_public_key"])
            timestamp_ms = int(meta["timestamp_ms"])
        except (KeyError, TypeError, ValueError):
            raise AttestationRejected("the attestation document does not carry an HPKE key binding") from None
        expected = binding_digest(nonce=nonce, tls_spki_sha256=_tls_spki(meta), hpke_public_key=hpke_key,
                                  timestamp_ms=timestamp_ms)
        result = verify_attestation(base64.b64decode(doc["attestation"]), platform=doc["platform"],
                                    now=now or dt.datetime.now(dt.UTC), nonce=nonce, report_data=expected,
                                    allow_simulated=allow_simulated, **verify_options)
        if not result.ok:
            raise AttestationRejected(f"attestation failed at step {result.failed_step}: {result.message}")
        return AttestedKeys(doc["platform"], hpke_key, result)

    def prove(self, request: ProveRequest, *, seal_to: AttestedKeys | None = None) -> bytes:
        body = request.to_cbor()
        if seal_to is not None:
            body = hpke.seal(seal_to.hpke_public_key, body)
        return self._send("POST", "/prove", content=body, headers={"content-type": "application/cbor"}).content

    def prove_checked(self, request: ProveRequest, circuit: bytes | None = None, *,
                      seal_to: AttestedKeys | None = None, verifying_key: bytes | None = None,
                      progress: Progress = QUIET) -> CheckedProof:
        """Prove remotely and verify the proof before returning it.

        The verifying key (CBOR, ``vk.cbor``) is ``verifying_key`` when given; else the one in the
        request's key material (the server proves with that material); else the server's
        ``GET /verifying-key/{key_location}``, fetched before the witness is sent, so a server with no
        key for the location gets nothing.  No key from any of them is :class:`NoVerifyingKey`.  The
        public inputs are computed here from ``circuit`` (ZKIR bytes; default: the key material's
        ``ir_source``) and the request's preimage (with its binding input).  A proof that does not
        decode or does not verify is :class:`ProofRejected`.

        A key the server serves only shows the proof is valid for the key that server claims for the
        location; pass ``verifying_key`` (a key you pinned) to rule out a dishonest server.
        """
        from teeprover import zkir
        from teeprover.groth16 import encoding
        from teeprover.groth16.verify import verify

        material = request.key_material
        source = "given" if verifying_key is not None else "key material" if material is not None else "server"
        circuit = circuit if circuit is not None else material.ir_source if material is not None else None
        if circuit is None:
            raise InvalidInput("checking the server's proof needs the circuit, to compute the public inputs")
        with progress.stage(f"proving on {self.url}"):
            vk = self._checking_key(request, verifying_key)
            answer = self.prove(request, seal_to=seal_to)
        with progress.stage("computing the public inputs"):
            compiled = zkir.compile_circuit(zkir.load_circuit(circuit))
            _, public = zkir.generate_witness(compiled, request.effective_preimage())
        try:
            proof = encoding.decode_proof(answer)
        except MalformedEncoding as exc:
            raise ProofRejected(f"the server's answer is not a proof: {exc.message}") from None
        if not verify(vk, public, proof):
            raise ProofRejected("the server's proof does not verify against the verifying key",
                                details={"key_source": source})
        return CheckedProof(proof, public, vk, source)

    def _checking_key(self, request: ProveRequest, given: bytes | None) -> VerifyingKey:
        from teeprover.groth16 import encoding

        if given is not None:
            return encoding.decode_verifying_key(given)
        if request.key_material is not None:
            return encoding.decode_verifying_key(request.key_material.verifier_key)
        location = request.preimage.key_location
        try:
            served = self.verifying_key(location)
        except RemoteError as exc:
            if exc.status != 404:
                raise
            raise NoVerifyingKey(f"cannot check the server's proof: the server has no verifying key for "
                                 f"{location!r} ({exc.message})") from None
        try:
            return encoding.decode_verifying_key(served)
        except MalformedEncoding as exc:
            raise NoVerifyingKey(f"cannot check the server's proof: its answer for the verifying key of "
                                 f"{location!r} is not a verifying key ({exc.message})") from None

    def verifying_key(self, key_location: str, *, snarkjs_json: bool = False) -> bytes:
        """The verifying key of a circuit the server holds: CBOR (``encoding.decode_verifying_key``), or
        snarkjs ``verification_key.json`` text.  Pin it (e.g. its SHA-256) before trusting proofs with it."""
        from urllib.parse import quote

        accept = "application/json" if snarkjs_json else "application/cbor"
        return self._send("GET", f"/verifying-key/{quote(key_location, safe='/')}", headers={"accept": accept}).content

    def k(self, circuit: bytes, *, json_body: bool) -> int:
        ctype = "application/json" if json_body else "application/cbor"
        return int(self._send("POST", "/k", content=circuit, headers={"content-type": ctype}).text)


def _tls_spki(meta: dict[str, Any]) -> bytes | None:
    value = (meta.get("binding") or {}).get("tls_spki_sha256")
    return bytes.fromhex(value) if value else None


def _reason(exc: Exception) -> str:
    """The innermost OS reason ("Connection refused"), not httpx's chain of wrappers."""
    inner: BaseException | None = exc
    while inner is not None:
        if isinstance(inner, OSError) and inner.strerror:
            return inner.strerror.lower() if inner.strerror.startswith("Connection") else inner.strerror
        inner = inner.__cause__ or inner.__context__
    text = str(exc).strip()
    return text.rsplit("] ", 1)[-1] if text else type(exc).__name__
