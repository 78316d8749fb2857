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

One module per platform: ``nitro`` (NSM), ``tsm`` (SEV-SNP and TDX through configfs-tsm), ``sev_guest``
(SEV-SNP through ``/dev/sev-guest``), ``gcp`` (vTPM), ``azure`` (vTPM + MAA), ``simulated``.
"""

from __future__ import annotations

import base64
import os
import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from teeprover.attestation.binding import MAX_NONCE_BYTES, binding_digest
from teeprover.attestation.evidence._device import _read_text
from teeprover.attestation.evidence.nitro import NitroProvider
from teeprover.attestation.evidence.pccs import INTEL_PCS_URL, shared_collateral
from teeprover.attestation.evidence.sev_guest import SevGuestProvider
from teeprover.attestation.evidence.simulated import SimulatedProvider
from teeprover.attestation.evidence.tsm import TSM_PROVIDERS, TSM_REPORT_ROOT, ConfigfsTsmProvider
from teeprover.attestation.simulated import SimulatedSigner
from teeprover.errors import InvalidInput, TeeProverError, Unavailable

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
        from teeprover.attestation.evidence.gcp import TPM_EVENT_LOG, GcpVtpmProvider

        return GcpVtpmProvider.from_device(str(base / "dev/tpmrm0"), str(base / TPM_EVENT_LOG))
    if platform == "simulated":
        with _simulated_lock:
            if _simulated is None:  # one ephemeral key per process, generated at first use
                _simulated = SimulatedProvider(SimulatedSigner())
            return _simulated
    if platform == "azure":
        from teeprover.attestation.evidence.azure import AzureProvider  # imported here: httpx only where needed

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
