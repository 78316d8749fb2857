"""Zero test and unsigned comparison."""

from __future__ import annotations

from teeprover.r1cs import R
from teeprover.zkir.gadgets import bits as bitsg
from teeprover.zkir.gadgets import lc
from teeprover.zkir.gadgets.lc import LC, ConstraintBuilder, WitnessBuilder


def is_zero_constraints(cs: ConstraintBuilder, x: LC) -> int:
    """Allocate ``inv, out`` with ``x * inv = 1 - out`` and ``x * out = 0``: ``out = (x == 0)``."""
    inv = cs.new_var()
    out = cs.new_var()
    cs.enforce(x, {inv: 1}, lc.sub(lc.ONE, {out: 1}))
    cs.enforce(x, {out: 1}, {})
    return out


def is_zero_witness(w: WitnessBuilder, x: int) -> int:
    x %= R
    w.push(pow(x, R - 2, R) if x else 0)
    out = 0 if x else 1
    w.push(out)
    return out


def less_than_constraints(cs: ConstraintBuilder, a: LC, b: LC, n: int) -> LC:
    """``a < b`` for ``n``-bit unsigned ``a``, ``b`` (both range-checked here), ``n <= 253``.

    ``t = a - b + 2^n`` lies in ``[1, 2^(n+1))``; ``a < b`` iff bit ``n`` of ``t`` is 0.
    Cost: ``3n + 4`` constraints.
    """
    bitsg.decompose_constraints(cs, a, n)
    bitsg.decompose_constraints(cs, b, n)
    t = lc.add(lc.sub(a, b), lc.const(1 << n))
    t_bits = bitsg.decompose_constraints(cs, t, n + 1)
    return lc.sub(lc.ONE, {t_bits[n]: 1})


def less_than_witness(w: WitnessBuilder, a: int, b: int, n: int) -> int:
    bitsg.decompose_witness(w, a, n)
    bitsg.decompose_witness(w, b, n)
    t_bits = bitsg.decompose_witness(w, a - b + (1 << n), n + 1)
    return 1 - t_bits[n]
