"""Sealed prove requests: round trip, and every tampering or wrong key is a clear 400, never a crash."""

from __future__ import annotations

import cbor2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from teeprover import hpke
from teeprover.errors import InvalidInput, MalformedEncoding


@pytest.fixture(scope="module")
def keys() -> hpke.KeyPair:
    return hpke.generate()


def test_round_trip(keys: hpke.KeyPair) -> None:
    body = b"\x83" + b"witness" * 100
    sealed = hpke.seal(keys.public_bytes, body)
    assert hpke.is_sealed(sealed)
    assert body not in sealed
    assert hpke.open_sealed(keys, sealed) == body


def test_public_key_is_mlkem768_plus_x25519(keys: hpke.KeyPair) -> None:
    assert len(keys.public_bytes) == 1184 + 32


def test_other_key_cannot_open(keys: hpke.KeyPair) -> None:
    sealed = hpke.seal(hpke.generate().public_bytes, b"secret")
    with pytest.raises(InvalidInput, match="does not open"):
        hpke.open_sealed(keys, sealed)


def test_flipped_ciphertext_byte_is_refused(keys: hpke.KeyPair) -> None:
    sealed = bytearray(hpke.seal(keys.public_bytes, b"secret"))
    sealed[-5] ^= 1
    with pytest.raises(InvalidInput):
        hpke.open_sealed(keys, bytes(sealed))


def test_wrong_suite_is_malformed(keys: hpke.KeyPair) -> None:
    obj = cbor2.loads(hpke.seal(keys.public_bytes, b"x"))
    fields = list(obj.value)
    fields[3] = "CHACHA20_POLY1305"
    with pytest.raises(MalformedEncoding):
        hpke.open_sealed(keys, cbor2.dumps(cbor2.CBORTag(obj.tag, fields)))


def test_bad_public_key_is_refused() -> None:
    with pytest.raises(InvalidInput):
        hpke.seal(b"\x00" * 10, b"x")


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=3000))
def test_garbage_only_raises_domain_errors(keys: hpke.KeyPair, data: bytes) -> None:
    with pytest.raises((MalformedEncoding, InvalidInput)):
        hpke.open_sealed(keys, data)
