"""Intel TDX DCAP quotes, verified by the maintained ``dcap-qvl`` package (Phala, MIT).

Evidence for ``tdx`` is a CBOR map ``{"quote": bstr, "collateral": tstr}`` where collateral
is the PCCS/PCS JSON (``QuoteCollateralV3``: tcb_info, qe_identity, CRLs, issuer chains).
dcap-qvl does the full DCAP check against the root we pass (PCK chain and CRLs, QE report
signature and binding, quote signature, TCB info and QE identity signatures, QE identity
policy, TCB level).  We map its error text to our step names, then check report data /
nonce, collect measurements (MRTD, RTMR0-3) and apply the debug policy (TD_ATTRIBUTES bit 0).
Only TCB status ``UpToDate`` passes.
"""

from __future__ import annotations

import json
from typing import Any

from . import _x509
from ._cbor import loads_strict
from .result import Checks, StepFailed

ACCEPTED_TCB_STATUS = ("UpToDate",)
MAX_QUOTE_BYTES = 64 * 1024
MAX_COLLATERAL_BYTES = 256 * 1024


def tdx_evidence(quote: bytes, collateral_json: str) -> bytes:
    import cbor2

    return bytes(cbor2.dumps({"quote": quote, "collateral": collateral_json}, canonical=True))


def _step_for(message: str) -> str:
    text = message.lower()
    if "crl" in text or "cert" in text or "chain" in text or "expired" in text or "issuer" in text or "root ca" in text:
        return "chain"
    if "decode" in text or "parse" in text or "unsupported quote" in text:
        return "parse"
    if "tcb level" in text or "tcb status" in text:
        return "tcb"
    if "signature" in text or "qe report" in text or "hash" in text:
        return "signature"
    if "qe identity" in text or "mrsigner" in text or "isvprodid" in text:
        return "tcb"
    return "signature"


def verify_tdx(evidence: bytes, checks: Checks, facts: dict[str, Any]) -> None:
    bundle = loads_strict(evidence, "tdx evidence")
    if not isinstance(bundle, dict) or not isinstance(bundle.get("quote"), bytes):
        raise StepFailed("parse", "tdx evidence must be a CBOR map with a byte-string quote")
    collateral_text = bundle.get("collateral")
    if collateral_text is None:
        raise StepFailed("chain", "no DCAP collateral (tcb_info, qe_identity, CRLs) in the evidence")
    if not isinstance(collateral_text, str) or len(collateral_text) > MAX_COLLATERAL_BYTES:
        raise StepFailed("structure", "collateral must be JSON text of bounded size")
    quote = bundle["quote"]
    if not 48 <= len(quote) <= MAX_QUOTE_BYTES:
        raise StepFailed("structure", "quote size out of bounds")
    version = int.from_bytes(quote[0:2], "little")
    tee_type = int.from_bytes(quote[4:8], "little")
    if version not in (4, 5) or tee_type != 0x81:
        raise StepFailed("structure", f"not a TDX quote (version {version}, tee_type {tee_type:#x})")
    if not checks.roots.anchors:
        raise StepFailed("chain", "no pinned Intel SGX root configured")

    try:
        import dcap_qvl  # type: ignore[import-not-found, import-untyped, unused-ignore]
    except ImportError:
        raise StepFailed("internal", "dcap-qvl is not installed; TDX quotes cannot be verified") from None
    try:
        collateral = dcap_qvl.QuoteCollateralV3.from_json(collateral_text)
    except Exception as exc:  # noqa: BLE001
        raise StepFailed("structure", f"collateral is not valid QuoteCollateralV3 JSON: {exc}"[:300]) from None
    last: Exception | None = None
    for anchor in checks.roots.anchors:
        try:
            verified = dcap_qvl.verify_with_root_ca(quote, collateral, _x509.der(anchor), int(checks.now.timestamp()))
            break
        except Exception as exc:  # noqa: BLE001 - dcap-qvl reports every failure as ValueError text
            last = exc
    else:
        message = str(last).splitlines()[0] if last else "verification failed"
        raise StepFailed(_step_for(message), f"dcap-qvl: {message}"[:300])

    report_json = json.loads(verified.to_json())
    status, advisories = report_json.get("status"), report_json.get("advisory_ids", [])
    report = report_json.get("report", {})
    body = next(iter(report.values())) if isinstance(report, dict) and report else {}
    facts.update(
        quote_version=version,
        tcb_status=status,
        advisory_ids=advisories,
        report_kind=next(iter(report), None) if isinstance(report, dict) else None,
        mrtd=body.get("mr_td"),
        rtmr0=body.get("rt_mr0"),
        rtmr1=body.get("rt_mr1"),
        rtmr2=body.get("rt_mr2"),
        rtmr3=body.get("rt_mr3"),
        report_data=bytes.fromhex(body.get("report_data", "")),
        td_attributes=body.get("td_attributes"),
        tee_tcb_svn=body.get("tee_tcb_svn"),
        measurements={
            k: body[v]
            for k, v in (
                ("mrtd", "mr_td"),
                ("rtmr0", "rt_mr0"),
                ("rtmr1", "rt_mr1"),
                ("rtmr2", "rt_mr2"),
                ("rtmr3", "rt_mr3"),
            )
            if v in body
        },
    )
    attributes = bytes.fromhex(body.get("td_attributes", "00"))
    facts["debug"] = bool(attributes[0] & 1)  # TUD.DEBUG is bit 0 of TD_ATTRIBUTES
    if status not in ACCEPTED_TCB_STATUS:
        raise StepFailed("tcb", f"TCB status {status} is not accepted (advisories {advisories})")
    if checks.report_data is not None:
        if facts["report_data"] != checks.report_data:
            raise StepFailed("nonce", "report_data differs from the expected binding")
    elif checks.nonce is not None and facts["report_data"] != checks.nonce.ljust(64, b"\0"):
        raise StepFailed("nonce", "report_data does not carry the expected nonce")
