"""snarkjs/circom ``.wtns`` witness files (binfile ``wtns`` v2) <-> a list of field elements.

Sections (``snarkjs/src/wtns_utils.js``): 1 header ``n8 u32 || prime[n8] || nWitness
u32``; 2 ``nWitness`` values of ``n8`` bytes, little-endian standard form.  The
prime must be BLS12-381's ``r`` and every value reduced; otherwise MalformedEncoding.

:func:`read_wtns_bytes` keeps the values as the file has them (one buffer of 32-byte values, checked
natively): what the streamed prover takes, ~32 B a value against ~64 B for an int and its list slot.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from pathlib import Path

from teeprover import curve
from teeprover.errors import MalformedEncoding
from teeprover.r1cs import R
from teeprover.snarkjs import _binfile

MAX_WITNESS = 1 << 28
_FR_BYTES = 32
_WHAT = "wtns"


def parse_wtns(data: bytes | bytearray | memoryview) -> list[int]:
    """Decode a ``.wtns`` file into the full witness ``[1, public..., private...]``."""
    return _decode(_binfile.parse(data, "wtns", versions=(1, 2), what=_WHAT))


def read_wtns(path: str | Path) -> list[int]:
    return _decode(_binfile.read_path(path, "wtns", versions=(1, 2), what=_WHAT))


def read_wtns_bytes(path: str | Path) -> bytes:
    """The witness of a ``.wtns`` file as its 32-byte little-endian values (each checked < r), not ints."""
    return _values(_binfile.read_path(path, "wtns", versions=(1, 2), what=_WHAT))


def _decode(bf: _binfile.BinFile) -> list[int]:
    return curve.fr_vector_from_bytes(_values(bf))


def _values(bf: _binfile.BinFile) -> bytes:
    hd = _binfile.Reader(bf.section(1, what=_WHAT), f"{_WHAT} header")
    n8 = hd.u32()
    if n8 != _FR_BYTES:
        raise MalformedEncoding(f"{_WHAT}: field elements of {n8} bytes: not the BLS12-381 scalar field")
    if hd.int_le(n8) != R:
        raise MalformedEncoding(f"{_WHAT}: prime is not BLS12-381's r")
    n = hd.u32()
    hd.end()
    if n > MAX_WITNESS:
        raise MalformedEncoding(f"{_WHAT}: {n} values is above the supported maximum")
    body = bf.section(2, what=_WHAT)
    if len(body) != n * _FR_BYTES:
        raise MalformedEncoding(f"{_WHAT}: section 2 has {len(body)} bytes, expected {n * _FR_BYTES}")
    raw = body.tobytes()
    curve.fr_check_vector(raw, f"{_WHAT}: section 2")  # MalformedEncoding naming the first value >= r
    return raw


def wtns_to_bytes(witness: Sequence[int]) -> bytes:
    header = struct.pack("<I", _FR_BYTES) + R.to_bytes(32, "little") + struct.pack("<I", len(witness))
    body = b"".join((x % R).to_bytes(32, "little") for x in witness)
    return _binfile.build("wtns", 2, [(1, header), (2, body)])


__all__ = ["parse_wtns", "read_wtns", "read_wtns_bytes", "wtns_to_bytes", "MAX_WITNESS"]
