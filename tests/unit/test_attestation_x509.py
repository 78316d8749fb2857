"""Certificate paths (teeprover/attestation/_x509.py): what ``build_chain`` accepts as a path to a pinned root.

Real certificates made here with a small P-256 PKI: a path must end at a pinned anchor, every issuer in it must
be a CA, every certificate must be valid at the injected instant, and the search is bounded in depth.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from teeprover.attestation import _x509
from teeprover.attestation.result import StepFailed

NOW = datetime(2025, 6, 1, tzinfo=UTC)


def _cert(cn: str, key: ec.EllipticCurvePrivateKey, issuer: tuple[str, ec.EllipticCurvePrivateKey] | None = None,
          *, ca: bool | None = True, days: int = 30, start: datetime = NOW - timedelta(days=1)) -> x509.Certificate:
    issuer_cn, issuer_key = issuer or (cn, key)
    builder = (x509.CertificateBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
               .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer_cn)]))
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(start).not_valid_after(start + timedelta(days=days)))
    if ca is not None:
        builder = builder.add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    return builder.sign(issuer_key, hashes.SHA256())


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


ROOT_KEY, INTER_KEY, LEAF_KEY = _key(), _key(), _key()
ROOT = _cert("root", ROOT_KEY)
INTER = _cert("intermediate", INTER_KEY, ("root", ROOT_KEY))
LEAF = _cert("leaf", LEAF_KEY, ("intermediate", INTER_KEY), ca=False)


def _chain_error(*args: object) -> str:
    with pytest.raises(StepFailed) as err:
        _x509.build_chain(*args)  # type: ignore[arg-type]
    assert err.value.step == "chain"
    return err.value.message


def test_a_path_through_an_intermediate_ends_at_the_anchor() -> None:
    assert _x509.build_chain(LEAF, [INTER], [ROOT], NOW) == [LEAF, INTER, ROOT]
    assert _x509.build_chain(ROOT, [], [ROOT], NOW) == [ROOT]  # an anchor is its own path
    assert _x509.build_chain(LEAF, [INTER, ROOT], [ROOT], NOW) == [LEAF, INTER, ROOT]  # anchor in the pool too


def test_without_an_anchor_or_a_path_there_is_no_chain() -> None:
    assert _chain_error(LEAF, [INTER], [], NOW) == "no pinned trust anchor configured for this platform"
    other_root = _cert("other root", _key())
    assert _chain_error(LEAF, [INTER], [other_root], NOW) == (
        "no path from CN=leaf to a pinned root (issuer CN=intermediate)")


def test_an_end_entity_certificate_cannot_issue_in_the_path() -> None:
    # A leaf (CA:FALSE) that signs another certificate: a classic path-validation attack.
    rogue = _cert("rogue", _key(), ("leaf", LEAF_KEY), ca=False)
    assert _chain_error(rogue, [LEAF, INTER], [ROOT], NOW) == "CN=leaf issues certificates but is not a CA"


def test_every_certificate_must_be_valid_at_the_instant() -> None:
    assert _chain_error(LEAF, [INTER], [ROOT], NOW + timedelta(days=60)).startswith("CN=leaf is not valid at ")
    late_inter = _cert("intermediate", INTER_KEY, ("root", ROOT_KEY), start=NOW + timedelta(days=1))
    assert _chain_error(LEAF, [late_inter], [ROOT], NOW).startswith("CN=intermediate is not valid at ")


def test_the_search_is_bounded_in_depth() -> None:
    keys = [_key() for _ in range(_x509.MAX_CHAIN_DEPTH + 2)]
    names = [f"ca{i}" for i in range(len(keys))]
    root = _cert(names[0], keys[0])
    pool = [_cert(names[i], keys[i], (names[i - 1], keys[i - 1])) for i in range(1, len(keys))]
    leaf = _cert("deep leaf", _key(), (names[-1], keys[-1]), ca=False)
    assert _chain_error(leaf, pool, [root], NOW).startswith("no path from CN=deep leaf")
    short = pool[: _x509.MAX_CHAIN_DEPTH - 2]
    leaf_ok = _cert("leaf", _key(), (names[len(short)], keys[len(short)]), ca=False)
    assert len(_x509.build_chain(leaf_ok, short, [root], NOW)) == len(short) + 2


def test_load_pem_or_der_reads_both_and_load_der_names_what_failed() -> None:
    from cryptography.hazmat.primitives.serialization import Encoding

    pem = ROOT.public_bytes(Encoding.PEM) + INTER.public_bytes(Encoding.PEM)
    assert _x509.load_pem_or_der(pem) == [ROOT, INTER]
    assert _x509.load_pem_or_der(ROOT.public_bytes(Encoding.DER)) == [ROOT]
    with pytest.raises(StepFailed, match="VEK certificate is not a DER X.509 certificate") as err:
        _x509.load_der(b"\x30\x03\x02\x01\x01", "VEK certificate")
    assert err.value.step == "structure"
