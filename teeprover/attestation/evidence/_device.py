"""Helpers for the TEE device files: ioctl request numbers (the _IOWR macro, for the NSM and /dev/sev-guest),
reading small text attributes (configfs-tsm, DMI), and turning what an SEV-SNP host returns with a report
(its certificate table, from either interface) into evidence."""

from __future__ import annotations

from pathlib import Path

from teeprover.attestation.snp import parse_cert_table, snp_evidence
from teeprover.errors import Unavailable


def _iowr(kind: int, nr: int, size: int) -> int:
    return (3 << 30) | (size << 16) | (kind << 8) | nr


def _read_text(path: Path) -> str:
    try:
        return path.read_text(errors="replace").strip()
    except OSError:
        return ""


def snp_evidence_from_cert_table(report: bytes, table: bytes, source: str) -> bytes:
    """``sev-snp`` evidence from a report and the GUID certificate table the host returned with it (the
    ``/dev/sev-guest`` certificate buffer or configfs-tsm's ``auxblob``, named by ``source``)."""
    try:
        certs = parse_cert_table(table)
    except ValueError as exc:
        raise Unavailable(f"SEV-SNP certificate table is malformed: {exc}") from None
    vek = certs.get("vcek") or certs.get("vlek")
    if vek is None:
        raise Unavailable(f"SEV-SNP {source} holds no VCEK/VLEK (host did not provision certificates)")
    return snp_evidence(report, vek, certs.get("ask"))
