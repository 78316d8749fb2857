"""DCAP collateral for a TDX quote, fetched from Intel PCS or a caching PCCS (API v4).

A quote alone cannot be verified offline: the verifier also needs Intel's signed TCB info and
QE identity, the PCK and root CA revocation lists, and their issuer chains.  The server fetches
them once per platform and ships them inside the evidence (``tdx.tdx_evidence``).

For a quote, dcap-qvl reads the FMSPC and the PCK CA type (``processor`` / ``platform``) from
the PCK certificate in the quote's certification data (SGX extensions OID
1.2.840.113741.1.13.1, FMSPC is sub-OID .4); then, relative to the base URL::

    GET /sgx/certification/v4/pckcrl?ca={ca}&encoding=der     DER CRL    SGX-PCK-CRL-Issuer-Chain
    GET /tdx/certification/v4/tcb?fmspc={FMSPC}&update=standard  JSON    TCB-Info-Issuer-Chain
    GET /tdx/certification/v4/qe/identity?update=standard        JSON    SGX-Enclave-Identity-Issuer-Chain
    root CA CRL: a PCCS serves GET /sgx/certification/v4/rootcacrl (hex of the DER, or DER);
                 Intel PCS has no such path - it is the CRL distribution point of the pinned
                 Intel SGX Root CA (``INTEL_ROOT_CA_CRL_URL``)

Issuer chains arrive URL-encoded in those response headers.  ``tcbInfo`` and
``enclaveIdentity`` are kept as the exact bytes the server sent, because Intel's signature
covers those bytes.  The result is ``QuoteCollateralV3`` JSON, the shape dcap-qvl reads.

Why not ``dcap_qvl.get_collateral``: it has a fixed 180 s timeout, reads bodies of any size,
and is async-only.  Here every request has a timeout and a deadline, every body a size
limit, and every failure raises ``Unavailable`` naming the URL (and the HTTP status).
Nothing here is trusted: the fetched bytes are only checked for shape.  The verifier checks
every signature and chain against the pinned root.

Caching: per (FMSPC, CA) until the earliest of the TCB info's and QE identity's ``nextUpdate``,
the CRLs' ``nextUpdate`` and ``max_age`` after the fetch.  Collateral that is already past its
``nextUpdate`` is returned (the verifier will refuse it), but it is not cached.  Fetches are
serialised, so concurrent requests for an empty cache cause one fetch.
"""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

import httpx
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from teeprover.attestation.tdx import MAX_COLLATERAL_BYTES
from teeprover.errors import Unavailable

INTEL_PCS_URL = "https://api.trustedservices.intel.com"
# The CRL distribution point of the pinned Intel SGX Root CA (a test checks that it still matches).
INTEL_ROOT_CA_CRL_URL = "https://certificates.trustedservices.intel.com/IntelSGXRootCA.der"
_INTEL_PCS_HOSTS = ("api.trustedservices.intel.com", "sbx.api.trustedservices.intel.com")

DEFAULT_TIMEOUT = 10.0  # seconds, per request (connect, and each read)
DEFAULT_DEADLINE = 30.0  # seconds, for the whole fetch (all four responses)
DEFAULT_MAX_AGE = timedelta(hours=1)
MAX_RESPONSE_BYTES = 128 * 1024  # each response; the whole collateral must fit MAX_COLLATERAL_BYTES
MAX_CACHED_PLATFORMS = 16


class CollateralSource(Protocol):
    def collateral_json(self, quote: bytes, *, now: datetime) -> str: ...


@dataclass(frozen=True)
class _Response:
    url: str
    body: bytes
    headers: httpx.Headers


@dataclass(frozen=True)
class _Cached:
    expires: datetime
    collateral_json: str


