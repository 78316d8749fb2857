"""Bit decomposition, and the check that a 255-bit decomposition is the canonical one (< r)."""

from __future__ import annotations

from teeprover.r1cs import R
from teeprover.zkir.gadgets import lc
from teeprover.zkir.gadgets.lc import LC, ConstraintBuilder, WitnessBuilder

FIELD_BITS = R.bit_length()  # 255
# Bits of r - 1, most significant first: the bound a canonical decomposition must not exceed.
_R_MINUS_ONE_MSB = [(R - 1) >> i & 1 for i in reversed(range(FIELD_BITS))]


def decompose_constraints(cs: ConstraintBuilder, x: LC, n: int) -> list[int]:
    """Allocate ``n`` boolean variables whose little-endian weighted sum equals ``x``.

    For ``n <= 254`` the decomposition is unique because ``2^254 < r``; for
    ``n = 255`` callers must add :func:`canonical_constraints`.  Cost: ``n + 1``.
    """
    bits = [cs.new_var() for _ in range(n)]
    for b in bits:
        cs.enforce({b: 1}, {b: 1}, {b: 1})
    cs.enforce(lc.weighted_sum(bits), lc.ONE, x)
    return bits


def decompose_witness(w: WitnessBuilder, x: int, n: int) -> list[int]:
    if x >> n:
        raise ValueError(f"value does not fit in {n} bits")  # callers check first with a better message
    bits = [x >> i & 1 for i in range(n)]
    for b in bits:
        w.push(b)
    return bits


def canonical_constraints(cs: ConstraintBuilder, bits: list[int]) -> None:
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
                e = cs.new_var()
                cs.enforce(eq, {b: 1}, {e: 1})
                eq = {e: 1}
        else:
            cs.enforce(eq, {b: 1}, {})


def canonical_witness(w: WitnessBuilder, bits: list[int]) -> None:
    eq = 1
    eq_is_one = True
    for pos, c_bit in zip(reversed(range(FIELD_BITS)), _R_MINUS_ONE_MSB, strict=True):
        if c_bit:
            if eq_is_one:
                eq, eq_is_one = bits[pos], False
            else:
                eq = eq * bits[pos]
                w.push(eq)
