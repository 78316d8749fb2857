"""Server side: detect the TEE, ask it for evidence that binds our keys, shape the response.

Detection order (first match wins), each probe relative to a ``root`` so tests can point
it at a fake tree:

1. ``aws-nitro``  - ``dev/nsm``
2. ``sev-snp`` / ``tdx`` - configfs-tsm (``sys/kernel/config/tsm/report``) whose probe entry's
   ``provider`` says ``sev_guest`` / ``tdx_guest``; else ``dev/sev-guest`` / ``dev/tdx_guest``
3. ``gcp-vtpm``  - a TPM (``dev/tpmrm0``) on ``Google Compute Engine`` (DMI product name)
4. ``azure``     - a TPM on ``Microsoft Corporation`` hardware (DMI sys_vendor)
5. ``simulated`` - nothing above; development only, NOT SECURE

``collect()`` returns the JSON fields of ``GET /attestation``: platform, format, nonce (hex),
attestation (base64), metadata, error.
"""

from __future__ import annotations

import base64
import ctypes
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import cbor2

from ..errors import InvalidInput, TeeProverError, Unavailable
from .binding import MAX_NONCE_BYTES, binding_digest
from .pccs import INTEL_PCS_URL, CollateralSource, shared_collateral
from .simulated import SimulatedSigner
from .snp import REPORT_SIZE, parse_cert_table, snp_evidence
from .tdx import tdx_evidence

TSM_REPORT_ROOT = "sys/kernel/config/tsm/report"
TSM_PROVIDERS = {"sev_guest": "sev-snp", "tdx_guest": "tdx"}
FORMATS = {
    "aws-nitro": "aws-nitro-cose-sign1",
    "sev-snp": "sev-snp-report-cbor",
    "tdx": "tdx-quote-cbor",
    "gcp-vtpm": "gcp-vtpm-attestation-pb",
    "simulated": "simulated-cose-sign1",
    "azure": "azure-maa-jwt",
}


class EvidenceProvider(Protocol):
    platform: str

    def attest(self, *, report_data: bytes, nonce: bytes | None, public_key: bytes | None, now: datetime) -> bytes: ...


# ---------------------------------------------------------------------------------------------- detection


def _read_text(path: Path) -> str:
    try:
        return path.read_text(errors="replace").strip()
    except OSError:
        return ""


def detect_platform(root: str | os.PathLike[str] = "/") -> str:
    base = Path(root)
    if (base / "dev/nsm").exists():
        return "aws-nitro"
    tsm = base / TSM_REPORT_ROOT
    if tsm.is_dir():
        # A provider is visible only inside a report entry; look at existing entries first,
        # then create (and remove) a probe entry as the kernel ABI allows.
        for entry in sorted(tsm.iterdir()):
            found = TSM_PROVIDERS.get(_read_text(entry / "provider"))
            if found:
                return found
        probe = tsm / f"teeprover-probe-{os.getpid()}"
        try:
            probe.mkdir(exist_ok=True)
            found = TSM_PROVIDERS.get(_read_text(probe / "provider"))
        except OSError:
            found = None
        finally:
            try:
                probe.rmdir()
            except OSError:
                pass
        if found:
            return found
    if (base / "dev/sev-guest").exists():
        return "sev-snp"
    if (base / "dev/tdx_guest").exists():
        return "tdx"
    has_tpm = (base / "dev/tpmrm0").exists() or (base / "dev/tpm0").exists()
    if has_tpm and _read_text(base / "sys/class/dmi/id/product_name") == "Google Compute Engine":
        return "gcp-vtpm"
    if has_tpm and _read_text(base / "sys/class/dmi/id/sys_vendor") == "Microsoft Corporation":
        return "azure"
    return "simulated"


# ---------------------------------------------------------------------------------------------- AWS Nitro NSM

NSM_RESPONSE_MAX = 0x3000  # NSM_RESPONSE_MAX_SIZE in the Linux nsm driver