class PccsCollateral:
    """Fetches (and caches) the collateral for quotes from one PCS / PCCS base URL."""

    def __init__(
        self,
        base_url: str = INTEL_PCS_URL,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        deadline: float = DEFAULT_DEADLINE,
        max_response_bytes: int = MAX_RESPONSE_BYTES,
        max_age: timedelta = DEFAULT_MAX_AGE,
        root_ca_crl_url: str | None = None,
    ) -> None:
        base = base_url.strip().rstrip("/")
        for suffix in ("/sgx/certification/v4", "/tdx/certification/v4"):
            base = base.removesuffix(suffix)  # operators often configure the API root
        parts = urlsplit(base)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise Unavailable(f"the PCCS URL must be an http(s) URL, not {base_url!r:.80}")
        self.base_url = base
        self.timeout = timeout
        self.deadline = deadline
        self.max_response_bytes = max_response_bytes
        self.max_age = max_age
        if root_ca_crl_url is None:
            is_pcs = parts.hostname in _INTEL_PCS_HOSTS
            root_ca_crl_url = INTEL_ROOT_CA_CRL_URL if is_pcs else f"{base}/sgx/certification/v4/rootcacrl"
        self.root_ca_crl_url = root_ca_crl_url
        self._lock = threading.Lock()
        self._cache: OrderedDict[tuple[str, str], _Cached] = OrderedDict()

    def collateral_json(self, quote: bytes, *, now: datetime) -> str:
        """``QuoteCollateralV3`` JSON for ``quote``; from the cache unless it expired at ``now``."""
        fmspc, ca = quote_platform(quote)
        key = (fmspc, ca)
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None and now < hit.expires:
                return hit.collateral_json
            self._cache.pop(key, None)
            text, next_update = self.fetch(fmspc, ca)
            expires = min(next_update, now + self.max_age)
            if now < expires:
                self._cache[key] = _Cached(expires, text)
                while len(self._cache) > MAX_CACHED_PLATFORMS:
                    self._cache.popitem(last=False)
            return text

    def fetch(self, fmspc: str, ca: str) -> tuple[str, datetime]:
        """Fetch the collateral now: (``QuoteCollateralV3`` JSON, earliest ``nextUpdate`` in it)."""
        sgx, tdx = f"{self.base_url}/sgx/certification/v4", f"{self.base_url}/tdx/certification/v4"
        with httpx.Client(timeout=httpx.Timeout(self.timeout), follow_redirects=False, trust_env=False,
                          headers={"Accept-Encoding": "identity"}) as client:
            give_up = time.monotonic() + self.deadline
            pck = self._get(client, f"{sgx}/pckcrl?ca={ca}&encoding=der", give_up)
            tcb = self._get(client, f"{tdx}/tcb?fmspc={fmspc}&update=standard", give_up)
            qe = self._get(client, f"{tdx}/qe/identity?update=standard", give_up)
            root = self._get(client, self.root_ca_crl_url, give_up)

        pck_crl, pck_next = _crl(pck, ca)
        root_crl, root_next = _crl(root, "root")
        tcb_info, tcb_raw, tcb_signature, tcb_next = _signed_json(tcb, "tcbInfo")
        if str(tcb_info.get("id")) != "TDX" or str(tcb_info.get("fmspc", "")).upper() != fmspc:
            raise Unavailable(f"PCCS {tcb.url} sent TCB info for {tcb_info.get('id')!r:.20} FMSPC "
                              f"{tcb_info.get('fmspc')!r:.20}, not TDX FMSPC {fmspc}")
        qe_identity, qe_raw, qe_signature, qe_next = _signed_json(qe, "enclaveIdentity")
        if str(qe_identity.get("id")) != "TD_QE":
            raise Unavailable(f"PCCS {qe.url} sent the identity of {qe_identity.get('id')!r:.20}, not TD_QE")
        collateral = {
            "pck_crl_issuer_chain": _issuer_chain(pck, "SGX-PCK-CRL-Issuer-Chain"),
            "root_ca_crl": root_crl.hex(),
            "pck_crl": pck_crl.hex(),
            "tcb_info_issuer_chain": _issuer_chain(tcb, "TCB-Info-Issuer-Chain", "SGX-TCB-Info-Issuer-Chain"),
            "tcb_info": tcb_raw,
            "tcb_info_signature": tcb_signature,
            "qe_identity_issuer_chain": _issuer_chain(qe, "SGX-Enclave-Identity-Issuer-Chain"),
            "qe_identity": qe_raw,
            "qe_identity_signature": qe_signature,
        }
        text = json.dumps(collateral)
        if len(text) > MAX_COLLATERAL_BYTES:
            raise Unavailable(f"the collateral from {self.base_url} is {len(text)} bytes, more than the "
                              f"{MAX_COLLATERAL_BYTES} a verifier accepts")
        _check_dcap_qvl_reads(text, self.base_url)
        return text, min(pck_next, root_next, tcb_next, qe_next)

    def _get(self, client: httpx.Client, url: str, give_up: float) -> _Response:
        if time.monotonic() > give_up:
            raise Unavailable(f"PCCS {self.base_url} did not deliver the collateral within {self.deadline:g} s")
        try:
            with client.stream("GET", url) as resp:
                if resp.status_code != 200:
                    code = resp.headers.get("Error-Code") or resp.headers.get("Error-Message") or ""
                    raise Unavailable(f"PCCS {url} answered HTTP {resp.status_code}"
                                      + (f" ({code:.80})" if code else ""))
                if resp.headers.get("Content-Encoding", "identity").lower() != "identity":
                    raise Unavailable(f"PCCS {url} sent a compressed body although we asked for identity")
                declared = resp.headers.get("Content-Length")
                if declared is not None and declared.isdigit() and int(declared) > self.max_response_bytes:
                    raise Unavailable(f"PCCS {url} sent {declared} bytes, more than the limit of "
                                      f"{self.max_response_bytes}")
                body = bytearray()
                for chunk in resp.iter_raw():
                    body += chunk
                    if len(body) > self.max_response_bytes:
                        raise Unavailable(f"PCCS {url} sent more than the limit of {self.max_response_bytes} bytes")
                    if time.monotonic() > give_up:
                        raise Unavailable(f"PCCS {url} was too slow: the collateral took over {self.deadline:g} s")
                return _Response(url, bytes(body), resp.headers)
        except httpx.TimeoutException:
            raise Unavailable(f"PCCS {url} timed out (no answer within {self.timeout:g} s)") from None
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise Unavailable(f"PCCS {url} could not be reached: {type(exc).__name__}: {exc}"[:300]) from None


