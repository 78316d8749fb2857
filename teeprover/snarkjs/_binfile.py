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

import os
import struct
from collections.abc import Callable
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
    """A parsed container: the section table, and the bodies either in memory (``data``, from
    :func:`parse`) or read from ``path`` when asked for (:func:`read_path`: a caller that decodes one
    section at a time never holds the whole file)."""

    kind: str
    version: int
    data: memoryview | None
    sections: dict[int, list[tuple[int, int]]]  # type -> [(offset, size)]
    path: Path | None = None

    def _entry(self, sec: int, what: str) -> tuple[int, int]:
        entries = self.sections.get(sec)
        if not entries:
            raise MalformedEncoding(f"{what}: missing section {sec}")
        if len(entries) > 1:
            raise MalformedEncoding(f"{what}: section {sec} is duplicated")
        return entries[0]

    def size(self, sec: int, *, what: str) -> int:
        """The body size of the one section of type ``sec``; missing or duplicated is malformed."""
        return self._entry(sec, what)[1]

    def section(self, sec: int, *, what: str) -> memoryview:
        """The body of the one section of type ``sec``; missing or duplicated is malformed."""
        off, size = self._entry(sec, what)
        if self.data is not None:
            return self.data[off:off + size]
        assert self.path is not None
        return memoryview(_read_at(self.path, off, size, what))

    def section_bytes(self, sec: int, *, what: str) -> bytes:
        """:meth:`section` as ``bytes`` (copied from memory, or as read: no second copy)."""
        off, size = self._entry(sec, what)
        if self.data is not None:
            return self.data[off:off + size].tobytes()
        assert self.path is not None
        return _read_at(self.path, off, size, what)

    def read(self, sec: int, start: int, length: int, *, what: str) -> bytes:
        """``length`` bytes of the one section ``sec`` from byte ``start`` of its body (a piece of a large
        section, read from the file when there is one: the rest is never in memory)."""
        off, size = self._entry(sec, what)
        if start < 0 or length < 0 or start + length > size:
            raise MalformedEncoding(f"{what}: read past the end of section {sec}")
        if self.data is not None:
            return self.data[off + start:off + start + length].tobytes()
        assert self.path is not None
        return _read_at(self.path, off + start, length, what)

    def has(self, sec: int) -> bool:
        return sec in self.sections


def _read_at(path: Path, offset: int, size: int, what: str) -> bytes:
    """``size`` bytes at ``offset``; a file that shrank since its table was read is malformed."""
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            body = f.read(size)
    except OSError as exc:
        raise MalformedEncoding(f"{what}: cannot read {path.name}: {exc.strerror}") from exc
    if len(body) != size:
        raise MalformedEncoding(f"{what}: {path.name} changed while it was being read")
    return body


def _table(read: Callable[[int, int], bytes], total: int, kind: str, versions: tuple[int, ...],
           what: str) -> tuple[int, dict[int, list[tuple[int, int]]]]:
    """Version and section table of a container of ``total`` bytes, read through ``read(offset, n)``:
    magic, version and every section bound checked against ``total``."""
    if total > MAX_FILE_BYTES:
        raise MalformedEncoding(f"{what}: file is larger than {MAX_FILE_BYTES} bytes")
    if total < _HEAD.size:
        raise MalformedEncoding(f"{what}: truncated header")
    magic, version, n_sections = _HEAD.unpack(read(0, _HEAD.size))
    if magic != kind.encode():
        raise MalformedEncoding(f"{what}: not a {kind} file (bad magic)")
    if version not in versions:
        raise MalformedEncoding(f"{what}: unsupported {kind} version {version}")
    if n_sections > MAX_SECTIONS:
        raise MalformedEncoding(f"{what}: too many sections ({n_sections})")
    pos = _HEAD.size
    sections: dict[int, list[tuple[int, int]]] = {}
    for _ in range(n_sections):
        if pos + _SEC.size > total:
            raise MalformedEncoding(f"{what}: truncated section table")
        sec, size = _SEC.unpack(read(pos, _SEC.size))
        pos += _SEC.size
        if size > total - pos:
            raise MalformedEncoding(f"{what}: section {sec} runs past the end of the file")
        sections.setdefault(sec, []).append((pos, size))
        pos += size
    if pos != total:
        raise MalformedEncoding(f"{what}: {total - pos} trailing bytes after the last section")
    return version, sections


def parse(data: bytes | bytearray | memoryview, kind: str, *, versions: tuple[int, ...], what: str) -> BinFile:
    """Split a binfile into sections, checking magic, version and every section bound."""
    mv = memoryview(data).cast("B") if not isinstance(data, memoryview) else data.cast("B")
    version, sections = _table(lambda off, n: bytes(mv[off:off + n]), len(mv), kind, versions, what)
    return BinFile(kind=kind, version=version, data=mv, sections=sections)


def read_path(path: str | Path, kind: str, *, versions: tuple[int, ...], what: str) -> BinFile:
    """The section table of a file; section bodies are read when :meth:`BinFile.section` asks for them."""
    p = Path(path)
    try:
        with open(p, "rb") as f:
            total = os.fstat(f.fileno()).st_size

            def read(offset: int, n: int) -> bytes:
                f.seek(offset)
                chunk = f.read(n)
                if len(chunk) != n:
                    raise MalformedEncoding(f"{what}: {p.name} changed while it was being read")
                return chunk

            version, sections = _table(read, total, kind, versions, what)
    except OSError as exc:
        raise MalformedEncoding(f"{what}: cannot read {p.name}: {exc.strerror}") from exc
    return BinFile(kind=kind, version=version, data=None, sections=sections, path=p)


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
