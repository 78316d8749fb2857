"""snarkjs Groth16 ``.zkey`` files over BLS12-381 (binfile ``zkey`` v1) <-> :class:`ProvingKey`.

Layout, as ``snarkjs/src/zkey_new.js`` writes it and ``zkey_utils.js:readZKey`` reads it:

====  =====================================================================================
 1    protocol id u32 (1 = Groth16)
 2    ``n8q u32 || q[n8q] || n8r u32 || r[n8r] || nVars u32 || nPublic u32 ||
      domainSize u32 || alpha1 || beta1 || beta2 || gamma2 || delta1 || delta2``
 3    IC: ``nPublic + 1`` G1 points
 4    ``nCoefs u32`` then ``nCoefs x (matrix u32 || constraint u32 || signal u32 || value[n8r])``
 5-9  A (nVars G1), B1 (nVars G1), B2 (nVars G2), C (nVars - nPublic - 1 G1), H (domainSize G1)
 10   MPC contributions (not needed to prove; ignored)
====  =====================================================================================

Points are ffjavascript's ``toRprLEM``: affine ``x || y``, each base-field coordinate
48 bytes little-endian in Montgomery form (``x * 2^384 mod q``; G2 coordinates as
``c0 || c1``), the identity all zeros.  Section-4 values are "Montgomery twice":
``zkey_new.js`` stores ``v * R^2 mod r`` (``R = 2^256``) in standard form, and
``readZKey`` multiplies by ``R^-2``.  So do we.

Strict: sizes are checked against the bytes present before any point is decoded,
coordinates must be ``< q`` and on the curve, the header's primes must be
BLS12-381's; anything else raises :class:`~teeprover.errors.MalformedEncoding`.
The verifying-key points (alpha, beta, gamma, delta, IC, beta1, delta1) are also
checked to be in the prime-order subgroup; the bulk queries are checked only with
``check_subgroup=True`` (a wrong bulk point can only make our own proof fail,
and :mod:`teeprover.snarkjs.interop` verifies every proof before returning it).

Fast path: no square roots.  Each section's coordinates go from Montgomery to
standard form natively and then into the curve adapter's bulk affine constructors
(:func:`teeprover.curve.g1s_from_montgomery` / :func:`~teeprover.curve.g2s_from_montgomery`:
native curve-equation check, ~1 us a point).
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from teeprover import curve
from teeprover.curve import P, R
from teeprover.errors import MalformedEncoding
from teeprover.groth16 import qap
from teeprover.groth16.setup import KeyXY
from teeprover.groth16.types import Coeff, ProvingKey, VerifyingKey
from teeprover.snarkjs import _binfile

GROTH16_PROTOCOL_ID = 1
MAX_VARIABLES = 1 << 28
MAX_DOMAIN = 1 << 28
MAX_COEFFS = 1 << 30

_WHAT = "zkey"
_N8Q, _N8R = 48, 32
_G1S, _G2S = 2 * _N8Q, 4 * _N8Q
_RR = pow(2, 8 * _N8R, R)
_RR2_INV = pow(_RR * _RR, -1, R)


# --- points ------------------------------------------------------------------------

def _standard_form(buf: bytes | memoryview, what: str) -> bytes:
    """48-byte Montgomery coordinates -> 48-byte standard form (both LE); each must be < q."""
    return curve.fq_from_montgomery(buf, f"{_WHAT}: {what}:")


def _g1_array(buf: bytes | memoryview, count: int, what: str, check_subgroup: bool) -> tuple[curve.G1, ...]:
    if len(buf) != count * _G1S:
        raise MalformedEncoding(f"{_WHAT}: {what} has {len(buf)} bytes, expected {count} G1 points")
    try:
        if not check_subgroup:  # the bulk queries
            return curve.g1s_from_montgomery(buf)
        return curve.g1s_from_xy(_standard_form(buf, what), check_subgroup=check_subgroup)
    except MalformedEncoding as exc:
        raise MalformedEncoding(f"{_WHAT}: {what}: {exc.message}") from exc


def _g2_array(buf: bytes | memoryview, count: int, what: str, check_subgroup: bool) -> tuple[curve.G2, ...]:
    if len(buf) != count * _G2S:
        raise MalformedEncoding(f"{_WHAT}: {what} has {len(buf)} bytes, expected {count} G2 points")
    try:
        if not check_subgroup:
            return curve.g2s_from_montgomery(buf)
        return curve.g2s_from_xy(_standard_form(buf, what), check_subgroup=check_subgroup)
    except MalformedEncoding as exc:
        raise MalformedEncoding(f"{_WHAT}: {what}: {exc.message}") from exc


# --- reading -------------------------------------------------------------------------

def parse_zkey(data: bytes | bytearray | memoryview, *, check_subgroup: bool = False) -> ProvingKey:
    """Decode a snarkjs Groth16 BLS12-381 ``.zkey`` (see the module docstring for the checks)."""
    return _decode(_binfile.parse(data, "zkey", versions=(1,), what=_WHAT), check_subgroup)


def read_zkey(path: str | Path, *, check_subgroup: bool = False) -> ProvingKey:
    """Read and decode a ``.zkey`` (one section at a time: the file is never whole in memory).
    :class:`ZkeyChunks` reads it a chunk of points at a time instead."""
    return _decode(_binfile.read_path(path, "zkey", versions=(1,), what=_WHAT), check_subgroup)


@dataclass(frozen=True)
class _Header:
    vk: VerifyingKey
    beta_g1: curve.G1
    delta_g1: curve.G1
    num_variables: int
    num_public: int
    domain_size: int


def _header(bf: _binfile.BinFile) -> _Header:
    """Sections 1-3 decoded and checked, and every other section's size checked against them."""
    s1 = _binfile.Reader(bf.section(1, what=_WHAT), f"{_WHAT} header")
    protocol = s1.u32()
    s1.end()
    if protocol != GROTH16_PROTOCOL_ID:
        raise MalformedEncoding(f"{_WHAT}: protocol {protocol} is not Groth16 (only Groth16 keys are supported)")

    hd = _binfile.Reader(bf.section(2, what=_WHAT), f"{_WHAT} Groth16 header")
    n8q = hd.u32()
    if n8q != _N8Q or hd.int_le(n8q) != P:
        raise MalformedEncoding(f"{_WHAT}: base field is not BLS12-381's q")
    n8r = hd.u32()
    if n8r != _N8R or hd.int_le(n8r) != R:
        raise MalformedEncoding(f"{_WHAT}: scalar field is not BLS12-381's r")
    n_vars, n_pub, n = hd.u32(), hd.u32(), hd.u32()
    if not (1 <= n_vars <= MAX_VARIABLES and n_pub + 1 <= n_vars):
        raise MalformedEncoding(f"{_WHAT}: inconsistent sizes ({n_vars} variables, {n_pub} public)")
    if n == 0 or n & (n - 1) or n > MAX_DOMAIN:
        raise MalformedEncoding(f"{_WHAT}: domain size {n} is not a supported power of two")

    def g1(what: str) -> curve.G1:
        return _g1_array(hd.bytes(_G1S), 1, what, True)[0]

    def g2(what: str) -> curve.G2:
        return _g2_array(hd.bytes(_G2S), 1, what, True)[0]

    alpha1, beta1, beta2, gamma2, delta1, delta2 = (
        g1("alpha1"), g1("beta1"), g2("beta2"), g2("gamma2"), g1("delta1"), g2("delta2"))
    hd.end()

    # Check every section's size before decoding any bulk point.  The bodies are then read one at a
    # time (from a file: read_path), so the whole file is never in memory at once.
    expect = {3: (n_pub + 1) * _G1S, 5: n_vars * _G1S, 6: n_vars * _G1S, 7: n_vars * _G2S,
              8: (n_vars - n_pub - 1) * _G1S, 9: n * _G1S}
    for i, size in expect.items():
        if (got := bf.size(i, what=_WHAT)) != size:
            raise MalformedEncoding(f"{_WHAT}: section {i} has {got} bytes, expected {size}")

    n4 = bf.size(4, what=_WHAT)
    if n4 < 4 or n4 != 4 + int.from_bytes(bf.read(4, 0, 4, what=_WHAT), "little") * _COEF.size:
        raise MalformedEncoding(f"{_WHAT}: section 4 does not hold its coefficient count")
    ic = _g1_array(bf.section(3, what=_WHAT), n_pub + 1, "IC", True)
    vk = VerifyingKey(alpha_g1=alpha1, beta_g2=beta2, gamma_g2=gamma2, delta_g2=delta2, ic=ic)
    return _Header(vk, beta1, delta1, n_vars, n_pub, n)


