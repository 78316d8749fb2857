"""AMD SEV-SNP attestation reports (ABI spec 56860, ATTESTATION_REPORT, 1184 bytes).

Evidence for ``sev-snp`` is a CBOR map ``{"report": bstr(1184), "vek": bstr(DER VCEK or
VLEK), ? "ask": bstr(DER ASK or ASVK)}`` built by ``snp_evidence()`` (the configfs-tsm
provider fills it from ``outblob`` and the ``auxblob`` certificate table).  The chain is
ARK -> ASK (VCEK) or ARK -> ASVK (VLEK) -> VEK, all RSASSA-PSS/SHA-384; the report is
signed with ECDSA P-384/SHA-384 over bytes 0x000..0x29F, r and s stored as 72-byte
little-endian integers at 0x2A0 and 0x2E8.
"""

from __future__ import annotations

import struct
import uuid
from typing import Any

import cbor2
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from . import _x509
from ._cbor import loads_strict
from .result import Checks, StepFailed

REPORT_SIZE = 1184
SIGNED_SIZE = 0x2A0
POLICY_DEBUG = 1 << 19
POLICY_SMT = 1 << 16
SIGNING_KEYS = {0: "VCEK", 1: "VLEK"}

OID_PRODUCT_NAME = "1.3.6.1.4.1.3704.1.2"
OID_HWID = "1.3.6.1.4.1.3704.1.4"
OID_CSP_ID = "1.3.6.1.4.1.3704.1.5"
OID_TCB = {
    "bl": "1.3.6.1.4.1.3704.1.3.1",
    "tee": "1.3.6.1.4.1.3704.1.3.2",
    "snp": "1.3.6.1.4.1.3704.1.3.3",
    "ucode": "1.3.6.1.4.1.3704.1.3.8",
    "fmc": "1.3.6.1.4.1.3704.1.3.9",
}

#: GUIDs of the extended-report certificate table (GHCB spec, SNP extended guest request).
CERT_TABLE_GUIDS = {
    "vcek": uuid.UUID("63da758d-e664-4564-adc5-f4b93be8accd"),
    "vlek": uuid.UUID("a8074bc2-a25a-483e-aae6-39c045a0b8a1"),
    "ask": uuid.UUID("4ab7b379-bbac-4fe4-a02f-05aef327c782"),
    "ark": uuid.UUID("c0b406a4-a803-4952-9743-3fb6014cd0ae"),
}


def snp_evidence(report: bytes, vek_der: bytes, ask_der: bytes | None = None) -> bytes:
    """Bundle a report with its VCEK/VLEK (and optionally ASK/ASVK) as ``sev-snp`` evidence."""
    bundle: dict[str, bytes] = {"report": report, "vek": vek_der}
    if ask_der is not None:
        bundle["ask"] = ask_der
    return cbor2.dumps(bundle, canonical=True)


def parse_cert_table(table: bytes) -> dict[str, bytes]:
    """Parse the GUID certificate table (``auxblob`` / extended report) into {"vcek"|"vlek"|"ask"|"ark": DER}.

    Entries are ``(guid[16], offset u32le, length u32le)`` ending with an all-zero entry; GUIDs
    are matched in both RFC and little-endian byte order because producers differ.
    """
    by_bytes: dict[bytes, str] = {}
    for name, guid in CERT_TABLE_GUIDS.items():
        by_bytes[guid.bytes] = name
        by_bytes[guid.bytes_le] = name
    out: dict[str, bytes] = {}
    pos = 0
    while pos + 24 <= len(table):
        raw_guid = table[pos : pos + 16]
        offset, length = struct.unpack_from("<II", table, pos + 16)
        pos += 24
        if raw_guid == bytes(16):
            break
        if offset + length > len(table):
            raise ValueError("certificate table entry points outside the table")
        found = by_bytes.get(raw_guid)
        if found is not None:
            out[found] = table[offset : offset + length]
    return out