def quote_platform(quote: bytes) -> tuple[str, str]:
    """(FMSPC as 12 upper-case hex digits, PCK CA ``processor`` | ``platform``) of a TDX quote."""
    try:
        import dcap_qvl  # type: ignore[import-not-found, import-untyped, unused-ignore]
    except ImportError:
        raise Unavailable("dcap-qvl is not installed; the TDX quote's platform cannot be read") from None
    try:
        parsed = dcap_qvl.parse_quote(quote)
        if not parsed.is_tdx():
            raise ValueError("not a TDX quote")
        fmspc, ca = str(parsed.fmspc()).upper(), str(parsed.ca())
    except Exception as exc:  # noqa: BLE001 - dcap-qvl reports every failure as ValueError text
        raise Unavailable(f"cannot read FMSPC and PCK CA from the TDX quote: {exc}"[:300]) from None
    if len(fmspc) != 12 or any(c not in "0123456789ABCDEF" for c in fmspc) or ca not in ("processor", "platform"):
        raise Unavailable(f"the TDX quote names FMSPC {fmspc!r:.20} and PCK CA {ca!r:.20}")
    return fmspc, ca


# ------------------------------------------------------------------------------------------------ parsing


def _crl(resp: _Response, what: str) -> tuple[bytes, datetime]:
    """A CRL sent as DER (PCS), hex of the DER (PCCS ``rootcacrl``) or PEM; returns (DER, nextUpdate)."""
    body = resp.body.strip()
    der = resp.body
    try:
        if body.startswith(b"-----BEGIN"):
            der = x509.load_pem_x509_crl(body).public_bytes(Encoding.DER)
        elif body and all(c in b"0123456789abcdefABCDEF" for c in body):
            der = bytes.fromhex(body.decode())
        crl = x509.load_der_x509_crl(der)
    except ValueError:
        raise Unavailable(f"PCCS {resp.url} did not send a {what} CRL") from None
    if crl.next_update_utc is None:
        raise Unavailable(f"PCCS {resp.url} sent a {what} CRL without nextUpdate")
    return der, crl.next_update_utc