def _decode(bf: _binfile.BinFile, check_subgroup: bool) -> ProvingKey:
    h = _header(bf)
    vk, beta1, delta1, n_vars, n_pub, n = h.vk, h.beta_g1, h.delta_g1, h.num_variables, h.num_public, h.domain_size
    q: dict[str, tuple[Any, ...]] = {}
    for name, i, count, what in (("b2", 7, n_vars, "B2"), ("a", 5, n_vars, "A"), ("b1", 6, n_vars, "B1"),
                                 ("c", 8, n_vars - n_pub - 1, "C"), ("h", 9, n, "H")):
        q[name] = (_g2_array if i == 7 else _g1_array)(bf.section_bytes(i, what=_WHAT), count, what, check_subgroup)
    coeffs = _coeffs(bf.section(4, what=_WHAT), n, n_vars)
    return ProvingKey(
        vk=vk, beta_g1=beta1, delta_g1=delta1,
        num_variables=n_vars, num_public=n_pub, domain_size=n, coeffs=coeffs,
        a_query=q["a"], b_g1_query=q["b1"], b_g2_query=q["b2"], c_query=q["c"], h_query=q["h"],
    )


_COEF = struct.Struct("<III32s")

# query name -> (section, points are in G2)
_QUERIES = {"b2": (7, True), "a": (5, False), "b1": (6, False), "c": (8, False), "h": (9, False)}