def parse_report(report: bytes) -> dict[str, Any]:
    """Decode the fields of a 1184-byte report (no checks beyond the length)."""
    if len(report) != REPORT_SIZE:
        raise StepFailed("structure", f"report must be {REPORT_SIZE} bytes, got {len(report)}")
    u32 = lambda off: struct.unpack_from("<I", report, off)[0]  # noqa: E731
    u64 = lambda off: struct.unpack_from("<Q", report, off)[0]  # noqa: E731
    key_info = u32(0x48)
    return {
        "version": u32(0x00),
        "guest_svn": u32(0x04),
        "policy": u64(0x08),
        "family_id": report[0x10:0x20],
        "image_id": report[0x20:0x30],
        "vmpl": u32(0x30),
        "signature_algo": u32(0x34),
        "current_tcb": u64(0x38),
        "platform_info": u64(0x40),
        "key_info": key_info,
        "author_key_en": key_info & 1,
        "mask_chip_key": (key_info >> 1) & 1,
        "signing_key": (key_info >> 2) & 7,
        "report_data": report[0x50:0x90],
        "measurement": report[0x90:0xC0],
        "host_data": report[0xC0:0xE0],
        "id_key_digest": report[0xE0:0x110],
        "author_key_digest": report[0x110:0x140],
        "report_id": report[0x140:0x160],
        "reported_tcb": u64(0x180),
        "cpuid_fam_id": report[0x188],
        "cpuid_mod_id": report[0x189],
        "cpuid_step": report[0x18A],
        "chip_id": report[0x1A0:0x1E0],
        "committed_tcb": u64(0x1E0),
        "launch_tcb": u64(0x1F8),
        "signature_r": int.from_bytes(report[0x2A0:0x2E8], "little"),
        "signature_s": int.from_bytes(report[0x2E8:0x330], "little"),
    }


def split_tcb(tcb: int, product: str) -> dict[str, int]:
    """TCB_VERSION components; Turin moved the fields and added FMC."""
    raw = tcb.to_bytes(8, "little")
    if product.startswith("Turin"):
        return {"fmc": raw[0], "bl": raw[1], "tee": raw[2], "snp": raw[3], "ucode": raw[7]}
    return {"bl": raw[0], "tee": raw[1], "snp": raw[6], "ucode": raw[7]}


def _ext_raw(cert: x509.Certificate, oid: str) -> bytes | None:
    try:
        extensions = list(cert.extensions)
    except (ValueError, x509.DuplicateExtension) as exc:  # parsed lazily: corrupt or repeated extensions
        raise StepFailed("chain", f"VCEK/VLEK extensions do not parse: {exc}"[:300]) from None
    for ext in extensions:
        if ext.oid.dotted_string == oid:
            value = ext.value
            return value.value if isinstance(value, x509.UnrecognizedExtension) else None
    return None


def _der_small(raw: bytes | None, tag: int) -> bytes | None:
    # Minimal DER TLV with short length: enough for AMD's INTEGER / IA5String extensions.
    if raw is None or len(raw) < 2 or raw[0] != tag or raw[1] >= 0x80 or raw[1] != len(raw) - 2:
        return None
    return raw[2:]


def vek_info(cert: x509.Certificate) -> dict[str, Any]:
    name = _der_small(_ext_raw(cert, OID_PRODUCT_NAME), 0x16)
    product = name.decode("ascii", "replace") if name is not None else ""
    tcb: dict[str, int] = {}
    for field, oid in OID_TCB.items():
        value = _der_small(_ext_raw(cert, oid), 0x02)
        if value is not None:
            tcb[field] = int.from_bytes(value, "big")
    hwid = _ext_raw(cert, OID_HWID)
    if hwid is not None and len(hwid) not in (8, 64):
        hwid = _der_small(hwid, 0x04)
    csp = _der_small(_ext_raw(cert, OID_CSP_ID), 0x16)
    try:
        cn = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value
    except Exception:  # noqa: BLE001
        cn = ""
    return {
        "product": product,
        "tcb": tcb,
        "hwid": hwid,
        "csp_id": csp.decode("ascii", "replace") if csp else None,
        "cn": cn,
    }


