"""Measurement manifest: which measurements a given build may report, per platform.

File format (JSON)::

    {"manifest": {"version": 1,
                  "build": {"git_commit": "<40 hex>", "image_digest": "sha256:<64 hex>",
                            "timestamp": "<RFC 3339>"},
                  "platforms": {"aws-nitro": [{"pcr0": "<hex>", "pcr1": "<hex>", "pcr2": "<hex>"}],
                                "sev-snp": [{"measurement": "<hex>"}], ...}},
     "signatures": {"ed25519":   {"public_key": "<hex>", "signature": "<hex>"},
                    "ml-dsa-65": {"public_key": "<hex>", "signature": "<hex>"}}}

Each platform lists accepted *reference values*; evidence matches when every key of at
least one reference value equals the same key of the evidence's ``facts["measurements"]``.
Signed bytes: ``DOMAIN + canonical JSON of "manifest"`` (sorted keys, no spaces, ASCII).
Ed25519 signs those bytes; ML-DSA-65 signs them with FIPS 204 context ``DOMAIN``.  Loading
requires **both** signatures to verify under the caller's trusted keys (hybrid: a break of
either scheme alone does not forge a manifest).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ed25519, mldsa

from ..errors import InvalidInput, MalformedEncoding

DOMAIN = b"teeprover-manifest-v1"
MAX_MANIFEST_BYTES = 1 << 20
PLATFORM_NAMES = ("aws-nitro", "sev-snp", "tdx", "gcp-vtpm", "azure", "simulated")
_HEX = re.compile(r"^(?:[0-9a-f]{2})+$")
_KEY = re.compile(r"^[a-z0-9_:.-]{1,40}$")
_COMMIT = re.compile(r"^[0-9a-f]{40}$|^[0-9a-f]{64}$")
_IMAGE = re.compile(r"^sha256:[0-9a-f]{64}$")


@dataclass(frozen=True)
class Manifest:
    git_commit: str
    image_digest: str
    timestamp: str
    platforms: dict[str, list[dict[str, str]]] = field(default_factory=dict)
    version: int = 1

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "build": {"git_commit": self.git_commit, "image_digest": self.image_digest, "timestamp": self.timestamp},
            "platforms": {p: [dict(v) for v in refs] for p, refs in self.platforms.items()},
        }

    def match(self, platform: str, measurements: dict[str, str]) -> dict[str, str] | None:
        """The first reference value all of whose entries equal ``measurements``, else ``None``."""
        for ref in self.platforms.get(platform, []):
            if all(measurements.get(k) == v for k, v in ref.items()):
                return ref
        return None


@dataclass(frozen=True)
class ManifestKeys:
    """A manifest signer's key pair: Ed25519 and ML-DSA-65."""

    ed25519: ed25519.Ed25519PrivateKey
    mldsa65: mldsa.MLDSA65PrivateKey

    @classmethod
    def generate(cls) -> ManifestKeys:
        return cls(ed25519.Ed25519PrivateKey.generate(), mldsa.MLDSA65PrivateKey.generate())

    @classmethod
    def from_seeds(cls, ed25519_seed: bytes, mldsa65_seed: bytes) -> ManifestKeys:
        return cls(
            ed25519.Ed25519PrivateKey.from_private_bytes(ed25519_seed),
            mldsa.MLDSA65PrivateKey.from_seed_bytes(mldsa65_seed),
        )

    def public(self) -> ManifestPublicKeys:
        return ManifestPublicKeys(self.ed25519.public_key(), self.mldsa65.public_key())

    def to_json(self) -> dict[str, str]:
        """Private seeds as hex (keep this file secret)."""
        return {
            "ed25519_seed": self.ed25519.private_bytes_raw().hex(),
            "ml-dsa-65_seed": self.mldsa65.private_bytes_raw().hex(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ManifestKeys:
        try:
            return cls.from_seeds(bytes.fromhex(data["ed25519_seed"]), bytes.fromhex(data["ml-dsa-65_seed"]))
        except Exception as exc:  # noqa: BLE001
            raise MalformedEncoding(f"manifest signing key file is invalid: {exc}") from None


@dataclass(frozen=True)
class ManifestPublicKeys:
    ed25519: ed25519.Ed25519PublicKey
    mldsa65: mldsa.MLDSA65PublicKey

    def to_json(self) -> dict[str, str]:
        return {"ed25519": self.ed25519.public_bytes_raw().hex(), "ml-dsa-65": self.mldsa65.public_bytes_raw().hex()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ManifestPublicKeys:
        try:
            return cls(
                ed25519.Ed25519PublicKey.from_public_bytes(bytes.fromhex(data["ed25519"])),
                mldsa.MLDSA65PublicKey.from_public_bytes(bytes.fromhex(data["ml-dsa-65"])),
            )
        except Exception as exc:  # noqa: BLE001
            raise MalformedEncoding(f"manifest public key file is invalid: {exc}") from None


def create_manifest(
    *, git_commit: str, image_digest: str, timestamp: str | datetime, platforms: dict[str, list[dict[str, str]]]
) -> Manifest:
    """Validate and build a manifest (hex values are normalised to lower case)."""
    if isinstance(timestamp, datetime):
        if timestamp.tzinfo is None:
            raise InvalidInput("manifest timestamp must be timezone-aware")
        timestamp = timestamp.isoformat().replace("+00:00", "Z")
    normalised = {p: [{k: v.lower() for k, v in ref.items()} for ref in refs] for p, refs in platforms.items()}
    return _validate(
        {
            "version": 1,
            "build": {"git_commit": git_commit, "image_digest": image_digest, "timestamp": timestamp},
            "platforms": normalised,
        }
    )


def _validate(obj: Any) -> Manifest:
    def bad(why: str) -> MalformedEncoding:
        return MalformedEncoding(f"invalid manifest: {why}")

    if not isinstance(obj, dict) or set(obj) != {"version", "build", "platforms"}:
        raise bad("expected exactly the keys version, build, platforms")
    if obj["version"] != 1 or isinstance(obj["version"], bool):
        raise bad("unsupported version")
    build = obj["build"]
    if not isinstance(build, dict) or set(build) != {"git_commit", "image_digest", "timestamp"}:
        raise bad("build must have git_commit, image_digest, timestamp")
    if not isinstance(build["git_commit"], str) or not _COMMIT.match(build["git_commit"]):
        raise bad("git_commit must be a 40- or 64-hex commit id")
    if not isinstance(build["image_digest"], str) or not _IMAGE.match(build["image_digest"]):
        raise bad("image_digest must be sha256:<64 hex>")
    try:
        datetime.fromisoformat(build["timestamp"].replace("Z", "+00:00"))
    except Exception:  # noqa: BLE001
        raise bad("timestamp must be RFC 3339") from None
    platforms = obj["platforms"]
    if not isinstance(platforms, dict):
        raise bad("platforms must be an object")
    for name, refs in platforms.items():
        if name not in PLATFORM_NAMES:
            raise bad(f"unknown platform {name!r:.40}")
        if not isinstance(refs, list) or not refs:
            raise bad(f"{name}: reference values must be a non-empty list")
        for ref in refs:
            if not isinstance(ref, dict) or not ref:
                raise bad(f"{name}: each reference value must be a non-empty object")
            for k, v in ref.items():
                if not _KEY.match(k) or not isinstance(v, str) or not _HEX.match(v):
                    raise bad(f"{name}: {k!r:.40} must map to lower-case hex")
    return Manifest(
        build["git_commit"], build["image_digest"], build["timestamp"], {p: list(r) for p, r in platforms.items()}
    )


def signing_bytes(manifest: Manifest) -> bytes:
    return DOMAIN + json.dumps(manifest.to_json(), sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def sign_manifest(manifest: Manifest, keys: ManifestKeys) -> bytes:
    """The signed manifest file (JSON, UTF-8)."""
    message = signing_bytes(manifest)
    pub = keys.public().to_json()
    doc = {
        "manifest": manifest.to_json(),
        "signatures": {
            "ed25519": {"public_key": pub["ed25519"], "signature": keys.ed25519.sign(message).hex()},
            "ml-dsa-65": {"public_key": pub["ml-dsa-65"], "signature": keys.mldsa65.sign(message, DOMAIN).hex()},
        },
    }
    return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode()


def load_manifest(data: bytes, trusted: ManifestPublicKeys) -> Manifest:
    """Parse a signed manifest; both signatures must verify under ``trusted``.

    Raises ``MalformedEncoding`` for bytes that are not a manifest and ``InvalidInput``
    when a signature or signer key is wrong.
    """
    if len(data) > MAX_MANIFEST_BYTES:
        raise MalformedEncoding("manifest too large")
    try:
        doc = json.loads(data)
    except Exception as exc:  # noqa: BLE001
        raise MalformedEncoding(f"manifest is not JSON: {exc}") from None
    if not isinstance(doc, dict) or set(doc) != {"manifest", "signatures"}:
        raise MalformedEncoding("signed manifest must have exactly manifest and signatures")
    manifest = _validate(doc["manifest"])
    sigs = doc["signatures"]
    try:
        ed_sig = bytes.fromhex(sigs["ed25519"]["signature"])
        ml_sig = bytes.fromhex(sigs["ml-dsa-65"]["signature"])
        ed_pub = bytes.fromhex(sigs["ed25519"]["public_key"])
        ml_pub = bytes.fromhex(sigs["ml-dsa-65"]["public_key"])
    except Exception:  # noqa: BLE001
        raise MalformedEncoding("signatures must hold hex public_key and signature for ed25519 and ml-dsa-65") from None
    want = trusted.to_json()
    if ed_pub.hex() != want["ed25519"] or ml_pub.hex() != want["ml-dsa-65"]:
        raise InvalidInput("manifest is signed by keys other than the trusted ones")
    message = signing_bytes(manifest)
    try:
        trusted.ed25519.verify(ed_sig, message)
    except InvalidSignature:
        raise InvalidInput("manifest Ed25519 signature does not verify") from None
    try:
        trusted.mldsa65.verify(ml_sig, message, DOMAIN)
    except InvalidSignature:
        raise InvalidInput("manifest ML-DSA-65 signature does not verify") from None
    return manifest