class ZkeyChunks:
    """A ``.zkey`` read a piece at a time: the header and verifying key decoded and every size checked
    up front (as :func:`read_zkey`), then each bulk query in chunks of points
    (:meth:`chunks`), read from the file only when asked, so a prover that drops each chunk once its MSM
    is done holds a bounded part of the key whatever its size.  Implements
    :class:`teeprover.groth16.prove.KeyChunks`."""

    def __init__(self, path: str | Path) -> None:
        self._bf = _binfile.read_path(path, "zkey", versions=(1,), what=_WHAT)
        h = _header(self._bf)
        self.vk, self.beta_g1, self.delta_g1 = h.vk, h.beta_g1, h.delta_g1
        self.num_variables, self.num_public, self.domain_size = h.num_variables, h.num_public, h.domain_size

    def query_length(self, name: str) -> int:
        sec, g2 = _QUERIES[name]
        return self._bf.size(sec, what=_WHAT) // (_G2S if g2 else _G1S)

    def chunks(self, name: str, points: int) -> Iterator[tuple[int, tuple[Any, ...], list[int]]]:
        """``(first index, points, indices of the identity points in the chunk)`` for query ``name``
        ("a", "b1", "b2", "c", "h"), ``points`` at a time, in order; coordinates are checked as in
        :func:`read_zkey` (below p, on the curve; no subgroup check)."""
        sec, g2 = _QUERIES[name]
        size = _G2S if g2 else _G1S
        total = self.query_length(name)
        for start in range(0, total, points):
            count = min(points, total - start)
            raw = self._bf.read(sec, start * size, count * size, what=_WHAT)
            pts = (_g2_array if g2 else _g1_array)(raw, count, name.upper(), False)
            yield start, pts, curve.zero_chunks(raw, size)

    def coefficients(self) -> memoryview:
        """Section 4 undecoded (its size was checked against its count)."""
        return self._bf.section(4, what=_WHAT)


def _coeffs(buf: memoryview, n: int, n_vars: int) -> tuple[Coeff, ...]:
    rd = _binfile.Reader(buf, f"{_WHAT} coefficients")
    count = rd.u32()
    if count > MAX_COEFFS or rd.remaining() != count * _COEF.size:
        raise MalformedEncoding(f"{_WHAT}: section 4 does not hold {count} coefficients")
    frm = int.from_bytes
    k, r = _RR2_INV, R
    out = []
    seen: dict[bytes, int] = {}  # circuits repeat a few values (1, -1, powers of two): convert each once
    for m, c, s, v in _COEF.iter_unpack(rd.bytes(count * _COEF.size)):
        if m > 1 or c >= n or s >= n_vars:
            raise MalformedEncoding(f"{_WHAT}: coefficient (matrix {m}, constraint {c}, signal {s}) out of range")
        val = seen.get(v)
        if val is None:
            raw = frm(v, "little")
            if raw >= r:
                raise MalformedEncoding(f"{_WHAT}: coefficient is not reduced modulo r")
            val = seen[v] = raw * k % r
        out.append(Coeff(m, c, s, val))
    return tuple(out)