def verify_snp(evidence: bytes, checks: Checks, facts: dict[str, Any]) -> None:
    bundle = loads_strict(evidence, "sev-snp evidence")
    if (
        not isinstance(bundle, dict)
        or not isinstance(bundle.get("report"), bytes)
        or not isinstance(bundle.get("vek"), bytes)
    ):
        raise StepFailed("parse", "sev-snp evidence must be a CBOR map with byte strings report and vek")
    ask = bundle.get("ask")
    if ask is not None and not isinstance(ask, bytes):
        raise StepFailed("parse", "ask must be a byte string")
    if set(bundle) - {"report", "vek", "ask"}:
        raise StepFailed("structure", "unknown keys in sev-snp evidence")

    # structure
    r = parse_report(bundle["report"])
    if not 2 <= r["version"] <= 5:
        raise StepFailed("structure", f"unsupported report version {r['version']}")
    if r["signature_algo"] != 1:
        raise StepFailed("structure", f"signature_algo {r['signature_algo']} is not ECDSA P-384/SHA-384")
    if r["signing_key"] not in SIGNING_KEYS:
        raise StepFailed("structure", f"report signed by key {r['signing_key']} (neither VCEK nor VLEK)")
    if r["vmpl"] > 3:
        raise StepFailed("structure", f"vmpl {r['vmpl']} out of range")
    facts.update(
        version=r["version"],
        guest_svn=r["guest_svn"],
        policy=r["policy"],
        vmpl=r["vmpl"],
        signature_algo=r["signature_algo"],
        key_info=r["key_info"],
        signing_key=SIGNING_KEYS[r["signing_key"]],
        measurement=r["measurement"].hex(),
        report_data=r["report_data"],
        host_data=r["host_data"].hex(),
        chip_id=r["chip_id"].hex(),
        reported_tcb=f"0x{r['reported_tcb']:016x}",
        cpuid=f"{r['cpuid_fam_id']:02x} {r['cpuid_mod_id']:02x} {r['cpuid_step']:02x}",
        measurements={"measurement": r["measurement"].hex(), "host_data": r["host_data"].hex()},
        debug=bool(r["policy"] & POLICY_DEBUG),
    )

    # chain
    vek = _x509.load_der(bundle["vek"], "VEK certificate")
    pool = list(checks.roots.intermediates)
    if ask is not None:
        pool.insert(0, _x509.load_der(ask, "ASK certificate"))
    info = vek_info(vek)
    want_cn = "SEV-" + SIGNING_KEYS[r["signing_key"]]
    if info["cn"] != want_cn:
        raise StepFailed(
            "chain",
            f"report is signed by the {SIGNING_KEYS[r['signing_key']]}, the certificate is {info['cn']!r:.40}",
        )
    path = _x509.build_chain(vek, pool, checks.roots.anchors, checks.now)
    facts.update(
        chain=[c.subject.rfc4514_string() for c in path],
        root_sha256=_x509.fingerprint(path[-1]),
        product=info["product"],
        vek_tcb=info["tcb"],
        csp_id=info["csp_id"],
    )

    # signature
    key = vek.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP384R1):
        raise StepFailed("signature", "VEK key is not ECDSA P-384")
    if not (0 < r["signature_r"] < 2**384 and 0 < r["signature_s"] < 2**384):
        raise StepFailed("signature", "report signature r/s out of range")
    try:
        key.verify(
            encode_dss_signature(r["signature_r"], r["signature_s"]),
            bundle["report"][:SIGNED_SIZE],
            ec.ECDSA(hashes.SHA384()),
        )
    except InvalidSignature:
        raise StepFailed("signature", "report signature does not verify with the VEK") from None

    # tcb: the VEK is only for the TCB and (VCEK) the chip it certifies
    reported = split_tcb(r["reported_tcb"], info["product"])
    facts["tcb"] = reported
    for name, value in reported.items():
        if info["tcb"].get(name) != value:
            raise StepFailed(
                "tcb", f"reported_tcb {name}={value} differs from the VEK certificate ({info['tcb'].get(name)})"
            )
    if r["signing_key"] == 0:
        hwid = info["hwid"]
        if hwid is None or r["chip_id"][: len(hwid)] != hwid:
            raise StepFailed("tcb", "report chip_id does not match the VCEK hwID")
    facts["tcb_status"] = "matches-vek"

    # nonce
    if checks.report_data is not None:
        if r["report_data"] != checks.report_data:
            raise StepFailed("nonce", "report_data differs from the expected binding")
    elif checks.nonce is not None and r["report_data"] != checks.nonce.ljust(64, b"\0"):
        raise StepFailed("nonce", "report_data does not carry the expected nonce")
    # freshness: SNP reports have no timestamp; only a nonce makes them fresh.
    facts["freshness"] = "nonce" if (checks.nonce is not None or checks.report_data is not None) else "none"
