"""SEV-SNP and TDX through the Linux configfs-tsm report interface."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from teeprover.attestation.evidence._device import _read_text, snp_evidence_from_cert_table
from teeprover.attestation.evidence.pccs import CollateralSource
from teeprover.attestation.snp import REPORT_SIZE
from teeprover.attestation.tdx import tdx_evidence
from teeprover.errors import Unavailable

TSM_REPORT_ROOT = "sys/kernel/config/tsm/report"
TSM_PROVIDERS = {"sev_guest": "sev-snp", "tdx_guest": "tdx"}


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
        return snp_evidence_from_cert_table(outblob, auxblob, "auxblob")