def _signed_json(resp: _Response, member: str) -> tuple[dict[str, Any], str, str, datetime]:
    """From ``{member: {...}, "signature": hex}``: (the member, its exact text, signature hex, nextUpdate).

    The exact text is kept because Intel's signature covers those bytes, not a re-serialisation.
    """
    try:
        text = resp.body.decode("utf-8")
        outer = json.loads(text)
        inner, signature = outer[member], outer["signature"]
        if not isinstance(inner, dict) or not isinstance(signature, str):
            raise TypeError
        bytes.fromhex(signature)
        next_update = datetime.fromisoformat(str(inner["nextUpdate"]).replace("Z", "+00:00"))
        raw = _raw_member(text, member)
    except (ValueError, TypeError, KeyError):
        raise Unavailable(f"PCCS {resp.url} did not send a signed {member} JSON document") from None
    if len(signature) != 128 or next_update.tzinfo is None:
        raise Unavailable(f"PCCS {resp.url} sent a {member} with a malformed signature or nextUpdate")
    return inner, raw, signature.lower(), next_update.astimezone(UTC)


def _raw_member(text: str, member: str) -> str:
    """The exact text of the value of top-level ``member`` in the JSON object ``text`` (the last
    one if repeated, as ``json.loads`` does)."""
    decoder = json.JSONDecoder()

    def skip(i: int) -> int:
        while i < len(text) and text[i] in " \t\r\n":
            i += 1
        return i

    found: str | None = None
    i = skip(0) + 1  # past "{"
    while True:
        key, i = decoder.raw_decode(text, skip(i))
        i = skip(skip(i) + 1)  # past ":"
        _value, end = decoder.raw_decode(text, i)
        if key == member:
            found = text[i:end]
        i = skip(end)
        if i >= len(text) or text[i] == "}":
            break
        i += 1  # past ","
    if found is None:
        raise KeyError(member)
    return found


def _issuer_chain(resp: _Response, *names: str) -> str:
    value = next((resp.headers[n] for n in names if n in resp.headers), None)
    if value is None:
        raise Unavailable(f"PCCS {resp.url} sent no {names[0]} header")
    pem = unquote(value)
    try:
        if not x509.load_pem_x509_certificates(pem.encode()):
            raise ValueError
    except ValueError:
        raise Unavailable(f"PCCS {resp.url} sent a {names[0]} header that is not a PEM certificate chain") from None
    return pem


def _check_dcap_qvl_reads(text: str, base_url: str) -> None:
    import dcap_qvl  # type: ignore[import-not-found, import-untyped, unused-ignore]

    try:
        dcap_qvl.QuoteCollateralV3.from_json(text)
    except Exception as exc:  # noqa: BLE001
        raise Unavailable(f"the collateral from {base_url} is not QuoteCollateralV3: {exc}"[:300]) from None


# ------------------------------------------------------------------------------------------------ sharing

_shared_lock = threading.Lock()
_shared: dict[str, PccsCollateral] = {}


def shared_collateral(base_url: str = INTEL_PCS_URL) -> PccsCollateral:
    """One fetcher (and so one cache) per base URL for the whole process."""
    with _shared_lock:
        if base_url not in _shared:
            _shared[base_url] = PccsCollateral(base_url)
        return _shared[base_url]
