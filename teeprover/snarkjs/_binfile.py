"""iden3 "binfile" container (``@iden3/binfileutils``), shared by ``.r1cs``, ``.wtns`` and ``.zkey``.

Layout: ``magic[4] || version u32le || n_sections u32le`` then ``n_sections`` times
``type u32le || size u64le || body[size]``.  Section types may repeat in the
container; every reader here asks for *unique* sections (as snarkjs's
``startReadUniqueSection`` does), so a duplicate of a section we read is malformed.

Strict and bounded: every length is checked against the bytes actually present
before anything is sliced or allocated, and every failure raises
:class:`~teeprover.errors.MalformedEncoding` (never ``IndexError``/``struct.error``).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

from teeprover.errors import MalformedEncoding

# Hard ceilings: the biggest circuits we serve are k = 24 (2^24 constraints); a
# file above these is refused before it is read.
MAX_FILE_BYTES = 1 << 34  # 16 GiB
MAX_SECTIONS = 1 << 12

_HEAD = struct.Struct("<4sII")
_SEC = struct.Struct("<IQ")
_U32 = struct.Struct("<I")


@dataclass(frozen=True)
class BinFile:
    kind: str
    version: int
    data: memoryview
    sections: dict[int, list[tuple[int, int]]]  # type -> [(offset, size)]

    def section(self, sec: int, *, what: str) -> memoryview:
        """The body of the one section of type ``sec``; missing or duplicated is malformed."""
        entries = self.sections.get(sec)
        if not entries:
            raise MalformedEncoding(f"{what}: missing section {sec}")
        if len(entries) > 1:
            raise MalformedEncoding(f"{what}: section {sec} is duplicated")
        off, size = entries[0]
        return self.data[off:off + size]

    def has(self, sec: int) -> bool:
        return sec in self.sections


def parse(data: bytes | bytearray | memoryview, kind: str, *, versions: tuple[int, ...], what: str) -> BinFile:
    """Split a binfile into sections, checking magic, version and every section bound."""
    mv = memoryview(data).cast("B") if not isinstance(data, memoryview) else data.cast("B")
    if len(mv) > MAX_FILE_BYTES:
        raise MalformedEncoding(f"{what}: file is larger than {MAX_FILE_BYTES} bytes")
    if len(mv) < _HEAD.size:
        raise MalformedEncoding(f"{what}: truncated header")
    magic, version, n_sections = _HEAD.unpack_from(mv, 0)
    if magic != kind.encode():
        raise MalformedEncoding(f"{what}: not a {kind} file (bad magic)")
    if version not in versions:
        raise MalformedEncoding(f"{what}: unsupported {kind} version {version}")
    if n_sections > MAX_SECTIONS:
        raise MalformedEncoding(f"{what}: too many sections ({n_sections})")
    pos = _HEAD.size
    sections: dict[int, list[tuple[int, int]]] = {}
    for _ in range(n_sections):
        if pos + _SEC.size > len(mv):
            raise MalformedEncoding(f"{what}: truncated section table")
        sec, size = _SEC.unpack_from(mv, pos)
        pos += _SEC.size
        if size > len(mv) - pos:
            raise MalformedEncoding(f"{what}: section {sec} runs past the end of the file")
        sections.setdefault(sec, []).append((pos, size))
        pos += size
    if pos != len(mv):
        raise MalformedEncoding(f"{what}: {len(mv) - pos} trailing bytes after the last section")
    return BinFile(kind=kind, version=version, data=mv, sections=sections)


def read_path(path: str | Path, kind: str, *, versions: tuple[int, ...], what: str) -> BinFile:
    p = Path(path)
    try:
        size = p.stat().st_size
        if size > MAX_FILE_BYTES:
            raise MalformedEncoding(f"{what}: file is larger than {MAX_FILE_BYTES} bytes")
        data = p.read_bytes()
    except OSError as exc:
        raise MalformedEncoding(f"{what}: cannot read {p.name}: {exc.strerror}") from exc
    return parse(data, kind, versions=versions, what=what)


class Reader:
    """A bounds-checked little-endian cursor over one section."""

    __slots__ = ("buf", "pos", "what")

    def __init__(self, buf: memoryview, what: str) -> None:
        self.buf = buf
        self.pos = 0
        self.what = what

    def remaining(self) -> int:
        return len(self.buf) - self.pos

    def need(self, n: int) -> None:
        if n < 0 or n > len(self.buf) - self.pos:
            raise MalformedEncoding(f"{self.what}: truncated (needs {n} more bytes)")

    def u32(self) -> int:
        self.need(4)
        v: int = _U32.unpack_from(self.buf, self.pos)[0]
        self.pos += 4
        return v

    def u64(self) -> int:
        self.need(8)
        v: int = struct.unpack_from("<Q", self.buf, self.pos)[0]
        self.pos += 8
        return v

    def bytes(self, n: int) -> memoryview:
        self.need(n)
        out = self.buf[self.pos:self.pos + n]
        self.pos += n
        return out

    def int_le(self, n: int) -> int:
        return int.from_bytes(self.bytes(n), "little")

    def end(self) -> None:
        if self.pos != len(self.buf):
            raise MalformedEncoding(f"{self.what}: {len(self.buf) - self.pos} unexpected trailing bytes")


def build(kind: str, version: int, sections: list[tuple[int, bytes]]) -> bytes:
    """Serialise a binfile (sections in the given order)."""
    out = bytearray(_HEAD.pack(kind.encode(), version, len(sections)))
    for sec, body in sections:
        out += _SEC.pack(sec, len(body))
        out += body
    return bytes(out)


__all__ = ["BinFile", "Reader", "parse", "read_path", "build", "MAX_FILE_BYTES"]
