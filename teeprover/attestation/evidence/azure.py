"""Evidence on an Azure confidential VM (SEV-SNP behind the paravisor): vTPM HCL report -> MAA token.

On an Azure CVM the guest cannot ask the AMD-SP for a report itself; the paravisor (HCL /
OpenHCL) does, and hands it out through the vTPM:

1. write our 64-byte ``report_data`` to NV index ``0x01400002`` (defined with owner auth if
   missing); the paravisor then requests a fresh SNP report and stores an *HCL report* in
   NV index ``0x01400001``;
2. read that HCL report: a 32-byte header, the 1184-byte SNP ``ATTESTATION_REPORT``, a 20-byte
   runtime-claims header and the runtime data (JSON: ``keys`` [HCLAkPub, HCLEkPub],
   ``vm-configuration``, ``user-data`` = hex of what we wrote).  The SNP report_data is
   SHA-256(runtime data) padded with zeros (hash type 1), which we check before going on;
3. fetch the VCEK and the AMD chain from IMDS (``GET {imds}/metadata/THIM/amd/certification``,
   header ``Metadata: true``);
4. ``POST {maa}/attest/SevSnpVm?api-version=2022-08-01`` with
   ``{"report": b64url(JSON{"SnpReport", "VcekCertChain"}), "runtimeData": {"data", "dataType":
   "JSON"}, "nonce"}``; MAA verifies the report against AMD's chain and the runtime data against
   report_data, and answers ``{"token": JWT}``.

The evidence document is that JWT (ASCII bytes), which ``azure.verify_azure`` checks against
the JWKS configured for the MAA issuer.  Layouts follow Microsoft's OpenHCL
(``CvmAttestationReport``), azure-cvm-tooling (``az-cvm-vtpm``) and the MAA REST reference.
Every network call is bounded in time and size; every failure is ``Unavailable`` naming the
URL, so ``GET /attestation`` reports it in ``error``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import string
import struct
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import httpx

from teeprover.attestation.azure import MAX_TOKEN_BYTES
from teeprover.attestation.snp import REPORT_SIZE
from teeprover.errors import TeeProverError, Unavailable

HCL_REPORT_NV_INDEX = 0x01400001
HCL_USER_DATA_NV_INDEX = 0x01400002
USER_DATA_SIZE = 64

HCL_SIGNATURE = 0x414C4348  # "HCLA" as a little-endian u32
HCL_HEADER = struct.Struct("<8I")  # signature, version, report_size, request_type, status, reserved[3]
RUNTIME_CLAIMS_HEADER = struct.Struct("<5I")  # data_size, version, report_type, hash_type, variable_data_size
HW_REPORT_OFFSET = HCL_HEADER.size  # 32
RUNTIME_CLAIMS_OFFSET = HW_REPORT_OFFSET + REPORT_SIZE  # 1216: the hardware report area is sized for SNP
VARIABLE_DATA_OFFSET = RUNTIME_CLAIMS_OFFSET + RUNTIME_CLAIMS_HEADER.size  # 1236
MAX_VARIABLE_DATA = 16 * 1024
REPORT_TYPES = {1: "vbs", 2: "sev-snp", 3: "tvm", 4: "tdx"}
SNP_REPORT_TYPE = 2
REQUEST_TYPE_AK_CERT = 2
HASHES = {1: hashlib.sha256, 2: hashlib.sha384, 3: hashlib.sha512}  # runtime-claims hash type -> hash

IMDS_CERTIFICATION_PATH = "/metadata/THIM/amd/certification"
MAA_ATTEST_PATH = "/attest/SevSnpVm"
MAA_API_VERSION = "2022-08-01"
MAX_IMDS_RESPONSE = 64 * 1024
MAX_MAA_RESPONSE = MAX_TOKEN_BYTES + 4096
JWS_CHARS = frozenset(string.ascii_letters + string.digits + "-_.")


# ---------------------------------------------------------------------------------------------- HCL report


@dataclass(frozen=True)
class HclReport:
    version: int
    request_type: int
    report_type: int
    hash_type: int
    hw_report: bytes  # the SNP ATTESTATION_REPORT (1184 bytes)
    runtime_data: bytes  # exactly the hashed bytes (the JSON runtime claims)

    @property
    def runtime_claims(self) -> dict[str, Any]:
        """The runtime data as JSON (raises ``ValueError`` if it is not a JSON object)."""
        claims = json.loads(self.runtime_data.rstrip(b"\x00"))
        if not isinstance(claims, dict):
            raise ValueError("runtime data is not a JSON object")
        return claims

    @property
    def user_data(self) -> bytes | None:
        """``user-data`` of the runtime claims, decoded from hex; ``None`` if absent or not hex."""
        try:
            value = self.runtime_claims.get("user-data")
        except ValueError:
            return None
        if not isinstance(value, str) or not value or set(value) - set(string.hexdigits):
            return None
        return bytes.fromhex(value) if len(value) % 2 == 0 else None


def parse_hcl_report(data: bytes) -> HclReport:
    """Parse the NV ``0x01400001`` contents (trailing NV padding is ignored).  ``ValueError`` if malformed."""
    if len(data) < VARIABLE_DATA_OFFSET:
        raise ValueError(f"HCL report is {len(data)} bytes, shorter than its {VARIABLE_DATA_OFFSET}-byte fixed part")
    signature, version, _size, request_type, _status, *_reserved = HCL_HEADER.unpack_from(data, 0)
    if signature != HCL_SIGNATURE:
        raise ValueError(f"HCL report signature is 0x{signature:08x}, not 'HCLA'")
    _data_size, _claims_version, report_type, hash_type, var_size = RUNTIME_CLAIMS_HEADER.unpack_from(
        data, RUNTIME_CLAIMS_OFFSET
    )
    if var_size > MAX_VARIABLE_DATA or VARIABLE_DATA_OFFSET + var_size > len(data):
        raise ValueError(f"HCL runtime data size {var_size} exceeds the report ({len(data)} bytes)")
    return HclReport(
        version=version,
        request_type=request_type,
        report_type=report_type,
        hash_type=hash_type,
        hw_report=data[HW_REPORT_OFFSET:RUNTIME_CLAIMS_OFFSET],
        runtime_data=data[VARIABLE_DATA_OFFSET : VARIABLE_DATA_OFFSET + var_size],
    )


def build_hcl_report(hw_report: bytes, runtime_data: bytes, *, hash_type: int = 1, version: int = 2,
                     padded_size: int = 0) -> bytes:
    """The HCL report layout the paravisor writes (used by tests' fake paravisor), zero-padded
    to ``padded_size`` like the NV index it lives in."""
    if len(hw_report) != REPORT_SIZE:
        raise ValueError(f"hardware report must be {REPORT_SIZE} bytes")
    size = VARIABLE_DATA_OFFSET + len(runtime_data)
    out = (
        HCL_HEADER.pack(HCL_SIGNATURE, version, size, REQUEST_TYPE_AK_CERT, 0, 0, 0, 0)
        + hw_report
        + RUNTIME_CLAIMS_HEADER.pack(RUNTIME_CLAIMS_HEADER.size + len(runtime_data), version, SNP_REPORT_TYPE,
                                     hash_type, len(runtime_data))
        + runtime_data
    )
    return out.ljust(padded_size, b"\x00")


def runtime_data_digest(report: HclReport) -> bytes:
    """The 64-byte report_data the hardware report must carry for this runtime data."""
    hasher = HASHES.get(report.hash_type)
    if hasher is None:
        raise ValueError(f"unknown report_data hash type {report.hash_type}")
    return hasher(report.runtime_data).digest().ljust(64, b"\x00")


def check_hcl_report(report: HclReport, user_data: bytes) -> None:
    """``ValueError`` unless this is an SNP report whose report_data commits to runtime data that
    carries ``user_data``."""
    if report.report_type != SNP_REPORT_TYPE:
        kind = REPORT_TYPES.get(report.report_type, str(report.report_type))
        raise ValueError(f"HCL report holds a {kind} hardware report; only SEV-SNP CVMs are supported")
    if report.hw_report[0x50:0x90] != runtime_data_digest(report):
        raise ValueError("SNP report_data is not the hash of the HCL runtime data")
    if report.user_data != user_data:
        raise ValueError("HCL runtime data does not carry our user data (user-data differs)")


# ---------------------------------------------------------------------------------------------- IMDS and MAA


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def maa_request(snp_report: bytes, vcek_chain_pem: bytes, runtime_data: bytes, nonce: bytes | None) -> dict[str, Any]:
    """The ``AttestSevSnpVmRequest`` body.  The nonce (base64) comes back in the token's ``nonce``."""
    report = json.dumps({"SnpReport": b64url(snp_report), "VcekCertChain": b64url(vcek_chain_pem)}).encode()
    body: dict[str, Any] = {"report": b64url(report), "runtimeData": {"data": b64url(runtime_data), "dataType": "JSON"}}
    if nonce is not None:
        body["nonce"] = base64.b64encode(nonce).decode()
    return body


def _snippet(body: bytes) -> str:
    text = body[:300].decode("utf-8", "replace")
    return "".join(c if c.isprintable() else " " for c in text).strip()[:200]


def _bounded(client: httpx.Client, request: httpx.Request, what: str, limit: int, timeout: float) -> bytes:
    """Send ``request``; the body if the answer is 200 and at most ``limit`` bytes, else ``Unavailable``."""
    url = str(request.url)
    try:
        response = client.send(request, stream=True)
        try:
            ok = response.status_code == 200
            cap = limit if ok else 1024  # of an error answer, only the start is kept for the message
            declared = response.headers.get("content-length", "")
            if ok and declared.isdigit() and int(declared) > limit:
                raise Unavailable(f"{what} {url} answered {declared} bytes, limit {limit}")
            body = bytearray()
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > cap:
                    if ok:
                        raise Unavailable(f"{what} {url} answered more than {limit} bytes")
                    break
        finally:
            response.close()
    except httpx.TimeoutException:
        raise Unavailable(f"{what} {url} did not answer in time ({timeout:g} s)") from None
    except httpx.HTTPError as exc:
        raise Unavailable(f"{what} {url} is unreachable: {type(exc).__name__}: {exc}"[:300]) from None
    if not ok:
        detail = _snippet(bytes(body))
        raise Unavailable(f"{what} {url} answered HTTP {response.status_code}" + (f": {detail}" if detail else ""))
    return bytes(body)


def fetch_vcek_chain(client: httpx.Client, imds_url: str, timeout: float) -> bytes:
    """VCEK + ASK/ARK (PEM) for this VM from the Azure IMDS THIM endpoint."""
    url = imds_url.rstrip("/") + IMDS_CERTIFICATION_PATH
    request = client.build_request("GET", url, headers={"Metadata": "true"}, timeout=timeout)
    body = _bounded(client, request, "Azure IMDS", MAX_IMDS_RESPONSE, timeout)
    try:
        document = json.loads(body)
        vcek, chain = document["vcekCert"], document["certificateChain"]
    except (ValueError, TypeError, KeyError):
        raise Unavailable(f"Azure IMDS {url} answered without vcekCert / certificateChain") from None
    if not isinstance(vcek, str) or not isinstance(chain, str) or "BEGIN CERTIFICATE" not in vcek:
        raise Unavailable(f"Azure IMDS {url} answered a vcekCert / certificateChain that is not PEM")
    return (vcek if vcek.endswith("\n") else vcek + "\n").encode() + chain.encode()


def request_maa_token(client: httpx.Client, maa_url: str, body: dict[str, Any], timeout: float) -> bytes:
    """POST the SevSnpVm request; the JWT (ASCII bytes) from ``{"token": ...}``."""
    url = f"{maa_url.rstrip('/')}{MAA_ATTEST_PATH}?api-version={MAA_API_VERSION}"
    request = client.build_request("POST", url, json=body, timeout=timeout)
    answer = _bounded(client, request, "Microsoft Azure Attestation", MAX_MAA_RESPONSE, timeout)
    try:
        token = json.loads(answer)["token"]
    except (ValueError, TypeError, KeyError):
        raise Unavailable(f"Microsoft Azure Attestation {url} answered without a token") from None
    if (not isinstance(token, str) or len(token) > MAX_TOKEN_BYTES or token.count(".") != 2
            or set(token) - JWS_CHARS):
        raise Unavailable(f"Microsoft Azure Attestation {url} answered a token that is not a compact JWS")
    return token.encode("ascii")


# ---------------------------------------------------------------------------------------------- provider


class NvStorage(Protocol):
    """The two vTPM operations the provider needs (``tpm.Tpm`` provides them)."""

    def nv_read(self, index: int) -> bytes: ...

    def nv_write(self, index: int, data: bytes, *, define_size: int | None = None) -> None: ...


@dataclass
class AzureProvider:
    """Azure CVM evidence: the MAA SevSnpVm token for a fresh HCL report that carries ``report_data``.

    ``tpm``: the vTPM (``tpm.Tpm`` on ``/dev/tpmrm0``; used under a lock, it is not
    thread-safe).  ``transport``: an httpx transport seam (``None``: the network).  Proxies from
    the environment are not used: IMDS is link-local and must not go through one.
    """

    tpm: NvStorage
    maa_url: str
    imds_url: str = "http://169.254.169.254"
    transport: httpx.BaseTransport | None = None
    # Together below the attestor's 5 s budget, so a slow service is named in the error rather than
    # reported as the budget running out (the VCEK chain is cached: IMDS is asked once per TCB).
    imds_timeout: float = 1.5
    maa_timeout: float = 3.0
    report_attempts: int = 3  # reads of the HCL report while the paravisor refreshes it
    retry_delay: float = 0.05
    platform: str = "azure"
    _chains: dict[bytes, bytes] = field(default_factory=dict, repr=False)  # (reported_tcb, chip_id) -> PEM

    _lock = threading.Lock()  # one writer of the user-data NV index per process

    @classmethod
    def from_device(cls, device: str = "/dev/tpmrm0", *, maa_url: str, imds_url: str) -> AzureProvider:
        from teeprover.attestation.tpm import Tpm, device_transport  # the device is opened at the first command

        return cls(Tpm(device_transport(device)), maa_url=maa_url, imds_url=imds_url)

    def attest(self, *, report_data: bytes, nonce: bytes | None, public_key: bytes | None, now: datetime) -> bytes:
        # MAA stamps iat/nbf/exp itself; ``now`` goes into the binding only.
        if not self.maa_url:
            raise Unavailable("azure: no Microsoft Azure Attestation endpoint configured; set TEEPROVER_MAA_URL "
                              "(e.g. https://sharedeus2.eus2.attest.azure.net)")
        if len(report_data) != USER_DATA_SIZE:
            raise Unavailable(f"azure: vTPM user data must be {USER_DATA_SIZE} bytes")
        report = self._hcl_report(report_data)
        with httpx.Client(transport=self.transport, trust_env=False, follow_redirects=False) as client:
            chain = self._vcek_chain(client, report.hw_report)
            body = maa_request(report.hw_report, chain, report.runtime_data, nonce)
            return request_maa_token(client, self.maa_url, body, self.maa_timeout)

    def _hcl_report(self, user_data: bytes) -> HclReport:
        """Write the user data, then read the HCL report until the paravisor has refreshed it."""
        problem = ""
        with self._lock:
            try:
                self.tpm.nv_write(HCL_USER_DATA_NV_INDEX, user_data, define_size=USER_DATA_SIZE)
                for attempt in range(max(1, self.report_attempts)):
                    if attempt:
                        time.sleep(self.retry_delay)
                    try:
                        report = parse_hcl_report(self.tpm.nv_read(HCL_REPORT_NV_INDEX))
                        check_hcl_report(report, user_data)
                        return report
                    except ValueError as exc:
                        problem = str(exc)
            except TeeProverError as exc:
                raise Unavailable(f"azure: vTPM access failed: {exc.message}") from None
            except OSError as exc:
                raise Unavailable(f"azure: vTPM access failed: {exc}") from None
        raise Unavailable(f"azure: vTPM NV 0x{HCL_REPORT_NV_INDEX:08x} holds no usable report for our user data: "
                          f"{problem}")

    def _vcek_chain(self, client: httpx.Client, snp_report: bytes) -> bytes:
        # The VCEK is specific to the chip and its TCB; a firmware update changes the key.
        key = snp_report[0x180:0x188] + snp_report[0x1A0:0x1E0]
        chain = self._chains.get(key)
        if chain is None:
            chain = fetch_vcek_chain(client, self.imds_url, self.imds_timeout)
            if len(self._chains) > 8:
                self._chains.clear()
            self._chains[key] = chain
        return chain