class _IoVec(ctypes.Structure):
    _fields_ = [("iov_base", ctypes.c_void_p), ("iov_len", ctypes.c_size_t)]


class _NsmMessage(ctypes.Structure):
    _fields_ = [("request", _IoVec), ("response", _IoVec)]


def _iowr(kind: int, nr: int, size: int) -> int:
    return (3 << 30) | (size << 16) | (kind << 8) | nr


NSM_IOCTL_REQUEST = _iowr(0x0A, 0, ctypes.sizeof(_NsmMessage))  # _IOWR(0x0A, 0, struct nsm_message)


def encode_nsm_request(*, user_data: bytes | None, nonce: bytes | None, public_key: bytes | None) -> bytes:
    """CBOR of the serde-encoded ``Request::Attestation { user_data, nonce, public_key }``."""
    return cbor2.dumps({"Attestation": {"user_data": user_data, "nonce": nonce, "public_key": public_key}})


def decode_nsm_response(data: bytes) -> bytes:
    """The document from ``Response::Attestation { document }``; ``Response::Error(code)`` raises."""
    try:
        response = cbor2.loads(data)
    except Exception as exc:  # noqa: BLE001
        raise Unavailable(f"NSM answered with undecodable bytes: {exc}") from None
    if isinstance(response, dict) and "Error" in response:
        raise Unavailable(f"NSM refused the attestation request: {response['Error']!r:.60}")
    try:
        document = response["Attestation"]["document"]
    except Exception:  # noqa: BLE001
        raise Unavailable("NSM answered without an attestation document") from None
    if not isinstance(document, bytes):
        raise Unavailable("NSM attestation document is not a byte string")
    return document


def nsm_ioctl_transport(device: str = "/dev/nsm") -> Callable[[bytes], bytes]:
    """Send one request to the NSM driver with the NSM_IOCTL_REQUEST ioctl."""

    def send(request: bytes) -> bytes:
        import fcntl

        req = ctypes.create_string_buffer(request, len(request))
        resp = ctypes.create_string_buffer(NSM_RESPONSE_MAX)
        msg = _NsmMessage(
            _IoVec(ctypes.cast(req, ctypes.c_void_p), len(request)),
            _IoVec(ctypes.cast(resp, ctypes.c_void_p), NSM_RESPONSE_MAX),
        )
        try:
            fd = os.open(device, os.O_RDWR | os.O_CLOEXEC)
        except OSError as exc:
            raise Unavailable(f"cannot open {device}: {exc.strerror}") from None
        try:
            fcntl.ioctl(fd, NSM_IOCTL_REQUEST, msg)  # type: ignore[call-overload]
        except OSError as exc:
            raise Unavailable(f"NSM ioctl failed: {exc.strerror}") from None
        finally:
            os.close(fd)
        return resp.raw[: msg.response.iov_len]

    return send


@dataclass
class NitroProvider:
    transport: Callable[[bytes], bytes]
    platform: str = "aws-nitro"

    @classmethod
    def from_device(cls, device: str = "/dev/nsm") -> NitroProvider:
        return cls(nsm_ioctl_transport(device))

    def attest(self, *, report_data: bytes, nonce: bytes | None, public_key: bytes | None, now: datetime) -> bytes:
        # The NSM stamps its own time; ``now`` goes into the binding only.
        return decode_nsm_response(
            self.transport(encode_nsm_request(user_data=report_data, nonce=nonce, public_key=public_key))
        )


# ---------------------------------------------------------------------------------------------- configfs-tsm


