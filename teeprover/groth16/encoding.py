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
0x7E000104     proving key, fast   the same fields; the five queries as *uncompressed* points
=============  ==================  =======================================================

Points are compressed (48/96 bytes, zcash flags).  In the proving key the five
queries are each ONE byte string, the concatenation of the compressed points, and
``coeffs`` is one byte string of 44-byte records ``matrix u32le || constraint u32le
|| signal u32le || value (32-byte LE field element)`` (zkey section 4 without
Montgomery form).  Field elements are 32-byte little endian.

The fast form (tag ``0x7E000104``, what :func:`encode_proving_key` writes by
default) stores the five queries as affine ``x || y`` (96 bytes G1, 192 bytes G2,
each coordinate 48-byte little endian, G2 coordinates ``c0 || c1``, the identity
all zeros; :func:`teeprover.curve.g1s_from_xy`): twice the size, but decoding needs
no square root: ~1 us a point with the curve-equation check (always done) instead
of ~35 us, so a 2^16 key loads in well under a second when the subgroup checks are
skipped (``check_subgroup=False``, for keys whose hash our own setup recorded).
Untrusted keys in either form get the full checks.

Decoding anything else raises :class:`~teeprover.errors.MalformedEncoding`.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import cbor2

from teeprover import curve
from teeprover.errors import MalformedEncoding
from teeprover.groth16.types import Coeff, Proof, ProvingKey, VerifyingKey

if TYPE_CHECKING:  # setup pulls numpy in: not at run time for every reader of proofs and keys
    from teeprover.groth16.setup import KeyXY

TAG_PROOF = 0x7E000101
TAG_VERIFYING_KEY = 0x7E000102
TAG_PROVING_KEY = 0x7E000103
TAG_PROVING_KEY_XY = 0x7E000104
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
    return list(body[1:])


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
    out: list[Coeff] = []
    append = out.append
    frm = int.from_bytes
    r = curve.R
    for m, c, s, v in _COEFF.iter_unpack(data):
        x = frm(v, "little")
        if m > 1 or c >= n or s >= n_vars or x >= r:
            raise MalformedEncoding("proving key: coefficient out of range")
        append(Coeff(m, c, s, x))
    return tuple(out)


def encode_proving_key(pk: ProvingKey, *, compressed: bool = False) -> bytes:
    """The proving key as CBOR: the fast uncompressed form by default, ``compressed=True`` for
    the compact form (tag 0x7E000103, half the size, ~35x slower to decode)."""
    if compressed:
        g1s = lambda ps: b"".join(curve.g1_to_bytes(p) for p in ps)  # noqa: E731
        g2s = lambda ps: b"".join(curve.g2_to_bytes(p) for p in ps)  # noqa: E731
        tag = TAG_PROVING_KEY
    else:
        g1s, g2s, tag = curve.g1s_to_xy, curve.g2s_to_xy, TAG_PROVING_KEY_XY
    return _proving_key_cbor(tag, pk.vk, pk.beta_g1, pk.delta_g1, (pk.num_variables, pk.num_public, pk.domain_size),
                             pk.coeffs, [g1s(pk.a_query), g1s(pk.b_g1_query), g2s(pk.b_g2_query),
                                         g1s(pk.c_query), g1s(pk.h_query)])


def encode_proving_key_xy(key: KeyXY, coeffs: tuple[Coeff, ...]) -> bytes:
    """:func:`encode_proving_key` (fast form) of a key straight from :func:`~teeprover.groth16.setup.setup_xy`:
    its queries already are the form's affine bytes, so no point object is made for them.  ``coeffs``:
    ``qap.constraint_coeffs`` of its R1CS."""
    (beta, delta) = curve.g1s_from_xy(key.beta_g1 + key.delta_g1, check_subgroup=False)
    return _proving_key_cbor(TAG_PROVING_KEY_XY, key.verifying_key(), beta, delta,
                             (key.num_variables, key.num_public, key.domain_size), coeffs,
                             [key.a_query, key.b_g1_query, key.b_g2_query, key.c_query, key.h_query])