# --- writing ---------------------------------------------------------------------------

def _g1s_to_lem(pts: tuple[curve.G1, ...] | list[curve.G1]) -> bytes:
    """Many points in zkey form: affine bytes from the curve library, into Montgomery form natively."""
    return curve.to_montgomery(curve.g1s_to_xy(pts))


def _g2s_to_lem(pts: tuple[curve.G2, ...] | list[curve.G2]) -> bytes:
    return curve.to_montgomery(curve.g2s_to_xy(pts))


_POINTS_PER_PIECE = 1 << 16  # sections are encoded and written in pieces: the file is never whole in memory
_RR2 = _RR * _RR % R
_Pieces = Callable[[], Iterator[bytes]]
# section 4's records as a numpy structure (the layout of _COEF), for keys whose entries are arrays
_COEF_DTYPE = np.dtype([("m", "<u4"), ("c", "<u4"), ("s", "<u4"), ("v", "u1", (_N8R,))])
assert _COEF_DTYPE.itemsize == _COEF.size


def _layout(n_vars: int, n_pub: int, n: int, header_xy: tuple[bytes, bytes, bytes], n_coeffs: int,
            coeffs: _Pieces, queries: list[tuple[int, int, int, _Pieces]]) -> list[tuple[int, int, _Pieces]]:
    """``(section, size, pieces)`` in file order; ``pieces()`` yields the body's bytes in order.
    ``header_xy``: affine standard-form bytes of ``alpha1 || beta1``, ``beta2 || gamma2``,
    ``delta1 || delta2`` (section 2's points, in its order); ``queries``: ``(section, points, point size,
    pieces)`` for sections 3 and 5-9, in file order."""
    g1_ab, g2_bg, d12 = header_xy
    s2 = (struct.pack("<I", _N8Q) + P.to_bytes(_N8Q, "little") + struct.pack("<I", _N8R) + R.to_bytes(_N8R, "little")
          + struct.pack("<III", n_vars, n_pub, n) + curve.to_montgomery(g1_ab) + curve.to_montgomery(g2_bg)
          + curve.to_montgomery(d12))
    return [
        (1, 4, lambda: iter([struct.pack("<I", GROTH16_PROTOCOL_ID)])), (2, len(s2), lambda: iter([s2])),
        (4, 4 + n_coeffs * _COEF.size, coeffs),
        *[(sec, count * size, pieces) for sec, count, size, pieces in queries],
        (10, 68, lambda: iter([bytes(64) + struct.pack("<I", 0)])),
    ]


def _sections(pk: ProvingKey) -> list[tuple[int, int, _Pieces]]:
    """The layout of a key of point objects (each piece encoded when it is written)."""
    vk = pk.vk

    def coeffs() -> Iterator[bytes]:
        yield qap.coeff_records(pk.coeffs)

    def points(sec: int, pts: tuple[Any, ...], g2: bool) -> tuple[int, int, int, _Pieces]:
        enc = _g2s_to_lem if g2 else _g1s_to_lem
        return (sec, len(pts), _G2S if g2 else _G1S,
                lambda: (enc(pts[i:i + _POINTS_PER_PIECE]) for i in range(0, len(pts), _POINTS_PER_PIECE)))

    header = (curve.g1s_to_xy([vk.alpha_g1, pk.beta_g1]), curve.g2s_to_xy([vk.beta_g2, vk.gamma_g2]),
              curve.g1s_to_xy([pk.delta_g1]) + curve.g2s_to_xy([vk.delta_g2]))
    return _layout(pk.num_variables, pk.num_public, pk.domain_size, header, len(pk.coeffs), coeffs,
                   [points(3, vk.ic, False), points(5, pk.a_query, False), points(6, pk.b_g1_query, False),
                    points(7, pk.b_g2_query, True), points(8, pk.c_query, False), points(9, pk.h_query, False)])


