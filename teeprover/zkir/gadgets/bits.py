"""Bit decomposition, and the check that a 255-bit decomposition is the canonical one (< r)."""

from __future__ import annotations

from teeprover.r1cs import R
from teeprover.zkir.gadgets import lc
from teeprover.zkir.gadgets.lc import LC, Synth

FIELD_BITS = R.bit_length()  # 255
# Bits of r - 1, most significant first: the bound a canonical decomposition must not exceed.
_R_MINUS_ONE_MSB = [(R - 1) >> i & 1 for i in reversed(range(FIELD_BITS))]


def decompose(s: Synth, x: LC, n: int) -> list[int]:
    """Allocate ``n`` boolean variables whose little-endian weighted sum equals ``x``.

    For ``n <= 254`` the decomposition is unique because ``2^254 < r``; for
    ``n = 255`` callers must add :func:`canonical`.  Cost: ``n + 1``.  In prove
    mode the caller has checked that ``x`` fits (with a message naming the op).
    """
    value = s.value(x) if s.proving else 0
    if value >> n:  # pragma: no cover - callers check first with a better message
        raise ValueError(f"value does not fit in {n} bits")
    bits = [s.new_var(value >> i & 1) for i in range(n)]
    for b in bits:
        s.enforce({b: 1}, {b: 1}, {b: 1})
    s.enforce(lc.weighted_sum(bits), lc.ONE, x)
    return bits


def canonical(s: Synth, bits: list[int]) -> None:
    """Enforce that the 255 little-endian ``bits`` encode an integer ``<= r - 1``.

    Scanning from the most significant bit, ``eq`` is 1 while the bits so far
    equal those of ``r - 1``.  Where ``r - 1`` has a 0, the bit must be 0 while
    ``eq`` holds; where it has a 1, ``eq`` becomes ``eq * bit``.  About 255 constraints.
    """
    assert len(bits) == FIELD_BITS
    eq: LC = lc.ONE
    eq_is_one = True
    for pos, c_bit in zip(reversed(range(FIELD_BITS)), _R_MINUS_ONE_MSB, strict=True):
        b = bits[pos]
        if c_bit:
            if eq_is_one:
                eq, eq_is_one = {b: 1}, False
            else:
                e = s.new_var(s.value(eq) * s.z[b] if s.proving else None)
                s.enforce(eq, {b: 1}, {e: 1})
                eq = {e: 1}
        else:
            s.enforce(eq, {b: 1}, {})
