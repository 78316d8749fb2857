"""SHA-256 (FIPS 180-4) over bits, and its out-of-circuit twin.

Written by hand because no maintained Python library emits R1CS; the
structure is the usual one (bellman's ``sha256`` gadget, circom's
``sha256``).  A bit is a linear combination that is either a constant (0 or 1)
or a boolean expression of one variable; a 32-bit word is 32 bits, least
significant first, so rotations and shifts are free re-indexings.

Costs per 64-byte compression when every input bit is a variable (the
``docs/zkir.md`` table; constant bits, as in the padding or the first block's
initial state, fold away):

- 3-input XOR (Σ0, Σ1, σ0, σ1): 2 constraints per bit (two 2-input XORs,
  ``2a·b = a + b − x``); a shifted-in 0 leaves a 2-input XOR (1).
- ``ch(e, f, g) = g + e·(f − g)``: 1 per bit.
- ``maj(a, b, c) = p + c·(a + b − 2p)`` with ``p = a·b``: 2 per bit.
- Addition mod 2^32 of several words: their sum as one linear combination,
  decomposed into 32 bits plus carry bits (n booleans + 1).

Message schedule 48 × (61 + 54 + 35), rounds 64 × (64 + 32 + 64 + 64 + 36 + 36),
final addition 8 × 34: **26,416** constraints per compression.
"""

from __future__ import annotations

import hashlib

from teeprover.r1cs import R
from teeprover.zkir.gadgets import lc
from teeprover.zkir.gadgets.lc import LC, Synth

Bit = LC
Word = list[Bit]

K = (
    0x428A2F98, 0x71374491, 0xB5C0FBCF, 0xE9B5DBA5, 0x3956C25B, 0x59F111F1, 0x923F82A4, 0xAB1C5ED5,
    0xD807AA98, 0x12835B01, 0x243185BE, 0x550C7DC3, 0x72BE5D74, 0x80DEB1FE, 0x9BDC06A7, 0xC19BF174,
    0xE49B69C1, 0xEFBE4786, 0x0FC19DC6, 0x240CA1CC, 0x2DE92C6F, 0x4A7484AA, 0x5CB0A9DC, 0x76F988DA,
    0x983E5152, 0xA831C66D, 0xB00327C8, 0xBF597FC7, 0xC6E00BF3, 0xD5A79147, 0x06CA6351, 0x14292967,
    0x27B70A85, 0x2E1B2138, 0x4D2C6DFC, 0x53380D13, 0x650A7354, 0x766A0ABB, 0x81C2C92E, 0x92722C85,
    0xA2BFE8A1, 0xA81A664B, 0xC24B8B70, 0xC76C51A3, 0xD192E819, 0xD6990624, 0xF40E3585, 0x106AA070,
    0x19A4C116, 0x1E376C08, 0x2748774C, 0x34B0BCB5, 0x391C0CB3, 0x4ED8AA4A, 0x5B9CCA4F, 0x682E6FF3,
    0x748F82EE, 0x78A5636F, 0x84C87814, 0x8CC70208, 0x90BEFFFA, 0xA4506CEB, 0xBEF9A3F7, 0xC67178F2,
)
IV = (0x6A09E667, 0xBB67AE85, 0x3C6EF372, 0xA54FF53A, 0x510E527F, 0x9B05688C, 0x1F83D9AB, 0x5BE0CD19)
_MASK = (1 << 32) - 1


# ---------------------------------------------------------------- out-of-circuit twin

def digest(message: bytes) -> bytes:
    return hashlib.sha256(message).digest()


def pad(message: bytes) -> bytes:
    """The message followed by FIPS 180-4 padding: ``0x80``, zeros, the bit length as 64-bit big-endian."""
    zeros = (55 - len(message)) % 64
    return message + b"\x80" + bytes(zeros) + (8 * len(message)).to_bytes(8, "big")


# ---------------------------------------------------------------- bits

def _constant(x: Bit) -> int | None:
    """The value of a constant bit, else ``None`` (inlined ``lc.constant_value``: this is the hot path)."""
    if not x:
        return 0
    return x.get(0) if len(x) == 1 else None