def _sections_xy(key: KeyXY) -> list[tuple[int, int, _Pieces]]:
    """The layout of a key of byte arrays: each piece of points goes to Montgomery form natively, the
    coefficients are packed by numpy (no object a point or an entry)."""
    ab = key.matrices.ab

    def coeffs() -> Iterator[bytes]:
        yield struct.pack("<I", len(ab))
        one = np.frombuffer(_RR2.to_bytes(_N8R, "little"), np.uint8)
        minus_one = np.frombuffer((R - _RR2).to_bytes(_N8R, "little"), np.uint8)
        for i in range(0, len(ab), _POINTS_PER_PIECE):
            j = min(i + _POINTS_PER_PIECE, len(ab))
            rec = np.empty(j - i, _COEF_DTYPE)
            rec["m"], rec["c"], rec["s"] = ab.matrix[i:j], ab.constraint[i:j], ab.signal[i:j]
            unit, v = ab.unit[i:j], rec["v"]
            v[unit == 1] = one
            v[unit == -1] = minus_one
            for k in np.flatnonzero(unit == 0).tolist():
                v[k] = np.frombuffer((ab.coefficient(i + k) * _RR2 % R).to_bytes(_N8R, "little"), np.uint8)
            yield rec.tobytes()

    def points(sec: int, xy: bytes, g2: bool) -> tuple[int, int, int, _Pieces]:
        size = _G2S if g2 else _G1S
        view = memoryview(xy)
        step = _POINTS_PER_PIECE * size
        return (sec, len(xy) // size, size,
                lambda: (curve.to_montgomery(view[i:i + step]) for i in range(0, len(view), step)))

    if len(ab) and (int(ab.constraint.max()) >= key.domain_size or int(ab.signal.max()) >= key.num_variables):
        raise ValueError("coefficient outside the key's domain or variables")
    header = (key.alpha_g1 + key.beta_g1, key.beta_g2 + key.gamma_g2, key.delta_g1 + key.delta_g2)
    return _layout(key.num_variables, key.num_public, key.domain_size, header, len(ab), coeffs,
                   [points(3, key.ic, False), points(5, key.a_query, False), points(6, key.b_g1_query, False),
                    points(7, key.b_g2_query, True), points(8, key.c_query, False), points(9, key.h_query, False)])


def _write_sections(out: Callable[[bytes], Any], sections: list[tuple[int, int, _Pieces]]) -> None:
    out(struct.pack("<4sII", b"zkey", 1, len(sections)))
    for sec, size, pieces in sections:
        out(struct.pack("<IQ", sec, size))
        written = 0
        for piece in pieces():
            out(piece)
            written += len(piece)
        assert written == size, (sec, written, size)


def zkey_to_bytes(pk: ProvingKey) -> bytes:
    """A ``.zkey`` snarkjs reads (``groth16 prove``, ``zkey export verificationkey``).

    Section 10 carries an all-zero circuit hash and no contributions: fine for
    proving and exporting, but ``snarkjs zkey verify`` will (rightly) not vouch for it.
    """
    buf = bytearray()
    _write_sections(buf.extend, _sections(pk))
    return bytes(buf)


def _write_file(path: str | Path, sections: list[tuple[int, int, _Pieces]]) -> None:
    tmp = Path(str(path) + ".tmp")
    with open(tmp, "wb") as f:
        _write_sections(f.write, sections)
    tmp.replace(path)


def write_zkey(path: str | Path, pk: ProvingKey) -> None:
    """:func:`zkey_to_bytes` straight to ``path``, a section piece at a time (a k=20 key is ~700 MB)."""
    _write_file(path, _sections(pk))


def write_zkey_xy(path: str | Path, key: KeyXY) -> None:
    """The same file from a key of byte arrays (:func:`teeprover.groth16.setup.setup_xy`), streamed a
    piece at a time without a point object: how a k=22 key (~2.9 GB of points) is written."""
    _write_file(path, _sections_xy(key))


__all__ = ["parse_zkey", "read_zkey", "ZkeyChunks", "zkey_to_bytes", "write_zkey", "write_zkey_xy",
           "GROTH16_PROTOCOL_ID"]