@dataclass
class ConfigfsTsmProvider:
    """Linux configfs-tsm report interface (Documentation/ABI/testing/configfs-tsm).

    ``mkdir <root>/<entry>``; write 64 bytes to ``inblob``; read ``outblob`` (report / quote) and
    ``auxblob`` (SEV-SNP certificate table); ``generation`` must not change between the write
    and the reads, otherwise another writer raced us.

    For ``tdx`` the quote is shipped with its DCAP collateral from ``collateral`` (a PCS / PCCS
    fetcher, ``pccs.py``) so it verifies offline; without collateral there is no evidence.
    """

    platform: str
    report_root: str = "/" + TSM_REPORT_ROOT
    entry: str | None = None
    collateral: CollateralSource | None = None  # tdx only

    _lock = threading.Lock()

    def attest(self, *, report_data: bytes, nonce: bytes | None, public_key: bytes | None, now: datetime) -> bytes:
        want = {"sev-snp": "sev_guest", "tdx": "tdx_guest"}[self.platform]
        entry = Path(self.report_root) / (self.entry or f"teeprover-{os.getpid()}")
        with self._lock:
            try:
                entry.mkdir(exist_ok=True)
                provider = _read_text(entry / "provider")
                if provider != want:
                    raise Unavailable(f"configfs-tsm provider is {provider!r:.40}, expected {want}")
                (entry / "inblob").write_bytes(report_data)
                generation = _read_text(entry / "generation")
                outblob = (entry / "outblob").read_bytes()
                auxblob = (entry / "auxblob").read_bytes() if (entry / "auxblob").exists() else b""
                if _read_text(entry / "generation") != generation:
                    raise Unavailable("configfs-tsm report entry changed while reading (concurrent writer)")
            except OSError as exc:
                raise Unavailable(f"configfs-tsm report failed: {exc}") from None
        if self.platform == "tdx":
            if self.collateral is None:
                raise Unavailable("tdx: no PCS/PCCS configured to fetch the quote's DCAP collateral")
            return tdx_evidence(outblob, self.collateral.collateral_json(outblob, now=now))
        if len(outblob) != REPORT_SIZE or outblob[0x50:0x90] != report_data:
            raise Unavailable("configfs-tsm returned a report that does not carry our report_data")
        try:
            certs = parse_cert_table(auxblob)
        except ValueError as exc:
            raise Unavailable(f"SEV-SNP certificate table is malformed: {exc}") from None
        vek = certs.get("vcek") or certs.get("vlek")
        if vek is None:
            raise Unavailable("SEV-SNP auxblob holds no VCEK/VLEK (host did not provision certificates)")
        return snp_evidence(outblob, vek, certs.get("ask"))


# ---------------------------------------------------------------------------------------------- /dev/sev-guest
# The SNP guest driver's ioctl ABI, include/uapi/linux/sev-guest.h (struct layouts mirrored with ctypes).


class SnpReportReq(ctypes.Structure):
    _fields_ = [("user_data", ctypes.c_uint8 * 64), ("vmpl", ctypes.c_uint32), ("rsvd", ctypes.c_uint8 * 28)]


class SnpExtReportReq(ctypes.Structure):
    _fields_ = [("data", SnpReportReq), ("certs_address", ctypes.c_uint64), ("certs_len", ctypes.c_uint32)]


class SnpReportResp(ctypes.Structure):
    _fields_ = [("data", ctypes.c_uint8 * 4000)]


class SnpGuestRequestIoctl(ctypes.Structure):
    _fields_ = [("msg_version", ctypes.c_uint8), ("req_data", ctypes.c_uint64), ("resp_data", ctypes.c_uint64),
                ("exitinfo2", ctypes.c_uint64)]


SNP_GET_EXT_REPORT = _iowr(ord("S"), 0x2, ctypes.sizeof(SnpGuestRequestIoctl))
SNP_VMM_ERR_INVALID_LEN = 1  # exitinfo2 >> 32 when the certificate buffer is too small
PAGE = 4096
SNP_CERTS_MAX = 0x4000 * 4  # SEV_FW_BLOB_MAX_SIZE

SevGuestTransport = Callable[[int, SnpGuestRequestIoctl], None]


def sev_guest_transport(device: str = "/dev/sev-guest") -> SevGuestTransport:
    def send(request: int, arg: SnpGuestRequestIoctl) -> None:
        import fcntl

        fd = os.open(device, os.O_RDWR)
        try:
            fcntl.ioctl(fd, request, arg)  # type: ignore[call-overload]
        finally:
            os.close(fd)

    return send