def const_word(x: int) -> Word:
    return [lc.const(x >> i & 1) for i in range(32)]


def _not(x: Bit) -> Bit:
    return lc.sub(lc.ONE, x)


# Each gadget below allocates the same variables in both modes; in prove mode it skips building the
# constraint's linear combinations (``Synth.enforce`` records nothing then), which halves witness time.

def _xor(s: Synth, a: Bit, b: Bit) -> Bit:
    ca, cb = _constant(a), _constant(b)
    if ca is not None:
        return _not(b) if ca else b
    if cb is not None:
        return _not(a) if cb else a
    if s.proving:
        return {s.new_var(s.value(a) ^ s.value(b)): 1}
    v = s.new_var()
    s.enforce(lc.scale(a, 2), b, lc.sub(lc.add(a, b), {v: 1}))  # 2ab = a + b - (a xor b)
    return {v: 1}


def _xor3(s: Synth, a: Bit, b: Bit, c: Bit) -> Bit:
    return _xor(s, _xor(s, a, b), c)


def _ch(s: Synth, e: Bit, f: Bit, g: Bit) -> Bit:
    """``e ? f : g``."""
    ce, cf, cg = _constant(e), _constant(f), _constant(g)
    if ce is not None:
        return f if ce else g
    if cf is not None and cg is not None:
        return lc.const(cf) if cf == cg else (e if cf else _not(e))
    if s.proving:
        return {s.new_var(s.value(f) if s.value(e) else s.value(g)): 1}
    v = s.new_var()
    s.enforce(e, lc.sub(f, g), lc.sub({v: 1}, g))
    return {v: 1}


def _and(s: Synth, a: Bit, b: Bit) -> Bit:
    ca, cb = _constant(a), _constant(b)
    if ca is not None:
        return b if ca else {}
    if cb is not None:
        return a if cb else {}
    if s.proving:
        return {s.new_var(s.value(a) * s.value(b)): 1}
    v = s.new_var()
    s.enforce(a, b, {v: 1})
    return {v: 1}


def _or(s: Synth, a: Bit, b: Bit) -> Bit:
    return lc.sub(lc.add(a, b), _and(s, a, b))


def _maj(s: Synth, a: Bit, b: Bit, c: Bit) -> Bit:
    """At least two of ``a, b, c``: ``p + c·(a + b − 2p)`` with ``p = a·b`` (2 constraints)."""
    ka, kb, kc = _constant(a), _constant(b), _constant(c)
    if ka is not None or kb is not None or kc is not None:
        bits = [a, b, c]
        consts = [k for k in (ka, kb, kc) if k is not None]
        free = [x for x, k in zip(bits, (ka, kb, kc), strict=True) if k is None]
        if len(consts) == 3:
            return lc.const(int(sum(consts) >= 2))
        if len(consts) == 2:
            return lc.const(consts[0]) if consts[0] == consts[1] else free[0]
        return _or(s, free[0], free[1]) if consts[0] else _and(s, free[0], free[1])
    p = _and(s, a, b)
    if s.proving:
        va, vb, vc = s.value(a), s.value(b), s.value(c)
        return {s.new_var(int(va + vb + vc >= 2)): 1}
    t = lc.sub(lc.add(a, b), lc.scale(p, 2))  # a xor b
    v = s.new_var()
    s.enforce(c, t, lc.sub({v: 1}, p))
    return {v: 1}


def _rotr(w: Word, n: int) -> Word:
    return [w[(i + n) % 32] for i in range(32)]


def _shr(w: Word, n: int) -> Word:
    return [w[i + n] if i + n < 32 else {} for i in range(32)]


def _xor3_words(s: Synth, a: Word, b: Word, c: Word) -> Word:
    return [_xor3(s, x, y, z) for x, y, z in zip(a, b, c, strict=True)]


