"""The contribution record of a ``.ptau`` file (section 7), exactly as snarkjs 0.7.6 writes and checks it.

snarkjs's hashes and RNG are re-made here (BLAKE2b-512 with its exportable mid-state, ffjavascript's ChaCha20,
hash-to-G2 with its Fq2 square roots): no library exposes the mid-state or the RNG's exact output, and
``snarkjs powersoftau verify`` recomputes every byte.  The file format itself is ``ptau.py``.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Sequence
from typing import Any

from teeprover import _native, curve
from teeprover.curve import P, R

_RQ_INV = pow(pow(2, 384, P), -1, P)  # 2^-384 mod q: undoes the Montgomery form of one coordinate


# The record exactly as snarkjs 0.7.6 writes and checks it
# (powersoftau_contribute.js, powersoftau_utils.js, keypair.js, misc.js; ffjavascript
# chacha.js, wasm_curve.js fromRng / LEMtoU / LEMtoC; @noble/hashes blake2b).
#
# ``snarkjs powersoftau verify`` recomputes, for the last contribution:
#   challenge   = blake2b-512 of the initial accumulator (all generators), for ceremonyPower
#   g2_sp(k)    = hashToG2(blake2b(k || challenge || U(g1_s) || U(g1_sx))), k = 0/1/2 for tau/alpha/beta
#   and checks e(g1_s, g2_spx) = e(g1_sx, g2_sp), that the contributed tauG1/tauG2/alphaG1/
#   betaG1/betaG2 follow the generators by the same secrets, that sections 2-6 are powers,
#   responseHash = blake2b continued from ``partialHash`` with U(pubkey), and
#   nextChallenge = blake2b(responseHash || U(sections 2..6)).
# U = ffjavascript "uncompressed": x || y big endian (G2 coordinates c1 || c0), identity zeros.
# C = ffjavascript "compressed": x big endian, 0x80 set when y is "negative", identity 0x40 00...

_HALF_P = (P - 1) // 2
_MASK64 = (1 << 64) - 1
_B2_IV = (0x6A09E667F3BCC908, 0xBB67AE8584CAA73B, 0x3C6EF372FE94F82B, 0xA54FF53A5F1D36F1,
          0x510E527FADE682D1, 0x9B05688C2B3E6C1F, 0x1F83D9ABFB41BD6B, 0x5BE0CD19137E2179)
_B2_SIGMA = (
    (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15), (14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3),
    (11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4), (7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8),
    (9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13), (2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9),
    (12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11), (13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10),
    (6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5), (10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0),
)


def _b2_compress(h: list[int], block: bytes, t: int, last: bool) -> None:
    m = struct.unpack("<16Q", block)
    v = h + list(_B2_IV)
    v[12] ^= t & _MASK64
    v[13] ^= t >> 64
    if last:
        v[14] ^= _MASK64
    M = _MASK64
    for r in range(12):
        s = _B2_SIGMA[r % 10]
        for i, (a, b, c, d) in enumerate(((0, 4, 8, 12), (1, 5, 9, 13), (2, 6, 10, 14), (3, 7, 11, 15),
                                          (0, 5, 10, 15), (1, 6, 11, 12), (2, 7, 8, 13), (3, 4, 9, 14))):
            va, vb, vc, vd = v[a], v[b], v[c], v[d]
            va = (va + vb + m[s[2 * i]]) & M
            vd ^= va
            vd = ((vd >> 32) | (vd << 32)) & M
            vc = (vc + vd) & M
            vb ^= vc
            vb = ((vb >> 24) | (vb << 40)) & M
            va = (va + vb + m[s[2 * i + 1]]) & M
            vd ^= va
            vd = ((vd >> 16) | (vd << 48)) & M
            vc = (vc + vd) & M
            vb ^= vc
            vb = ((vb >> 63) | (vb << 1)) & M
            v[a], v[b], v[c], v[d] = va, vb, vc, vd
    for i in range(8):
        h[i] ^= v[i] ^ v[i + 8]


class _Blake2b512:
    """BLAKE2b-512 whose mid-state can be exported as snarkjs's 216-byte ``partialHash``
    (misc.js ``toPartialHash``: the 128-byte block buffer, h as 16 u32 LE, then u32 LE
    ``length - pos`` at word 16 and ``pos`` at word 18).  Like @noble/hashes, the last
    block stays in the buffer until more data or the digest arrives."""

    def __init__(self) -> None:
        self.h = list(_B2_IV)
        self.h[0] ^= 0x01010000 ^ 64  # digest length 64, no key, fanout = depth = 1
        self.buf = b""
        self.length = 0

    def update(self, data: bytes) -> None:
        data = self.buf + bytes(data)
        self.length += len(data) - len(self.buf)
        done = self.length - len(data)
        blocks = max(0, (len(data) - 1) // 128)  # the last (possibly full) block stays buffered
        if blocks:
            # Natively (teeprover/_native.c): the Python compression runs at ~0.7 MB/s.
            state = _native.blake2b_blocks(struct.pack("<8Q", *self.h), data[:128 * blocks], done)
            self.h = list(struct.unpack("<8Q", state))
        self.buf = data[128 * blocks:]

    def partial(self) -> bytes:
        words = [w for x in self.h for w in (x & 0xFFFFFFFF, x >> 32)]
        words += [self.length - len(self.buf), 0, len(self.buf), 0]
        return self.buf.ljust(128, b"\0") + struct.pack("<20I", *words) + bytes(8)

    def digest(self) -> bytes:
        h = list(self.h)
        _b2_compress(h, self.buf.ljust(128, b"\0"), self.length, True)
        return struct.pack("<8Q", *h)


class _ChaCha:
    """ffjavascript's ChaCha20 RNG (chacha.js): 8 u32 seed, counter in words 12..15."""

    def __init__(self, seed: Sequence[int]) -> None:
        self.state = [0x61707865, 0x3320646E, 0x79622D32, 0x6B206574, *seed, 0, 0, 0, 0]
        self.buf: list[int] = []
        self.idx = 16

    def _update(self) -> None:
        st = list(self.state)
        M = 0xFFFFFFFF

        def qr(a: int, b: int, c: int, d: int) -> None:
            st[a] = (st[a] + st[b]) & M
            st[d] ^= st[a]
            st[d] = ((st[d] << 16) | (st[d] >> 16)) & M
            st[c] = (st[c] + st[d]) & M
            st[b] ^= st[c]
            st[b] = ((st[b] << 12) | (st[b] >> 20)) & M
            st[a] = (st[a] + st[b]) & M
            st[d] ^= st[a]
            st[d] = ((st[d] << 8) | (st[d] >> 24)) & M
            st[c] = (st[c] + st[d]) & M
            st[b] ^= st[c]
            st[b] = ((st[b] << 7) | (st[b] >> 25)) & M

        for _ in range(10):
            qr(0, 4, 8, 12)
            qr(1, 5, 9, 13)
            qr(2, 6, 10, 14)
            qr(3, 7, 11, 15)
            qr(0, 5, 10, 15)
            qr(1, 6, 11, 12)
            qr(2, 7, 8, 13)
            qr(3, 4, 9, 14)
        self.buf = [(x + y) & M for x, y in zip(st, self.state, strict=True)]
        self.idx = 0
        for w in range(12, 16):
            self.state[w] = (self.state[w] + 1) & M
            if self.state[w]:
                break

    def next_u32(self) -> int:
        if self.idx == 16:
            self._update()
        self.idx += 1
        return self.buf[self.idx - 1]

    def next_u64(self) -> int:
        hi = self.next_u32()
        return (hi << 32) + self.next_u32()

    def next_bool(self) -> bool:
        return self.next_u32() & 1 == 1

    def next_fq(self) -> int:
        """wasm_field1.fromRng: 6 u64 (first lowest), masked to 381 bits, rejected if >= q; the
        raw number is the element's *Montgomery* form, so the element is v / 2^384."""
        while True:
            v = 0
            for i in range(6):
                v += self.next_u64() << (64 * i)
            v &= (1 << 381) - 1
            if v < P:
                return v * _RQ_INV % P


