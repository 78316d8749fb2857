"""circom ``.r1cs`` files (binfile ``r1cs`` v1) <-> :class:`teeprover.r1cs.R1CS`.

Sections (``r1csfile``): 1 header ``n8 u32 || prime[n8] || nWires u32 || nPubOut u32
|| nPubIn u32 || nPrvIn u32 || nLabels u64 || nConstraints u32``; 2 constraints, each
``A, B, C`` as ``n u32`` then ``n x (wire u32 || coeff[n8])`` with coefficients in
standard (not Montgomery) little-endian form; 3 wire-to-label map (``u64`` per
wire, not needed for proving); 4/5 custom gates (PLONK only: refused).

Wire 0 is the constant one, then the public outputs, then the public inputs: the
variable layout of :mod:`teeprover.r1cs`.  The field must be BLS12-381's ``r``
(circom ``--prime bls12381``); anything else raises MalformedEncoding.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

from teeprover.errors import MalformedEncoding
from teeprover.r1cs import R1CS, Constraint, R, Row
from teeprover.snarkjs import _binfile

MAX_CONSTRAINTS = 1 << 25  # k = 24 is our ceiling; a little head-room for the public rows
MAX_WIRES = 1 << 28
_FR_BYTES = 32
_WHAT = "r1cs"


def _row(rd: _binfile.Reader, n_wires: int) -> Row:
    n = rd.u32()
    entry = 4 + _FR_BYTES
    if n > rd.remaining() // entry:
        raise MalformedEncoding(f"{_WHAT}: constraint row claims {n} entries, more than the section holds")
    buf = rd.bytes(n * entry)
    row: Row = {}
    frm = int.from_bytes
    for i in range(0, n * entry, entry):
        wire = frm(buf[i:i + 4], "little")
        coeff = frm(buf[i + 4:i + entry], "little")
        if wire >= n_wires:
            raise MalformedEncoding(f"{_WHAT}: wire {wire} out of range (the circuit has {n_wires})")
        if coeff >= R:
            raise MalformedEncoding(f"{_WHAT}: coefficient is not reduced modulo r")
        row[wire] = (row.get(wire, 0) + coeff) % R
    return row


def parse_r1cs(data: bytes | bytearray | memoryview) -> R1CS:
    """Decode a circom ``.r1cs`` file; raise MalformedEncoding on anything else."""
    return _decode(_binfile.parse(data, "r1cs", versions=(1,), what=_WHAT))


def read_r1cs(path: str | Path) -> R1CS:
    return _decode(_binfile.read_path(path, "r1cs", versions=(1,), what=_WHAT))


@dataclass(frozen=True)
class Header:
    num_variables: int  # wires, including the constant
    num_public: int
    num_constraints: int

    def domain_size(self) -> int:
        """As :meth:`teeprover.r1cs.R1CS.domain_size`."""
        need = self.num_constraints + self.num_public + 1
        return 1 << (need - 1).bit_length()


def _header(bf: _binfile.BinFile) -> Header:
    """Everything but the constraints themselves: header, custom gates refused, wire map size."""
    if bf.has(4) or bf.has(5):
        raise MalformedEncoding(f"{_WHAT}: custom gates (PLONK) are not supported by Groth16")
    hd = _binfile.Reader(bf.section(1, what=_WHAT), f"{_WHAT} header")
    n8 = hd.u32()
    if n8 != _FR_BYTES:
        raise MalformedEncoding(f"{_WHAT}: field elements of {n8} bytes: not the BLS12-381 scalar field")
    if hd.int_le(n8) != R:
        raise MalformedEncoding(f"{_WHAT}: prime is not BLS12-381's r (compile with circom --prime bls12381)")
    n_wires, n_out, n_pub_in, _n_prv_in = hd.u32(), hd.u32(), hd.u32(), hd.u32()
    hd.u64()  # nLabels
    n_constraints = hd.u32()
    hd.end()
    n_public = n_out + n_pub_in
    if not 1 <= n_wires <= MAX_WIRES or n_public + 1 > n_wires:
        raise MalformedEncoding(f"{_WHAT}: inconsistent sizes ({n_wires} wires, {n_public} public)")
    if n_constraints > MAX_CONSTRAINTS:
        raise MalformedEncoding(f"{_WHAT}: {n_constraints} constraints is above the supported maximum")
    if bf.has(3):
        m = bf.size(3, what=_WHAT)
        if m != 8 * n_wires:
            raise MalformedEncoding(f"{_WHAT}: wire map has {m} bytes, expected {8 * n_wires}")
    return Header(num_variables=n_wires, num_public=n_public, num_constraints=n_constraints)


def read_r1cs_header(path: str | Path) -> Header:
    """The checked header of a ``.r1cs`` file (sizes, field, no custom gates); the constraints are not
    decoded (``teeprover.snarkjs.interop``'s fast path needs only the sizes)."""
    return _header(_binfile.read_path(path, "r1cs", versions=(1,), what=_WHAT))


def _decode(bf: _binfile.BinFile) -> R1CS:
    hdr = _header(bf)
    n_wires, n_constraints = hdr.num_variables, hdr.num_constraints
    rd = _binfile.Reader(bf.section(2, what=_WHAT), f"{_WHAT} constraints")
    if n_constraints > rd.remaining() // 12:  # each constraint has at least three row counts
        raise MalformedEncoding(f"{_WHAT}: header claims {n_constraints} constraints, more than the section holds")
    constraints = []
    for _ in range(n_constraints):
        a = _row(rd, n_wires)
        b = _row(rd, n_wires)
        c = _row(rd, n_wires)
        constraints.append(Constraint(a=a, b=b, c=c))
    rd.end()
    return R1CS(num_variables=n_wires, num_public=hdr.num_public, constraints=tuple(constraints))


def _row_bytes(row: Row) -> bytes:
    items = sorted((w, c % R) for w, c in row.items())
    return struct.pack("<I", len(items)) + b"".join(struct.pack("<I", w) + c.to_bytes(32, "little") for w, c in items)


def r1cs_to_bytes(r1cs: R1CS) -> bytes:
    """A circom-compatible ``.r1cs`` (all public variables written as outputs, identity wire map)."""
    header = (struct.pack("<I", _FR_BYTES) + R.to_bytes(32, "little")
              + struct.pack("<IIIIQI", r1cs.num_variables, r1cs.num_public, 0,
                            0, r1cs.num_variables, r1cs.num_constraints))
    cons = b"".join(_row_bytes(c.a) + _row_bytes(c.b) + _row_bytes(c.c) for c in r1cs.constraints)
    wire_map = b"".join(struct.pack("<Q", i) for i in range(r1cs.num_variables))
    return _binfile.build("r1cs", 1, [(1, header), (2, cons), (3, wire_map)])


__all__ = ["parse_r1cs", "read_r1cs", "read_r1cs_header", "Header", "r1cs_to_bytes", "MAX_CONSTRAINTS", "MAX_WIRES"]
