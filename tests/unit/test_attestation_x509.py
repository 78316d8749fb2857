"""Certificate paths (teeprover/attestation/_x509.py): what ``build_chain`` accepts as a path to a pinned root.

Real certificates made here with a small P-256 PKI: a path must end at a pinned anchor, every issuer in it (each
intermediate and the anchor) must be a CA by RFC 5280 (basicConstraints cA=TRUE, pathLenConstraint, keyCertSign when
keyUsage is present), every certificate must be valid at the injected instant, and the search is bounded in depth.
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
          *, ca: bool | None = True, days: int = 30, start: datetime = NOW - timedelta(days=1),
          path_length: int | None = None, key_cert_sign: bool | None = None) -> x509.Certificate:
    issuer_cn, issuer_key = issuer or (cn, key)
    builder = (x509.CertificateBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
               .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer_cn)]))
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(start).not_valid_after(start + timedelta(days=days)))
    if ca is not None:
        builder = builder.add_extension(x509.BasicConstraints(ca=ca, path_length=path_length), critical=True)
    if key_cert_sign is not None:  # keyUsage present: digitalSignature and cRLSign set, keyCertSign as given
        builder = builder.add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False, data_encipherment=False,
            key_agreement=False, key_cert_sign=key_cert_sign, crl_sign=True, encipher_only=False,
            decipher_only=False), critical=True)
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


def test_an_intermediate_without_basic_constraints_is_not_a_ca() -> None:
    # RFC 5280 §4.2.1.9 / §6.1.4 (k): an issuer is a CA only by basicConstraints cA=TRUE; absence is not enough.
    bare = _cert("intermediate", INTER_KEY, ("root", ROOT_KEY), ca=None)
    assert _chain_error(LEAF, [bare], [ROOT], NOW) == (
        "CN=intermediate issues certificates but has no basicConstraints extension (not a CA)")
    # A leaf with no basicConstraints that signs another "leaf": refused the same way.
    plain_leaf_key = _key()
    plain_leaf = _cert("plain leaf", plain_leaf_key, ("intermediate", INTER_KEY), ca=None)
    forged = _cert("forged", _key(), ("plain leaf", plain_leaf_key), ca=None)
    assert _x509.build_chain(plain_leaf, [INTER], [ROOT], NOW) == [plain_leaf, INTER, ROOT]  # fine as a leaf
    assert _chain_error(forged, [plain_leaf, INTER], [ROOT], NOW) == (
        "CN=plain leaf issues certificates but has no basicConstraints extension (not a CA)")


def test_an_intermediate_with_ca_false_is_not_a_ca() -> None:
    not_ca = _cert("intermediate", INTER_KEY, ("root", ROOT_KEY), ca=False)
    assert _chain_error(LEAF, [not_ca], [ROOT], NOW) == "CN=intermediate issues certificates but is not a CA"


def test_the_anchor_must_be_a_ca_too() -> None:
    # Every real pinned root carries basicConstraints cA=TRUE (checked in the module docstring's survey).
    bare_root = _cert("root", ROOT_KEY, ca=None)
    assert _chain_error(LEAF, [INTER], [bare_root], NOW) == (
        "CN=root issues certificates but has no basicConstraints extension (not a CA)")
    assert _chain_error(INTER, [], [_cert("root", ROOT_KEY, ca=False)], NOW) == (
        "CN=root issues certificates but is not a CA")


def test_path_length_constraint_counts_the_intermediates_below() -> None:
    # RFC 5280 §4.2.1.9, §6.1.4 (l)/(m): pathLenConstraint = how many non-self-issued intermediates may follow.
    root0 = _cert("root", ROOT_KEY, path_length=0)
    assert _x509.build_chain(INTER, [], [root0], NOW) == [INTER, root0]  # an end entity right below: allowed
    assert _chain_error(LEAF, [INTER], [root0], NOW) == (
        "CN=root allows 0 intermediate CA certificate(s) below it (pathLenConstraint) but the path has 1")
    root1 = _cert("root", ROOT_KEY, path_length=1)
    assert _x509.build_chain(LEAF, [INTER], [root1], NOW) == [LEAF, INTER, root1]
    sub_key = _key()
    sub = _cert("sub", sub_key, ("intermediate", INTER_KEY))
    deep_leaf = _cert("deep leaf", _key(), ("sub", sub_key), ca=False)
    assert _chain_error(deep_leaf, [sub, INTER], [root1], NOW) == (
        "CN=root allows 1 intermediate CA certificate(s) below it (pathLenConstraint) but the path has 2")
    inter0 = _cert("intermediate", INTER_KEY, ("root", ROOT_KEY), path_length=0)
    assert _chain_error(deep_leaf, [sub, inter0], [ROOT], NOW) == (
        "CN=intermediate allows 0 intermediate CA certificate(s) below it (pathLenConstraint) but the path has 1")
    # A self-issued intermediate (key rollover: same name, new key) is not counted.
    rolled_key = _key()
    rolled = _cert("intermediate", rolled_key, ("intermediate", INTER_KEY))
    rolled_leaf = _cert("leaf", _key(), ("intermediate", rolled_key), ca=False)
    assert _x509.build_chain(rolled_leaf, [rolled, INTER], [root1], NOW) == [rolled_leaf, rolled, INTER, root1]


def test_key_usage_without_key_cert_sign_cannot_issue() -> None:
    # RFC 5280 §4.2.1.3, §6.1.4 (n): when keyUsage is present, keyCertSign must be asserted to sign certificates.
    no_kcs = _cert("intermediate", INTER_KEY, ("root", ROOT_KEY), key_cert_sign=False)
    assert _chain_error(LEAF, [no_kcs], [ROOT], NOW) == (
        "CN=intermediate issues certificates but its keyUsage lacks keyCertSign")
    with_kcs = _cert("intermediate", INTER_KEY, ("root", ROOT_KEY), key_cert_sign=True)
    assert _x509.build_chain(LEAF, [with_kcs], [ROOT], NOW) == [LEAF, with_kcs, ROOT]
    assert _chain_error(LEAF, [INTER], [_cert("root", ROOT_KEY, key_cert_sign=False)], NOW) == (
        "CN=root issues certificates but its keyUsage lacks keyCertSign")


def test_a_refused_issuer_does_not_hide_a_valid_one() -> None:
    # Two certificates for the intermediate's key: the search passes over the one that is not a CA.
    not_ca = _cert("intermediate", INTER_KEY, ("root", ROOT_KEY), ca=False)
    assert _x509.build_chain(LEAF, [not_ca, INTER], [ROOT], NOW) == [LEAF, INTER, ROOT]


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


@pytest.mark.parametrize("platform", ["aws-nitro", "sev-snp", "tdx", "gcp-vtpm"])
def test_every_pinned_vendor_issuer_is_a_ca_without_exceptions(platform: str) -> None:
    # The rule has no vendor exception because every pinned root and intermediate meets it (the real sample chains
    # themselves are verified in test_attestation_samples.py).
    from teeprover.attestation.roots import default_roots

    roots = default_roots(platform)
    for cert in (*roots.anchors, *roots.intermediates):
        assert _x509._ca_problem(cert, [LEAF]) is None, _x509._name(cert)
