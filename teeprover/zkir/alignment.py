"""Midnight's field-aligned binary alignments, as ``persistent_hash`` uses them.

An alignment describes how a value travels as field elements (the ``inputs``
cells of ``persistent_hash``) and how it is written as bytes before hashing
(midnight-ledger ``base-crypto/src/fab``, ``transient-crypto/src/fab.rs``).
Its JSON form is Midnight's serde form, e.g.::

    [{"tag": "atom", "value": {"tag": "bytes", "length": 21}},
     {"tag": "atom", "value": {"tag": "field"}}]

Two atoms are supported, the two Midnight can decode in-circuit:

- ``field``: one cell; written as the element's 32 little-endian bytes.
- ``bytes{length}``: ``ceil(length / 31)`` cells.  The bytes are cut into
  31-byte chunks from the start, each chunk read little-endian; the cells hold
  the chunks *last first*, so the short chunk of a length that is not a
  multiple of 31 (its "stray" bytes, the value's last bytes) is the first cell.
  Each cell must fit its chunk (``< 2^(8·chunk length)``).

``compress`` atoms (a hash that cannot be reversed) and ``option`` segments
are refused with :class:`AlignmentError`: Midnight refuses both in-circuit
(``zkir/src/ir_vm.rs`` ``fab_decode_to_bytes``), so a circuit using them can
never be proved.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from teeprover.r1cs import R

FR_BYTES = 32          # bytes of a field element's binary form
FR_BYTES_STORED = 31   # bytes one cell carries in a bytes atom
FIELD_BYTE_LIMIT = 64  # longest value atom Midnight accepts for a field atom (reduced mod r)
MAX_ATOMS = 1 << 16
MAX_BYTES_LENGTH = (1 << 32) - 1


class AlignmentError(ValueError):
    """An alignment that is malformed or that cannot be decoded in-circuit."""


class AlignmentMismatch(ValueError):
    """Cells (or value atoms) that do not fit an alignment: Midnight's "Inputs did not match alignment"."""


@dataclass(frozen=True, slots=True)
class FieldAtom:
    """One field element."""


@dataclass(frozen=True, slots=True)
class BytesAtom:
    """A byte string of exactly ``length`` bytes."""

    length: int


Atom = FieldAtom | BytesAtom
Alignment = tuple[Atom, ...]


def atom_chunks(atom: BytesAtom) -> tuple[int, int]:
    """``(stray, chunks)``: the length of the short last chunk (0 if none) and the number of full chunks."""
    return atom.length % FR_BYTES_STORED, atom.length // FR_BYTES_STORED


