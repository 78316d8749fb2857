"""The squaring chain, the test and benchmark circuit: ``s0 = x; s_{i+1} = s_i^2 + i``, ``out = s_n``.

The same circuit as ``tests/fixtures/circom/squaring_chain.circom``, built directly as an R1CS with
its witness (variables: 0 one | 1 out | 2 x | 3.. s_1..s_n; public: out and x when ``n_public == 2``).
"""

from __future__ import annotations

from teeprover.curve import R
from teeprover.r1cs import R1CS, Constraint


def squaring_chain(n: int, x: int = 3, n_public: int = 2) -> tuple[R1CS, list[int]]:
    """``n`` squaring constraints plus ``out = s_n``: n + 1 constraints, and the satisfying witness."""
    cons = []
    s_var = [2] + [3 + i for i in range(n)]
    for i in range(n):
        a = s_var[i]
        cons.append(Constraint({a: 1}, {a: 1}, {s_var[i + 1]: 1, 0: (-i) % R}))
    cons.append(Constraint({s_var[-1]: 1}, {0: 1}, {1: 1}))
    z = [1, 0, x]
    s = x
    for i in range(n):
        s = (s * s + i) % R
        z.append(s)
    z[1] = s
    return R1CS(num_variables=3 + n, num_public=n_public, constraints=tuple(cons)), z