def _add(s: Synth, words: list[Word], constant: int = 0) -> Word:
    """``(Σ words + constant) mod 2^32``: the sum decomposed into 32 + carry bits (booleans + 1 constraint).

    The sum is below ``2^35``, far below r, so its decomposition is unique.
    """
    bound = constant  # the largest possible sum: decides the number of carry bits
    variable = False
    for w in words:
        for i, x in enumerate(w):
            cx = _constant(x)
            if cx is None:
                variable = True
                bound += 1 << i
            else:
                bound += cx << i
    if not variable:
        return const_word(bound & _MASK)
    n = max(32, bound.bit_length())
    if s.proving:
        value = constant + sum(s.value(x) << i for w in words for i, x in enumerate(w))
        return [{s.new_var(value >> i & 1): 1} for i in range(n)][:32]
    total: dict[int, int] = {0: constant}
    for w in words:
        for i, x in enumerate(w):
            for v, coeff in x.items():
                total[v] = (total.get(v, 0) + (coeff << i)) % R
    bits = [s.new_var() for _ in range(n)]
    for b in bits:
        s.enforce({b: 1}, {b: 1}, {b: 1})
    s.enforce(lc.weighted_sum(bits), lc.ONE, {v: coeff for v, coeff in total.items() if coeff})
    return [{b: 1} for b in bits[:32]]


def _big_sigma0(s: Synth, x: Word) -> Word:
    return _xor3_words(s, _rotr(x, 2), _rotr(x, 13), _rotr(x, 22))


def _big_sigma1(s: Synth, x: Word) -> Word:
    return _xor3_words(s, _rotr(x, 6), _rotr(x, 11), _rotr(x, 25))


def _small_sigma0(s: Synth, x: Word) -> Word:
    return _xor3_words(s, _rotr(x, 7), _rotr(x, 18), _shr(x, 3))


def _small_sigma1(s: Synth, x: Word) -> Word:
    return _xor3_words(s, _rotr(x, 17), _rotr(x, 19), _shr(x, 10))


def compress(s: Synth, state: list[Word], block: list[Word]) -> list[Word]:
    """One SHA-256 compression of 16 message words into the 8 state words."""
    assert len(state) == 8 and len(block) == 16
    w = list(block)
    for t in range(16, 64):
        w.append(_add(s, [_small_sigma1(s, w[t - 2]), w[t - 7], _small_sigma0(s, w[t - 15]), w[t - 16]]))
    a, b, c, d, e, f, g, h = state
    for t in range(64):
        s1 = _big_sigma1(s, e)
        ch = [_ch(s, x, y, z) for x, y, z in zip(e, f, g, strict=True)]
        s0 = _big_sigma0(s, a)
        maj = [_maj(s, x, y, z) for x, y, z in zip(a, b, c, strict=True)]
        new_e = _add(s, [d, h, s1, ch, w[t]], K[t])
        new_a = _add(s, [h, s1, ch, w[t], s0, maj], K[t])
        a, b, c, d, e, f, g, h = new_a, a, b, c, new_e, e, f, g
    return [_add(s, [x, y]) for x, y in zip(state, [a, b, c, d, e, f, g, h], strict=True)]


def _word_from_bytes(four: list[list[Bit]]) -> Word:
    """Big-endian: the first byte is the most significant."""
    return [bit for byte in reversed(four) for bit in byte]


def sha256(s: Synth, message: list[list[Bit]]) -> list[list[Bit]]:
    """SHA-256 of ``message`` (bytes as 8 bits, least significant first; the caller range-checked them).

    Returns the 32 digest bytes in the same form.  The padding depends only on
    the length, so it is constant.
    """
    padding = pad(bytes(len(message)))[len(message):]
    data = list(message) + [[lc.const(byte >> i & 1) for i in range(8)] for byte in padding]
    state = [const_word(x) for x in IV]
    for start in range(0, len(data), 64):
        block = data[start:start + 64]
        state = compress(s, state, [_word_from_bytes(block[4 * j:4 * j + 4]) for j in range(16)])
    return [word[8 * k:8 * k + 8] for word in state for k in reversed(range(4))]