def field_len(alignment: Alignment) -> int:
    """The number of cells the alignment reads."""
    return sum(1 if isinstance(a, FieldAtom) else -(-a.length // FR_BYTES_STORED) for a in alignment)


def bin_len(alignment: Alignment) -> int:
    """The number of bytes the alignment writes."""
    return sum(FR_BYTES if isinstance(a, FieldAtom) else a.length for a in alignment)


# ---------------------------------------------------------------- JSON

def _parse_atom(raw: Any, where: str) -> Atom:
    if not isinstance(raw, dict) or not isinstance(raw.get("tag"), str):
        raise AlignmentError(f"{where}: an atom must be an object with a string 'tag'")
    tag = raw["tag"]
    if tag == "field":
        keys: tuple[str, ...] = ("tag",)
    elif tag == "bytes":
        keys = ("tag", "length")
    elif tag == "compress":
        raise AlignmentError(f"{where}: a compress atom cannot be decoded from field elements in-circuit "
                             "(Midnight refuses it too)")
    else:
        raise AlignmentError(f"{where}: unknown atom tag {tag[:40]!r} (expected 'field' or 'bytes')")
    if set(raw) != set(keys):
        raise AlignmentError(f"{where}: a {tag} atom has exactly the keys {', '.join(keys)}")
    if tag == "field":
        return FieldAtom()
    length = raw["length"]
    if isinstance(length, bool) or not isinstance(length, int) or not 0 <= length <= MAX_BYTES_LENGTH:
        raise AlignmentError(f"{where}: bytes length must be an unsigned 32-bit integer")
    return BytesAtom(length)


def parse_alignment(raw: Any, where: str = "alignment") -> Alignment:
    """Validate Midnight's JSON form of an alignment (a list of segments)."""
    if not isinstance(raw, list):
        raise AlignmentError(f"{where}: expected a list of segments")
    if len(raw) > MAX_ATOMS:
        raise AlignmentError(f"{where}: {len(raw)} segments exceed the limit {MAX_ATOMS}")
    atoms: list[Atom] = []
    for i, segment in enumerate(raw):
        here = f"{where}[{i}]"
        if not isinstance(segment, dict) or not isinstance(segment.get("tag"), str):
            raise AlignmentError(f"{here}: a segment must be an object with a string 'tag'")
        if segment["tag"] == "option":
            raise AlignmentError(f"{here}: option segments cannot be decoded in-circuit (Midnight refuses them too)")
        if segment["tag"] != "atom":
            raise AlignmentError(f"{here}: unknown segment tag {segment['tag'][:40]!r} (expected 'atom')")
        if set(segment) != {"tag", "value"}:
            raise AlignmentError(f"{here}: an atom segment has exactly the keys tag, value")
        atoms.append(_parse_atom(segment["value"], here))
    return tuple(atoms)


def alignment_to_json(alignment: Alignment) -> list[dict[str, Any]]:
    return [{"tag": "atom", "value": {"tag": "field"} if isinstance(a, FieldAtom)
             else {"tag": "bytes", "length": a.length}} for a in alignment]


# ---------------------------------------------------------------- cells <-> bytes (out of circuit)

def decode_to_bytes(alignment: Alignment, cells: Sequence[int]) -> bytes:
    """The bytes Midnight hashes for these cells: ``parse_field_repr`` then the binary form.

    Cells beyond the alignment's :func:`field_len` are ignored, as Midnight
    ignores them.  Raises :class:`AlignmentMismatch` when there are too few
    cells or a bytes chunk does not fit its cell.
    """
    out = bytearray()
    pos = 0
    need = field_len(alignment)
    if len(cells) < need:
        raise AlignmentMismatch(f"the alignment reads {need} cells, {len(cells)} given")
    for a in alignment:
        if isinstance(a, FieldAtom):
            out += (cells[pos] % R).to_bytes(FR_BYTES, "little")
            pos += 1
            continue
        stray, chunks = atom_chunks(a)
        tail = b""
        if stray:
            tail = _chunk(cells[pos], stray, pos)
            pos += 1
        for i in range(chunks):  # the cells hold the chunks last first
            out += _chunk(cells[pos + chunks - 1 - i], FR_BYTES_STORED, pos + chunks - 1 - i)
        pos += chunks
        out += tail
    return bytes(out)


def _chunk(x: int, k: int, index: int) -> bytes:
    if not 0 <= x < 1 << (8 * k):
        raise AlignmentMismatch(f"cell {index} of the hashed inputs ({x}) does not fit in {k} bytes")
    return x.to_bytes(k, "little")


def encode_value(alignment: Alignment, atoms: Sequence[bytes]) -> list[int]:
    """The cells of a Midnight value (one byte string per atom, as ``persistentHash`` takes it).

    This is Midnight's ``field_repr`` of an aligned value: a field atom is its
    little-endian bytes reduced mod r; a bytes atom's (possibly shorter,
    trailing zeros dropped) bytes are chunked as in :func:`decode_to_bytes`.
    Raises :class:`AlignmentMismatch` when an atom does not fit.
    """
    if len(atoms) != len(alignment):
        raise AlignmentMismatch(f"the alignment has {len(alignment)} atoms, the value {len(atoms)}")
    cells: list[int] = []
    for a, data in zip(alignment, atoms, strict=True):
        if isinstance(a, FieldAtom):
            if len(data) > FIELD_BYTE_LIMIT:
                raise AlignmentMismatch(f"a field atom has at most {FIELD_BYTE_LIMIT} bytes, got {len(data)}")
            cells.append(int.from_bytes(data, "little") % R)
            continue
        if len(data) > a.length:
            raise AlignmentMismatch(f"a bytes{{{a.length}}} atom got {len(data)} bytes")
        padded = bytes(data) + bytes(a.length - len(data))
        chunks = [padded[i:i + FR_BYTES_STORED] for i in range(0, a.length, FR_BYTES_STORED)]
        cells.extend(int.from_bytes(c, "little") for c in reversed(chunks))
    return cells