def _proving_key_cbor(tag: int, vk: VerifyingKey, beta_g1: curve.G1, delta_g1: curve.G1, sizes: tuple[int, int, int],
                      coeffs: tuple[Coeff, ...], queries: list[bytes]) -> bytes:
    """The one layout of both forms: queries A, B1, B2, C, H already encoded."""
    return _dumps(cbor2.CBORTag(tag, [
        VERSION, _vk_tagged(vk), curve.g1_to_bytes(beta_g1), curve.g1_to_bytes(delta_g1), *sizes,
        _coeffs_bytes(coeffs), *queries,
    ]))


def decode_proving_key(data: bytes, *, check_subgroup: bool = True) -> ProvingKey:
    """Decode a proving key (either form).

    ``check_subgroup=False`` skips the (costly: ~0.1 ms per G1, ~0.2 ms per G2 point)
    prime-order-subgroup checks of the bulk queries, for keys from a trusted store
    (their hash recorded by our own setup); points are still checked to be on the
    curve, and the verifying key, beta_g1 and delta_g1 always are fully checked.
    With the fast form and ``check_subgroup=False`` decoding costs ~1 us a point.
    """
    obj = _loads(data)
    xy = isinstance(obj, cbor2.CBORTag) and obj.tag == TAG_PROVING_KEY_XY
    (vk_obj, beta, delta, n_vars, n_pub, n, coeffs, a, b1, b2, c, h) = _untag(
        obj, TAG_PROVING_KEY_XY if xy else TAG_PROVING_KEY, "proving key", 12)
    vk = _vk_from_obj(vk_obj)
    n_vars, n_pub, n = _uint(n_vars, "num_variables"), _uint(n_pub, "num_public"), _uint(n, "domain_size")
    if n == 0 or n & (n - 1) or n_vars < n_pub + 1 or vk.num_public != n_pub:
        raise MalformedEncoding("proving key: inconsistent sizes")
    sizes = {"a_query": (a, n_vars, 1), "b_g1_query": (b1, n_vars, 1), "b_g2_query": (b2, n_vars, 2),
             "c_query": (c, n_vars - n_pub - 1, 1), "h_query": (h, n, 1)}
    queries: dict[str, tuple[Any, ...]] = {}
    for name, (raw, count, group) in sizes.items():
        raw = _bstr(raw, name)
        if xy:
            size = curve.G1_XY_BYTES if group == 1 else curve.G2_XY_BYTES
            decode_many: Callable[..., tuple[Any, ...]] = curve.g1s_from_xy if group == 1 else curve.g2s_from_xy
        else:
            size = curve.G1_BYTES if group == 1 else curve.G2_BYTES
            decode_many = _compressed_many(group)
        if len(raw) != count * size:
            raise MalformedEncoding("proving key: query lengths do not match the sizes")
        queries[name] = decode_many(raw, check_subgroup=check_subgroup)

    return ProvingKey(
        vk=vk,
        beta_g1=curve.g1_from_bytes(_bstr(beta, "beta_g1")),
        delta_g1=curve.g1_from_bytes(_bstr(delta, "delta_g1")),
        num_variables=n_vars,
        num_public=n_pub,
        domain_size=n,
        coeffs=_coeffs_from_bytes(_bstr(coeffs, "coeffs"), n, n_vars),
        a_query=queries["a_query"],
        b_g1_query=queries["b_g1_query"],
        b_g2_query=queries["b_g2_query"],
        c_query=queries["c_query"],
        h_query=queries["h_query"],
    )


def _compressed_many(group: int) -> Callable[..., tuple[Any, ...]]:
    one = curve.g1_from_bytes if group == 1 else curve.g2_from_bytes
    size = curve.G1_BYTES if group == 1 else curve.G2_BYTES

    def decode(raw: bytes, *, check_subgroup: bool) -> tuple[Any, ...]:
        return _split(raw, size, lambda b: one(b, check_subgroup=check_subgroup), "query")

    return decode


__all__ = [
    "TAG_PROOF", "TAG_VERIFYING_KEY", "TAG_PROVING_KEY", "TAG_PROVING_KEY_XY", "VERSION",
    "encode_proof", "decode_proof", "encode_verifying_key", "decode_verifying_key",
    "encode_proving_key", "encode_proving_key_xy", "decode_proving_key",
]
