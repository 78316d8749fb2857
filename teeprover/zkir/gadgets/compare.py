"""Zero test and unsigned comparison."""

from __future__ import annotations

from teeprover.r1cs import R
from teeprover.zkir.gadgets import bits as bitsg
from teeprover.zkir.gadgets import lc
from teeprover.zkir.gadgets.lc import LC, Synth


def _inverse_or_zero(x: int) -> int:
    return pow(x, R - 2, R) if x else 0


def is_zero(s: Synth, x: LC) -> int:
    """Allocate ``inv, out`` with ``x * inv = 1 - out`` and ``x * out = 0``: ``out = (x == 0)``."""
    inv = s.new_var(lambda: _inverse_or_zero(s.value(x)))
    out = s.new_var(lambda: int(s.value(x) == 0))
    s.enforce(x, {inv: 1}, lc.sub(lc.ONE, {out: 1}))
    s.enforce(x, {out: 1}, {})
    return out


def less_than(s: Synth, a: LC, b: LC, n: int) -> LC:
    """``a < b`` for ``n``-bit unsigned ``a``, ``b`` (both range-checked here), ``n <= 253``.

    ``t = a - b + 2^n`` lies in ``[1, 2^(n+1))``; ``a < b`` iff bit ``n`` of ``t`` is 0.
    Cost: ``3n + 4`` constraints.
    """
    bitsg.decompose(s, a, n)
    bitsg.decompose(s, b, n)
    t = lc.add(lc.sub(a, b), lc.const(1 << n))
    t_bits = bitsg.decompose(s, t, n + 1)
    return lc.sub(lc.ONE, {t_bits[n]: 1})
