"""Deterministic CBOR for Groth16 proofs and keys.

Each top-level value is ``tag(T, [version, ...fields])`` encoded with
``cbor2.dumps(..., canonical=True)`` (RFC 8949 §4.2 deterministic encoding).
Tags are ours, from the first-come-first-served range:

=============  ==================  =======================================================
tag            type                content (version 1)
=============  ==================  =======================================================
0x7E000101     Groth16 proof       ``[1, a: bstr .size 48, b: bstr .size 96, c: bstr .size 48]``
0x7E000102     verifying key       ``[1, alpha_g1, beta_g2, gamma_g2, delta_g2, [* ic_g1]]``
0x7E000103     proving key         ``[1, vk (tag 0x7E000102), beta_g1, delta_g1, num_variables,
                                   num_public, domain_size, coeffs, a, b_g1, b_g2, c, h]``
=============  ==================  =======================================================

Points are compressed (48/96 bytes, zcash flags).  In the proving key the five
queries are each ONE byte string, the concatenation of the compressed points, and
``coeffs`` is one byte string of 44-byte records ``matrix u32le || constraint u32le
|| signal u32le || value (32-byte LE field element)`` (zkey section 4 without
Montgomery form).  Field elements are 32-byte little endian.

Decoding anything else raises :class:`~teeprover.errors.MalformedEncoding`.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any, TypeVar

import cbor2

from teeprover import curve
from teeprover.errors import MalformedEncoding
from teeprover.groth16.types import Coeff, Proof, ProvingKey, VerifyingKey

TAG_PROOF = 0x7E000101
TAG_VERIFYING_KEY = 0x7E000102
TAG_PROVING_KEY = 0x7E000103
VERSION = 1

T = TypeVar("T")


def _dumps(obj: Any) -> bytes:
    return cbor2.dumps(obj, canonical=True)


def _loads(data: bytes) -> Any:
    if not isinstance(data, bytes | bytearray | memoryview):
        raise MalformedEncoding("expected bytes")
    try:
        return cbor2.loads(bytes(data))
    except Exception as exc:  # cbor2 raises a zoo of errors on junk
        raise MalformedEncoding(f"not valid CBOR: {exc.__class__.__name__}") from exc


def _untag(obj: Any, tag: int, what: str, n_fields: int) -> list[Any]:
    if not isinstance(obj, cbor2.CBORTag) or obj.tag != tag:
        raise MalformedEncoding(f"expected CBOR tag {tag:#x} ({what})")
    body = obj.value
    if not isinstance(body, list | tuple) or not body or body[0] != VERSION or isinstance(body[0], bool):
        raise MalformedEncoding(f"unsupported {what} version")
    if len(body) != n_fields + 1:
        raise MalformedEncoding(f"{what}: expected {n_fields} fields")
    return body[1:]


def _bstr(x: Any, what: str) -> bytes:
    if not isinstance(x, bytes):
        raise MalformedEncoding(f"{what} must be a byte string")
    return x


def _uint(x: Any, what: str) -> int:
    if isinstance(x, bool) or not isinstance(x, int) or x < 0 or x >= 1 << 32:
        raise MalformedEncoding(f"{what} must be an unsigned 32-bit integer")
    return x


def _split(data: bytes, size: int, decode: Callable[[bytes], T], what: str) -> tuple[T, ...]:
    if len(data) % size:
        raise MalformedEncoding(f"{what}: length is not a multiple of {size}")
    return tuple(decode(data[i:i + size]) for i in range(0, len(data), size))


# --- proof ------------------------------------------------------------------

def _proof_body(p: Proof) -> list[Any]:
    return [VERSION, curve.g1_to_bytes(p.a), curve.g2_to_bytes(p.b), curve.g1_to_bytes(p.c)]


def encode_proof(p: Proof) -> bytes:
    return _dumps(cbor2.CBORTag(TAG_PROOF, _proof_body(p)))


def decode_proof(data: bytes) -> Proof:
    a, b, c = _untag(_loads(data), TAG_PROOF, "proof", 3)
    return Proof(a=curve.g1_from_bytes(_bstr(a, "a")), b=curve.g2_from_bytes(_bstr(b, "b")),
                 c=curve.g1_from_bytes(_bstr(c, "c")))


# --- verifying key ------------------------------------------------------------

def _vk_tagged(vk: VerifyingKey) -> cbor2.CBORTag:
    return cbor2.CBORTag(TAG_VERIFYING_KEY, [
        VERSION,
        curve.g1_to_bytes(vk.alpha_g1),
        curve.g2_to_bytes(vk.beta_g2),
        curve.g2_to_bytes(vk.gamma_g2),
        curve.g2_to_bytes(vk.delta_g2),
        [curve.g1_to_bytes(p) for p in vk.ic],
    ])


def _vk_from_obj(obj: Any) -> VerifyingKey:
    alpha, beta, gamma, delta, ic = _untag(obj, TAG_VERIFYING_KEY, "verifying key", 5)
    if not isinstance(ic, list | tuple) or not ic:
        raise MalformedEncoding("verifying key: ic must be a non-empty array")
    return VerifyingKey(
        alpha_g1=curve.g1_from_bytes(_bstr(alpha, "alpha")),
        beta_g2=curve.g2_from_bytes(_bstr(beta, "beta")),
        gamma_g2=curve.g2_from_bytes(_bstr(gamma, "gamma")),
        delta_g2=curve.g2_from_bytes(_bstr(delta, "delta")),
        ic=tuple(curve.g1_from_bytes(_bstr(p, "ic")) for p in ic),
    )


def encode_verifying_key(vk: VerifyingKey) -> bytes:
    return _dumps(_vk_tagged(vk))


def decode_verifying_key(data: bytes) -> VerifyingKey:
    return _vk_from_obj(_loads(data))


# --- proving key ---------------------------------------------------------------

_COEFF = struct.Struct("<III32s")


def _coeffs_bytes(coeffs: tuple[Coeff, ...]) -> bytes:
    pack = _COEFF.pack
    return b"".join(pack(c.matrix, c.constraint, c.signal, curve.fr_to_bytes(c.value)) for c in coeffs)


def _coeffs_from_bytes(data: bytes, n: int, n_vars: int) -> tuple[Coeff, ...]:
    if len(data) % _COEFF.size:
        raise MalformedEncoding("proving key: coeffs length is not a multiple of 44")
    out = []
    for m, c, s, v in _COEFF.iter_unpack(data):
        if m > 1 or c >= n or s >= n_vars:
            raise MalformedEncoding("proving key: coefficient out of range")
        out.append(Coeff(m, c, s, curve.fr_from_bytes(v)))
    return tuple(out)


def encode_proving_key(pk: ProvingKey) -> bytes:
    return _dumps(cbor2.CBORTag(TAG_PROVING_KEY, [
        VERSION,
        _vk_tagged(pk.vk),
        curve.g1_to_bytes(pk.beta_g1),
        curve.g1_to_bytes(pk.delta_g1),
        pk.num_variables,
        pk.num_public,
        pk.domain_size,
        _coeffs_bytes(pk.coeffs),
        b"".join(curve.g1_to_bytes(p) for p in pk.a_query),
        b"".join(curve.g1_to_bytes(p) for p in pk.b_g1_query),
        b"".join(curve.g2_to_bytes(p) for p in pk.b_g2_query),
        b"".join(curve.g1_to_bytes(p) for p in pk.c_query),
        b"".join(curve.g1_to_bytes(p) for p in pk.h_query),
    ]))


def decode_proving_key(data: bytes, *, check_subgroup: bool = True) -> ProvingKey:
    """Decode a proving key.

    ``check_subgroup=False`` skips the (costly: ~0.1 ms per G1, ~0.2 ms per G2 point)
    prime-order-subgroup checks of the bulk queries, for keys from a trusted store;
    points are still checked to be on the curve, and the verifying key always is.
    """
    (vk_obj, beta, delta, n_vars, n_pub, n, coeffs, a, b1, b2, c, h) = _untag(
        _loads(data), TAG_PROVING_KEY, "proving key", 12)
    vk = _vk_from_obj(vk_obj)
    n_vars, n_pub, n = _uint(n_vars, "num_variables"), _uint(n_pub, "num_public"), _uint(n, "domain_size")
    if n == 0 or n & (n - 1) or n_vars < n_pub + 1 or vk.num_public != n_pub:
        raise MalformedEncoding("proving key: inconsistent sizes")

    def g1(b: bytes) -> curve.G1:
        return curve.g1_from_bytes(b, check_subgroup=check_subgroup)

    def g2(b: bytes) -> curve.G2:
        return curve.g2_from_bytes(b, check_subgroup=check_subgroup)

    pk = ProvingKey(
        vk=vk,
        beta_g1=curve.g1_from_bytes(_bstr(beta, "beta_g1")),
        delta_g1=curve.g1_from_bytes(_bstr(delta, "delta_g1")),
        num_variables=n_vars,
        num_public=n_pub,
        domain_size=n,
        coeffs=_coeffs_from_bytes(_bstr(coeffs, "coeffs"), n, n_vars),
        a_query=_split(_bstr(a, "a_query"), curve.G1_BYTES, g1, "a_query"),
        b_g1_query=_split(_bstr(b1, "b_g1_query"), curve.G1_BYTES, g1, "b_g1_query"),
        b_g2_query=_split(_bstr(b2, "b_g2_query"), curve.G2_BYTES, g2, "b_g2_query"),
        c_query=_split(_bstr(c, "c_query"), curve.G1_BYTES, g1, "c_query"),
        h_query=_split(_bstr(h, "h_query"), curve.G1_BYTES, g1, "h_query"),
    )
    if not (len(pk.a_query) == len(pk.b_g1_query) == len(pk.b_g2_query) == n_vars
            and len(pk.c_query) == n_vars - n_pub - 1 and len(pk.h_query) == n):
        raise MalformedEncoding("proving key: query lengths do not match the sizes")
    return pk


__all__ = [
    "TAG_PROOF", "TAG_VERIFYING_KEY", "TAG_PROVING_KEY", "VERSION",
    "encode_proof", "decode_proof", "encode_verifying_key", "decode_verifying_key",
    "encode_proving_key", "decode_proving_key",
]
