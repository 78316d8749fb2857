"""Manifest: both Ed25519 and ML-DSA-65 must verify; tampering or the wrong signer is refused."""

from __future__ import annotations

import json

import pytest

from teeprover.attestation import ManifestKeys, create_manifest, load_manifest, sign_manifest
from teeprover.errors import InvalidInput, MalformedEncoding

REF = {"pcr0": "ab" * 48, "pcr1": "cd" * 48}


@pytest.fixture(scope="module")
def keys() -> ManifestKeys:
    return ManifestKeys.from_seeds(bytes(range(32)), bytes(range(32, 64)))


def make():
    return create_manifest(
        git_commit="0123456789abcdef0123456789abcdef01234567",
        image_digest="sha256:" + "ef" * 32,
        timestamp="2025-01-02T03:04:05Z",
        platforms={"aws-nitro": [REF]},
    )


def test_signed_manifest_round_trips(keys) -> None:
    loaded = load_manifest(sign_manifest(make(), keys), keys.public())
    assert loaded == make() and loaded.match("aws-nitro", {**REF, "pcr4": "00"}) == REF
    assert loaded.match("aws-nitro", {"pcr0": REF["pcr0"]}) is None


@pytest.mark.parametrize("scheme", ["ed25519", "ml-dsa-65"])
def test_manifest_with_one_bad_signature_is_refused(keys, scheme: str) -> None:
    doc = json.loads(sign_manifest(make(), keys))
    sig = bytearray(bytes.fromhex(doc["signatures"][scheme]["signature"]))
    sig[3] ^= 1
    doc["signatures"][scheme]["signature"] = sig.hex()
    with pytest.raises(InvalidInput, match="signature does not verify"):
        load_manifest(json.dumps(doc).encode(), keys.public())


def test_tampered_measurement_is_refused(keys) -> None:
    doc = json.loads(sign_manifest(make(), keys))
    doc["manifest"]["platforms"]["aws-nitro"][0]["pcr0"] = "00" * 48
    with pytest.raises(InvalidInput):
        load_manifest(json.dumps(doc).encode(), keys.public())


def test_manifest_from_another_signer_is_refused(keys) -> None:
    with pytest.raises(InvalidInput, match="other than the trusted"):
        load_manifest(sign_manifest(make(), ManifestKeys.generate()), keys.public())


def test_key_files_round_trip(keys) -> None:
    assert ManifestKeys.from_json(keys.to_json()).public().to_json() == keys.public().to_json()


@pytest.mark.parametrize("bad", [b"not json", b"{}", b'{"manifest": {}, "signatures": {}}'])
def test_malformed_manifest_raises_malformed(keys, bad: bytes) -> None:
    with pytest.raises(MalformedEncoding):
        load_manifest(bad, keys.public())


def test_create_manifest_validates_fields() -> None:
    with pytest.raises(MalformedEncoding):
        create_manifest(
            git_commit="xyz", image_digest="sha256:" + "0" * 64, timestamp="2025-01-01T00:00:00Z", platforms={}
        )
    with pytest.raises(MalformedEncoding):
        create_manifest(
            git_commit="a" * 40,
            image_digest="sha256:" + "0" * 64,
            timestamp="2025-01-01T00:00:00Z",
            platforms={"aws-nitro": [{"pcr0": "not hex"}]},
        )


def _signed_doc(keys: ManifestKeys) -> dict:
    return json.loads(sign_manifest(make(), keys))


@pytest.mark.parametrize(("edit", "message"), [
    (lambda m: m.update(version=2), "invalid manifest: unsupported version"),
    (lambda m: m.update(version=True), "invalid manifest: unsupported version"),
    (lambda m: m.update(extra=1), "invalid manifest: expected exactly the keys version, build, platforms"),
    (lambda m: m["build"].pop("timestamp"), "invalid manifest: build must have git_commit, image_digest, timestamp"),
    (lambda m: m["build"].update(image_digest="sha256:xyz"), "invalid manifest: image_digest must be sha256:<64 hex>"),
    (lambda m: m["build"].update(timestamp="yesterday"), "invalid manifest: timestamp must be RFC 3339"),
    (lambda m: m["build"].update(timestamp=20250101), "invalid manifest: timestamp must be RFC 3339"),
    (lambda m: m.update(platforms=[]), "invalid manifest: platforms must be an object"),
    (lambda m: m.update(platforms={"sgx": [REF]}), "invalid manifest: unknown platform 'sgx'"),
    (lambda m: m.update(platforms={"aws-nitro": []}), "aws-nitro: reference values must be a non-empty list"),
    (lambda m: m.update(platforms={"aws-nitro": [{}]}), "aws-nitro: each reference value must be a non-empty object"),
    (lambda m: m.update(platforms={"aws-nitro": [{"pcr0": "AB"}]}), "aws-nitro: 'pcr0' must map to lower-case hex"),
])
def test_each_manifest_rule_is_named(keys, edit, message: str) -> None:
    doc = _signed_doc(keys)
    edit(doc["manifest"])
    with pytest.raises(MalformedEncoding, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_manifest(json.dumps(doc).encode(), keys.public())


@pytest.mark.parametrize("edit", [
    lambda s: s.pop("ml-dsa-65"),
    lambda s: s["ed25519"].update(signature="zz"),
    lambda s: s["ed25519"].pop("public_key"),
])
def test_signatures_without_hex_key_and_signature_per_scheme_are_malformed(keys, edit) -> None:
    doc = _signed_doc(keys)
    edit(doc["signatures"])
    with pytest.raises(MalformedEncoding, match="signatures must hold hex public_key and signature"):
        load_manifest(json.dumps(doc).encode(), keys.public())


def test_an_oversized_manifest_is_refused_before_parsing(keys) -> None:
    with pytest.raises(MalformedEncoding, match="manifest too large"):
        load_manifest(b" " * (1 << 20) + b"{}", keys.public())


def test_key_files_that_are_not_keys_are_malformed() -> None:
    from teeprover.attestation.manifest import ManifestPublicKeys

    with pytest.raises(MalformedEncoding, match="manifest signing key file is invalid"):
        ManifestKeys.from_json({"ed25519_seed": "00"})
    with pytest.raises(MalformedEncoding, match="manifest public key file is invalid"):
        ManifestPublicKeys.from_json({"ed25519": "00" * 32, "ml-dsa-65": "00"})


def test_create_manifest_takes_an_aware_datetime_and_normalises_hex() -> None:
    from datetime import UTC, datetime

    made = create_manifest(git_commit="a" * 40, image_digest="sha256:" + "0" * 64,
                           timestamp=datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC),
                           platforms={"aws-nitro": [{"pcr0": "AB" * 48}]})
    assert made.to_json()["build"]["timestamp"] == "2025-01-02T03:04:05Z"
    assert made.match("aws-nitro", {"pcr0": "ab" * 48}) == {"pcr0": "ab" * 48}
    with pytest.raises(InvalidInput, match="manifest timestamp must be timezone-aware"):
        create_manifest(git_commit="a" * 40, image_digest="sha256:" + "0" * 64,
                        timestamp=datetime(2025, 1, 2), platforms={})
