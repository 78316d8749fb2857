"""R1CS -> QAP reduction, snarkjs flavour (shared by setup and prove, like arkworks' r1cs_to_qap.rs).

* The QAP domain has n = 2^k points ``w^i`` (ffjavascript's roots, see
  :func:`teeprover.curve.root_of_unity`); constraint ``c`` sits on ``w^c``.
* snarkjs appends one row per public variable (and the constant): row
  ``num_constraints + s`` has ``A = z_s``, ``B = C = 0``.  It makes the IC points
  linearly independent (Groth16 needs it) and we keep it for key compatibility.
* The witness map does not divide by the vanishing polynomial.  With
  ``D(x) = A(x)B(x) - C(x)`` (degree <= 2n-2) and ``v_j = w_{2n}^j``,
  ``D(tau) = sum_j D(v_j) L'_j(tau)`` over the 2n-th roots, and ``D`` vanishes on the
  even ones (the constraint domain).  So ``h_i = D(v_{2i+1})`` paired with the H points
  ``L'_{2i+1}(tau)/delta`` gives ``h(tau) t(tau)/delta``: snarkjs's zkey section 9.
  ``D(v_{2i+1})`` is computed on the odd coset by iFFT, scale by ``w_{2n}^k``, FFT.
"""

from __future__ import annotations

from collections.abc import Sequence

from teeprover import curve
from teeprover.curve import R, Scalar
from teeprover.groth16.types import Coeff
from teeprover.r1cs import R1CS


def constraint_coeffs(r1cs: R1CS) -> tuple[Coeff, ...]:
    """A and B entries in snarkjs's zkey section 4 order, plus the public-input rows."""
    out: list[Coeff] = []
    for c, con in enumerate(r1cs.constraints):
        for s, v in con.a.items():
            if v % R:
                out.append(Coeff(0, c, s, v % R))
        for s, v in con.b.items():
            if v % R:
                out.append(Coeff(1, c, s, v % R))
    n_c = r1cs.num_constraints
    for s in range(r1cs.num_public + 1):
        out.append(Coeff(0, n_c + s, s, 1))
    return tuple(out)


class _Prepared:
    """Per-key data for the witness map (built once, cached on the key)."""

    def __init__(self, coeffs: Sequence[Coeff], n: int) -> None:
        self.n = n
        self.a = [(c.constraint, c.signal, c.value) for c in coeffs if c.matrix == 0]
        self.b = [(c.constraint, c.signal, c.value) for c in coeffs if c.matrix == 1]
        if any(c.constraint >= n for c in coeffs):
            raise ValueError("coefficient outside the QAP domain")
        # p(x) -> p(w_2n x): coefficient k times w_2n^k
        self.odd_shift = curve.powers(curve.root_of_unity(2 * n), n)


def prepare(coeffs: Sequence[Coeff], domain_size: int, cache: dict[str, object] | None = None) -> _Prepared:
    if cache is not None:
        prep = cache.get("qap")
        if isinstance(prep, _Prepared) and prep.n == domain_size:
            return prep
    prep = _Prepared(coeffs, domain_size)
    if cache is not None:
        cache["qap"] = prep
    return prep


def _odd_coset(evals: list[Scalar], prep: _Prepared) -> list[Scalar]:
    coeffs = curve.ifft(evals, prep.n)
    return curve.fft(curve.scale(coeffs, prep.odd_shift), prep.n)


def witness_map(prep: _Prepared, witness: Sequence[int]) -> list[Scalar]:
    """``[D(w_2n^(2i+1)) for i < n]``: the scalars for the H-query MSM (snarkjs's buffPodd_T)."""
    n = prep.n
    acc_a = [0] * n
    acc_b = [0] * n
    for c, s, v in prep.a:
        acc_a[c] += v * witness[s]
    for c, s, v in prep.b:
        acc_b[c] += v * witness[s]
    a_t = curve.frs(acc_a)
    b_t = curve.frs(acc_b)
    c_t = [x * y for x, y in zip(a_t, b_t, strict=True)]
    a_odd = _odd_coset(a_t, prep)
    b_odd = _odd_coset(b_t, prep)
    c_odd = _odd_coset(c_t, prep)
    return [x * y - z for x, y, z in zip(a_odd, b_odd, c_odd, strict=True)]
