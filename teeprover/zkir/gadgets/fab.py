"""``persistent_hash``: cells decoded into bytes per an alignment, then SHA-256; and its twin.

As midnight-ledger ``zkir/src/ir_vm.rs``: the cells are decoded in-circuit
into bytes (``fab_decode_to_bytes``), hashed with SHA-256, and the 32-byte
digest becomes two cells: byte 31, then bytes 0..30 read little-endian (the
field form of a 32-byte string).  The byte order of the decoding is
:mod:`teeprover.zkir.alignment`'s.

Decoding costs (the "decompositions" row of ``docs/zkir.md``):

- a bytes chunk of ``k`` bytes (``k = 31``, or the stray ``length mod 31``):
  ``8k`` booleans and one sum, ``8k + 1`` constraints; this range check is
  what makes the chunk's bytes unique (``8k <= 248 < 254`` bits).
- a field atom: a 255-bit decomposition (256) and the canonical check that it
  is below r (about 255), so its 32 little-endian bytes are unique.

A cell that is a constant (``load_imm``) and fits is split into constant bits
at no cost.
"""

from __future__ import annotations

from collections.abc import Sequence

from teeprover.r1cs import R
from teeprover.zkir import alignment as fab
from teeprover.zkir.alignment import Alignment, FieldAtom
from teeprover.zkir.gadgets import bits as bitsg
from teeprover.zkir.gadgets import lc, sha256
from teeprover.zkir.gadgets.lc import LC, Synth

Byte = list[LC]  # 8 bits, least significant first


# ---------------------------------------------------------------- out-of-circuit twin

def digest_cells(digest: bytes) -> list[int]:
    """The two cells of a 32-byte digest: byte 31, then bytes 0..30 little-endian."""
    assert len(digest) == 32
    return [digest[31], int.from_bytes(digest[:31], "little")]


def persistent_hash(alignment: Alignment, cells: Sequence[int]) -> list[int]:
    """Midnight's preprocess of ``persistent_hash``; raises :class:`~teeprover.zkir.alignment.AlignmentMismatch`."""
    return digest_cells(sha256.digest(fab.decode_to_bytes(alignment, cells)))


# ---------------------------------------------------------------- in circuit

def _split(s: Synth, x: LC, n: int) -> list[LC]:
    """``x`` as ``n`` bits (constraints only when ``x`` is not a constant that fits)."""
    c = lc.constant_value(x)
    if c is not None and not c >> n:
        return [lc.const(c >> i & 1) for i in range(n)]
    return [lc.var(b) for b in bitsg.decompose(s, x, n)]


def _chunk(s: Synth, x: LC, k: int) -> list[Byte]:
    bits = _split(s, x, 8 * k)
    return [bits[8 * j:8 * j + 8] for j in range(k)]


def _field_bytes(s: Synth, x: LC) -> list[Byte]:
    c = lc.constant_value(x)
    if c is not None:
        bits = [lc.const(c >> i & 1) for i in range(bitsg.FIELD_BITS)]
    else:
        raw = bitsg.decompose(s, x, bitsg.FIELD_BITS)
        bitsg.canonical(s, raw)
        bits = [lc.var(b) for b in raw]
    bits.append({})  # bit 255 of a canonical element
    return [bits[8 * j:8 * j + 8] for j in range(fab.FR_BYTES)]


def decode(s: Synth, alignment: Alignment, cells: Sequence[LC]) -> list[Byte]:
    """The bytes of ``cells`` per ``alignment`` (``fab_decode_to_bytes``); each byte range-checked.

    In prove mode the caller has checked the values with
    :func:`teeprover.zkir.alignment.decode_to_bytes` (Midnight's preprocess).
    """
    out: list[Byte] = []
    pos = 0
    for atom in alignment:
        if isinstance(atom, FieldAtom):
            out += _field_bytes(s, cells[pos])
            pos += 1
            continue
        stray, chunks = fab.atom_chunks(atom)
        tail: list[Byte] = []
        if stray:
            tail = _chunk(s, cells[pos], stray)
            pos += 1
        for i in range(chunks):  # the cells hold the chunks last first
            out += _chunk(s, cells[pos + chunks - 1 - i], fab.FR_BYTES_STORED)
        pos += chunks
        out += tail
    return out


def _weighted_bytes(digest: list[Byte]) -> LC:
    total: dict[int, int] = {}
    for j, byte in enumerate(digest):
        for i, bit in enumerate(byte):
            for v, coeff in bit.items():
                total[v] = (total.get(v, 0) + coeff * (1 << (8 * j + i))) % R
    return {v: coeff for v, coeff in total.items() if coeff}


def persistent_hash_gadget(s: Synth, alignment: Alignment, cells: Sequence[LC]) -> list[LC]:
    """The two output cells of ``persistent_hash``: digest byte 31, then bytes 0..30 little-endian."""
    digest = sha256.sha256(s, decode(s, alignment, cells))
    return [_weighted_bytes(digest[31:]), _weighted_bytes(digest[:31])]
