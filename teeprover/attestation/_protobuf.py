"""A minimal protobuf wire-format reader and writer (varint and length-delimited fields only).

Why by hand: the only protobuf message we read or write is go-tpm-tools' ``attest.Attestation``;
its .proto is not vendored here and pulling ``protobuf`` plus generated code into the
verifier for five fields is more attack surface than this 40-line reader.  The writer
(``varint_field`` / ``bytes_field``) is its mirror for evidence collection: a handful of
fields, encoded the way the proto3 wire format defines them, which ``fields`` reads back.
"""

from __future__ import annotations

MAX_FIELDS = 10_000


def read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise ValueError("truncated or overlong varint")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, pos


def fields(buf: bytes) -> list[tuple[int, int | bytes]]:
    """``[(field_number, value)]`` in order; varints as int, length-delimited as bytes."""
    out: list[tuple[int, int | bytes]] = []
    pos = 0
    while pos < len(buf):
        if len(out) >= MAX_FIELDS:
            raise ValueError("too many fields")
        key, pos = read_varint(buf, pos)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise ValueError("field number 0")
        if wire == 0:
            value, pos = read_varint(buf, pos)
            out.append((number, value))
        elif wire == 2:
            length, pos = read_varint(buf, pos)
            if pos + length > len(buf):
                raise ValueError("length-delimited field runs past the end")
            out.append((number, buf[pos : pos + length]))
            pos += length
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        else:
            raise ValueError(f"unsupported wire type {wire}")
        if pos > len(buf):
            raise ValueError("truncated fixed-width field")
    return out


def varint(value: int) -> bytes:
    if not 0 <= value < 1 << 64:
        raise ValueError("varint out of range")
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def varint_field(number: int, value: int) -> bytes:
    """Wire type 0 (int32/uint32/enum/...)."""
    return varint(number << 3) + varint(value)


def bytes_field(number: int, data: bytes) -> bytes:
    """Wire type 2 (bytes, string, embedded message, map entry)."""
    return varint(number << 3 | 2) + varint(len(data)) + data
