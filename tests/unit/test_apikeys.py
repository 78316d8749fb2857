"""API keys: 256-bit minimum, stored hashed, several valid at once, refusals say nothing about the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from teeprover.apikeys import KeyRing, hash_key, key_bits, new_key
from teeprover.errors import InvalidInput, Unauthenticated


def test_new_keys_carry_256_bits() -> None:
    assert key_bits(new_key()) >= 256
    assert new_key() != new_key()


def test_short_keys_are_refused_at_start() -> None:
    with pytest.raises(InvalidInput, match="too short"):
        KeyRing.from_sources(["hunter2"])
    with pytest.raises(InvalidInput):
        KeyRing.from_sources(["a" * 63])  # 63 hex digits = 252 bits
    KeyRing.from_sources(["a" * 64])


def test_rotation_with_overlap(tmp_path: Path) -> None:
    old, new = new_key(), new_key()
    hashes = tmp_path / "keys"
    hashes.write_text(f"# rotated keys\n{hash_key(old)}\n{hash_key(new)}  # added today\n")
    ring = KeyRing.from_sources([], hashes)
    ring.check(old)
    ring.check(new)
    with pytest.raises(Unauthenticated):
        ring.check(new_key())


@pytest.mark.parametrize("presented", [None, "", "tpk_wrong"])
def test_missing_or_wrong_key(presented: str | None) -> None:
    ring = KeyRing.from_sources([new_key()])
    with pytest.raises(Unauthenticated) as err:
        ring.check(presented)
    assert "tpk_wrong" not in err.value.message


def test_hash_file_must_hold_digests(tmp_path: Path) -> None:
    bad = tmp_path / "keys"
    bad.write_text("not-a-hash\n")
    with pytest.raises(InvalidInput, match="SHA-256"):
        KeyRing.from_sources([], bad)