@dataclass
class SevGuestProvider:
    """SEV-SNP fallback without configfs-tsm: ``SNP_GET_EXT_REPORT`` on ``/dev/sev-guest``.

    The extended request returns the signed report (MSG_REPORT_RSP: status, size, report at
    0x20) and the host's certificate table (VCEK/VLEK, ASK) in the buffer we pass; a buffer
    the host finds too small comes back with the needed length, and we ask once more.
    """

    transport: SevGuestTransport
    platform: str = "sev-snp"

    @classmethod
    def from_device(cls, device: str = "/dev/sev-guest") -> SevGuestProvider:
        return cls(sev_guest_transport(device))

    def attest(self, *, report_data: bytes, nonce: bytes | None, public_key: bytes | None, now: datetime) -> bytes:
        certs_len = PAGE * 4
        for _ in range(2):
            req = SnpExtReportReq()
            ctypes.memmove(req.data.user_data, report_data, 64)
            certs = ctypes.create_string_buffer(certs_len)
            req.certs_address = ctypes.addressof(certs)
            req.certs_len = certs_len
            resp = SnpReportResp()
            arg = SnpGuestRequestIoctl(msg_version=1, req_data=ctypes.addressof(req),
                                       resp_data=ctypes.addressof(resp))
            try:
                self.transport(SNP_GET_EXT_REPORT, arg)
            except OSError as exc:
                needed = int(req.certs_len)
                if arg.exitinfo2 >> 32 == SNP_VMM_ERR_INVALID_LEN and certs_len < needed <= SNP_CERTS_MAX:
                    certs_len = -(-needed // PAGE) * PAGE
                    continue
                raise Unavailable(f"/dev/sev-guest SNP_GET_EXT_REPORT failed: {exc} "
                                  f"(exitinfo2 0x{arg.exitinfo2:x})") from None
            break
        else:
            raise Unavailable("/dev/sev-guest kept asking for a larger certificate buffer")
        raw = bytes(resp.data)
        status, size = int.from_bytes(raw[0:4], "little"), int.from_bytes(raw[4:8], "little")
        report = raw[0x20:0x20 + size]
        if status != 0 or size != REPORT_SIZE or report[0x50:0x90] != report_data:
            raise Unavailable(f"SEV-SNP firmware answered status {status} with a {size}-byte report "
                              "that does not carry our report_data")
        try:
            table = parse_cert_table(certs.raw)
        except ValueError as exc:
            raise Unavailable(f"SEV-SNP certificate table is malformed: {exc}") from None
        vek = table.get("vcek") or table.get("vlek")
        if vek is None:
            raise Unavailable("the host returned no VCEK/VLEK with the report (certificates not provisioned)")
        return snp_evidence(report, vek, table.get("ask"))


# ---------------------------------------------------------------------------------------------- simulated


@dataclass
class SimulatedProvider:
    signer: SimulatedSigner
    platform: str = "simulated"

    def attest(self, *, report_data: bytes, nonce: bytes | None, public_key: bytes | None, now: datetime) -> bytes:
        return self.signer.attest(user_data=report_data, nonce=nonce, public_key=public_key, now=now)


_simulated_lock = threading.Lock()
_simulated: SimulatedProvider | None = None


@dataclass(frozen=True)
class Services:
    """Network services some platforms need beside the device (from the attestor's config)."""

    pccs_url: str = INTEL_PCS_URL  # TDX: collateral for the quote
    maa_url: str = ""  # Azure: Microsoft Azure Attestation endpoint (required on Azure)
    imds_url: str = "http://169.254.169.254"  # Azure: instance metadata service (VCEK chain)


def default_provider(platform: str, root: str = "/", services: Services | None = None) -> EvidenceProvider:
    """The provider for ``platform`` on this machine (device paths under ``root``)."""
    global _simulated
    services = services or Services()
    base = Path(root)
    if platform == "aws-nitro":
        return NitroProvider.from_device(str(base / "dev/nsm"))
    if platform in ("sev-snp", "tdx"):
        if (base / TSM_REPORT_ROOT).is_dir():
            source = shared_collateral(services.pccs_url) if platform == "tdx" and services.pccs_url else None
            return ConfigfsTsmProvider(platform, str(base / TSM_REPORT_ROOT), collateral=source)
        if platform == "sev-snp" and (base / "dev/sev-guest").exists():
            return SevGuestProvider.from_device(str(base / "dev/sev-guest"))
        raise Unavailable(f"{platform}: no configfs-tsm report interface on this machine")
    if platform == "gcp-vtpm":
        from .gcp_evidence import TPM_EVENT_LOG, GcpVtpmProvider

        return GcpVtpmProvider.from_device(str(base / "dev/tpmrm0"), str(base / TPM_EVENT_LOG))
    if platform == "simulated":
        with _simulated_lock:
            if _simulated is None:  # one ephemeral key per process, generated at first use
                _simulated = SimulatedProvider(SimulatedSigner())
            return _simulated
    if platform == "azure":
        from .azure_evidence import AzureProvider  # imported here: httpx only where it is needed

        device = base / "dev/tpmrm0"
        if not device.exists() and (base / "dev/tpm0").exists():
            device = base / "dev/tpm0"  # no in-kernel resource manager
        return AzureProvider.from_device(str(device), maa_url=services.maa_url, imds_url=services.imds_url)
    raise Unavailable(f"evidence collection for {platform} is not implemented")


def collect(
    platform: str,
    nonce: bytes | None,
    tls_spki_sha256: bytes | None,
    hpke_public_key: bytes | None,
    now: datetime,
    *,
    provider: EvidenceProvider | None = None,
) -> dict[str, Any]:
    """Evidence for ``GET /attestation``.  Raises ``InvalidInput`` for a bad nonce; a TEE that
    cannot attest right now is reported in ``error`` (the rest of the response is still shaped)."""
    if nonce is not None and len(nonce) > MAX_NONCE_BYTES:
        raise InvalidInput(f"nonce must be at most {MAX_NONCE_BYTES} bytes", details={"nonce_bytes": len(nonce)})
    timestamp_ms = int(now.timestamp() * 1000)
    report_data = binding_digest(
        nonce=nonce, tls_spki_sha256=tls_spki_sha256, hpke_public_key=hpke_public_key, timestamp_ms=timestamp_ms
    )
    metadata: dict[str, Any] = {
        "timestamp_ms": timestamp_ms,
        "binding": {
            "tls_spki_sha256": tls_spki_sha256.hex() if tls_spki_sha256 is not None else None,
            "hpke_public_key": hpke_public_key.hex() if hpke_public_key is not None else None,
        },
        "report_data": report_data.hex(),
        "debug": platform == "simulated",
    }
    if platform == "simulated":
        metadata["warning"] = "simulated attestation: NOT SECURE"
    response: dict[str, Any] = {
        "platform": platform,
        "format": FORMATS.get(platform, platform),
        "nonce": nonce.hex() if nonce is not None else None,
        "attestation": None,
        "metadata": metadata,
        "error": None,
    }
    try:
        source = provider or default_provider(platform)
        # The NSM signs public_key fields of at most 1024 bytes; the hybrid ML-KEM-768+X25519 HPKE
        # key (1216 bytes) does not fit, and report_data binds it anyway, so it is then omitted.
        doc_key = hpke_public_key if hpke_public_key is not None and len(hpke_public_key) <= 1024 else None
        evidence = source.attest(report_data=report_data, nonce=nonce, public_key=doc_key, now=now)
    except InvalidInput:
        raise
    except TeeProverError as exc:
        response["error"] = exc.message
        return response
    response["attestation"] = base64.b64encode(evidence).decode()
    return response