def _fq_sqrt(a: int) -> int | None:
    r = pow(a, (P + 1) // 4, P)
    return r if r * r % P == a % P else None


def _fq2_mul(a: tuple[int, int], b: tuple[int, int]) -> tuple[int, int]:
    return ((a[0] * b[0] - a[1] * b[1]) % P, (a[0] * b[1] + a[1] * b[0]) % P)


def _fq2_sqrt(a: tuple[int, int]) -> tuple[int, int] | None:
    """A square root in Fq2 = Fq[u]/(u^2+1) (either one), or None."""
    a0, a1 = a
    if a1 == 0:
        r = _fq_sqrt(a0)
        if r is not None:
            return (r, 0)
        r = _fq_sqrt(-a0 % P)  # sqrt(-1) = u
        return None if r is None else (0, r)
    alpha = _fq_sqrt((a0 * a0 + a1 * a1) % P)
    if alpha is None:
        return None
    inv2 = (P + 1) // 2
    for delta in ((a0 + alpha) * inv2 % P, (a0 - alpha) * inv2 % P):
        x0 = _fq_sqrt(delta)
        if x0:
            x1 = a1 * pow(2 * x0, -1, P) % P
            if _fq2_mul((x0, x1), (x0, x1)) == (a0 % P, a1 % P):
                return (x0, x1)
    return None


def _fq_negative(x: int) -> bool:
    return x > _HALF_P


def _fq2_negative(y: tuple[int, int]) -> bool:
    return _fq_negative(y[1]) if y[1] else _fq_negative(y[0])


# G2 cofactor (ffjavascript bls12381.js cofactorG2): fromRng multiplies by the whole of it.
_G2_COFACTOR = int("5d543a95414e7f1091d50792876a202cd91de4547085abaa68a205b2e5a7ddfa628f1cb4d9e82ef21537e293a"
                   "6691ae1616ec6e786f0c70cf1c38e31c7238e5", 16)


def _mul_big(p: Any, k: int, zero: Any) -> Any:
    """p * k for any integer k (the curve library's scalars stop at r; cofactors do not)."""
    acc = zero
    for bit in bin(k)[2:]:
        acc = acc + acc
        if bit == "1":
            acc = acc + p
    return acc


def _hash_to_g2(digest: bytes) -> curve.G2:
    """keypair.js ``hashToG2``: ChaCha seeded with the first 8 big-endian u32 of the hash, then
    wasm_curve.js ``fromRng`` (x from the RNG until x^3 + b is a square, y's sign from a bit,
    times the G2 cofactor)."""
    rng = _ChaCha(struct.unpack(">8I", digest[:32]))
    b = (4, 4)
    while True:
        x = (rng.next_fq(), rng.next_fq())
        greatest = rng.next_bool()
        x3b = _fq2_mul(_fq2_mul(x, x), x)
        y = _fq2_sqrt(((x3b[0] + b[0]) % P, (x3b[1] + b[1]) % P))
        if y is not None:
            break
    if _fq2_negative(y) != greatest:
        y = (-y[0] % P, -y[1] % P)
    raw = b"".join(c.to_bytes(48, "little") for c in (*x, *y))
    point = curve.G2.from_xy_bytes_unchecked_le(raw)  # on the curve, not (yet) in G2
    return _mul_big(point, _G2_COFACTOR, curve.g2_identity())


def _u_from_xy(xy: bytes, size: int) -> bytes:
    """U representation of concatenated LE-standard affine points (curve.g1s_to_xy layout)."""
    out = []
    for o in range(0, len(xy), size):
        pt = xy[o:o + size]
        if size == 96:
            out.append(pt[47::-1] + pt[95:47:-1])
        else:  # G2: x.c1 || x.c0 || y.c1 || y.c0, each big endian
            out.append(pt[95:47:-1] + pt[47::-1] + pt[191:143:-1] + pt[143:95:-1])
    return b"".join(out)


def _c_from_xy(xy: bytes, size: int) -> bytes:
    """C representation (ffjavascript LEMtoC) of concatenated LE-standard affine points."""
    out = []
    zero = bytes(size)
    for o in range(0, len(xy), size):
        pt = xy[o:o + size]
        if pt == zero:
            out.append(b"\x40" + bytes(size // 2 - 1))
            continue
        if size == 96:
            neg = _fq_negative(int.from_bytes(pt[48:96], "little"))
            x = bytearray(pt[47::-1])
        else:
            y = (int.from_bytes(pt[96:144], "little"), int.from_bytes(pt[144:192], "little"))
            neg = _fq2_negative(y)
            x = bytearray(pt[95:47:-1] + pt[47::-1])
        if neg:
            x[0] |= 0x80
        out.append(bytes(x))
    return b"".join(out)


def _u_g1(p: curve.G1) -> bytes:
    return _u_from_xy(curve.g1s_to_xy([p]), 96)


def _u_g2(p: curve.G2) -> bytes:
    return _u_from_xy(curve.g2s_to_xy([p]), 192)


def first_challenge_hash(power: int) -> bytes:
    """powersoftau_utils.js ``calculateFirstChallengeHash``: blake2b of the initial accumulator."""
    h = hashlib.blake2b(digest_size=64)
    h.update(hashlib.blake2b(digest_size=64).digest())
    u1, u2 = _u_g1(curve.g1_generator()), _u_g2(curve.g2_generator())
    n = 1 << power
    for unit, count in ((u1, 2 * n - 1), (u2, n), (u1, n), (u1, n)):
        chunk = unit * min(count, 1 << 14)
        for _ in range(count >> 14):
            h.update(unit * (1 << 14))
        h.update(unit * (count & ((1 << 14) - 1)))
        del chunk
    h.update(u2)
    return h.digest()


def _g2_sp(personalization: int, challenge: bytes, g1_s: curve.G1, g1_sx: curve.G1) -> curve.G2:
    h = hashlib.blake2b(bytes([personalization]) + challenge + _u_g1(g1_s) + _u_g1(g1_sx), digest_size=64)
    return _hash_to_g2(h.digest())


def contribution_record(power: int, secrets3: tuple[int, int, int], xy: dict[int, bytes], rng: Any,
                        name: str) -> bytes:
    """Section 7 with one contribution taking the initial accumulator to ``xy`` (sections 2-6 as
    LE-standard affine points) by the secrets (tau, alpha, beta)."""
    challenge = first_challenge_hash(power)
    g1 = curve.g1_generator()
    key_g1: list[curve.G1] = []
    key_g2: list[curve.G2] = []
    for pers, prv in enumerate(secrets3):
        g1_s = curve.g1_mul(g1, rng.randrange(1, R))
        g1_sx = curve.g1_mul(g1_s, prv)
        key_g1 += [g1_s, g1_sx]
        key_g2.append(curve.g2_mul(_g2_sp(pers, challenge, g1_s, g1_sx), prv))
    key_xy1, key_xy2 = curve.g1s_to_xy(key_g1), curve.g2s_to_xy(key_g2)

    response = _Blake2b512()
    response.update(challenge)
    for sec, size in ((2, 96), (3, 192), (4, 96), (5, 96), (6, 192)):
        response.update(_c_from_xy(xy[sec], size))
    partial = response.partial()
    response.update(_u_from_xy(key_xy1, 96) + _u_from_xy(key_xy2, 192))
    response_hash = response.digest()

    nxt = hashlib.blake2b(response_hash, digest_size=64)
    for sec, size in ((2, 96), (3, 192), (4, 96), (5, 96), (6, 192)):
        nxt.update(_u_from_xy(xy[sec], size))

    name_bytes = name.encode()[:64]
    params = bytes([1, len(name_bytes)]) + name_bytes
    record = (curve.to_montgomery(xy[2][96:192]) + curve.to_montgomery(xy[3][192:384]) + curve.to_montgomery(xy[4][:96])
              + curve.to_montgomery(xy[5][:96]) + curve.to_montgomery(xy[6][:192])
              + curve.to_montgomery(key_xy1) + curve.to_montgomery(key_xy2)
              + partial + nxt.digest() + struct.pack("<I", 0)
              + struct.pack("<I", len(params)) + params)
    return struct.pack("<I", 1) + record
