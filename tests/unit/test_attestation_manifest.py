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
