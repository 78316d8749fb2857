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
    """Per-key data for the witness map (built once, cached on the key).

    Everything is laid out in the *native* FFT order (arkworks' roots), so the hot
    path never permutes: constraint ``c`` (snarkjs point ``w^c``) is accumulated
    straight into native slot ``c*j mod n``, and the odd-coset values come out in
    native order too; :attr:`h_order` says which H point each of them pairs with.
    """

    def __init__(self, coeffs: Sequence[Coeff], n: int) -> None:
        if any(c.constraint >= n for c in coeffs):
            raise ValueError("coefficient outside the QAP domain")
        self.n = n
        pos, to_native = curve.native_order(n)  # snarkjs index i sits at native slot i*j mod n
        # (slot, signal, value) with value 1 split out: no multiplication for the common case
        self.a1 = [(pos[c.constraint], c.signal) for c in coeffs if c.matrix == 0 and c.value == 1]
        self.b1 = [(pos[c.constraint], c.signal) for c in coeffs if c.matrix == 1 and c.value == 1]
        self.a = [(pos[c.constraint], c.signal, c.value) for c in coeffs if c.matrix == 0 and c.value != 1]
        self.b = [(pos[c.constraint], c.signal, c.value) for c in coeffs if c.matrix == 1 and c.value != 1]
        self._domain_data(to_native)

    def _domain_data(self, to_native: list[int]) -> None:
        # p(x) -> p(w_2n x): coefficient k times w_2n^k
        self.odd_shift = curve.powers(curve.root_of_unity(2 * self.n), self.n)
        # native output slot m is snarkjs's D(w_2n^(2i+1)) with i = m * j^-1 mod n
        self.h_order = list(to_native)

    has_matrices = True

    @classmethod
    def without_matrices(cls, n: int) -> _Prepared:
        """Only the domain data: for a caller that computes ``A z``, ``B z`` itself and passes them to
        :func:`witness_map_native` (:func:`evaluations_native` refuses such an object)."""
        self = cls.__new__(cls)
        self.n = n
        self.a1, self.b1, self.a, self.b = [], [], [], []
        self.has_matrices = False
        self._domain_data(curve.native_order(n)[1])
        return self


def prepare(coeffs: Sequence[Coeff], domain_size: int, cache: dict[str, object] | None = None) -> _Prepared:
    if cache is not None:
        prep = cache.get("qap")
        if isinstance(prep, _Prepared) and prep.n == domain_size:
            return prep
    prep = _Prepared(coeffs, domain_size)
    if cache is not None:
        cache["qap"] = prep
    return prep


_ZERO = Scalar.zero()


def _odd_coset_native(evals_native: list[Scalar], prep: _Prepared) -> list[Scalar]:
    coeffs = curve.ifft_native(evals_native, prep.n)
    shifted = [c * p for c, p in zip(coeffs, prep.odd_shift, strict=False)]
    del coeffs  # one vector of n scalars fewer while the FFT runs
    return curve.fft_native(shifted, prep.n)


def evaluations_native(prep: _Prepared, witness: Sequence[int]) -> tuple[list[int], list[int]]:
    """``(A z, B z)`` on the domain, native order (not reduced)."""
    if not prep.has_matrices:
        raise ValueError("this QAP data has no matrices: pass the evaluations to witness_map_native")
    n = prep.n
    acc_a = [0] * n
    acc_b = [0] * n
    for c, s in prep.a1:
        acc_a[c] += witness[s]
    for c, s in prep.b1:
        acc_b[c] += witness[s]
    for c, s, v in prep.a:
        acc_a[c] += v * witness[s]
    for c, s, v in prep.b:
        acc_b[c] += v * witness[s]
    return acc_a, acc_b


def witness_map_native(prep: _Prepared, witness: Sequence[int],
                       evals: tuple[list[int], list[int]] | None = None) -> list[Scalar]:
    """``D`` on the odd coset in native order: entry m pairs with H point ``prep.h_order[m]``.

    ``evals``: :func:`evaluations_native` of this witness when the caller already has it.
    """
    acc_a, acc_b = evals if evals is not None else evaluations_native(prep, witness)
    evals = None  # the integer evaluations (~70 MB each at k=20) go once converted (if the caller let go)
    # Each list is n library scalars (~90 MB at k=20): dropped as soon as it is used, so that at most
    # four are alive at once.
    a_t = curve.frs(acc_a)
    del acc_a
    b_t = curve.frs(acc_b)
    del acc_b
    c_t = [x * y for x, y in zip(a_t, b_t, strict=True)]
    a_odd = _odd_coset_native(a_t, prep)
    del a_t
    b_odd = _odd_coset_native(b_t, prep)
    del b_t
    ab_odd = [x * y for x, y in zip(a_odd, b_odd, strict=True)]
    del a_odd, b_odd
    c_odd = _odd_coset_native(c_t, prep)
    del c_t
    return [x - z for x, z in zip(ab_odd, c_odd, strict=True)]


def witness_map(prep: _Prepared, witness: Sequence[int]) -> list[Scalar]:
    """``[D(w_2n^(2i+1)) for i < n]``: the scalars for the H-query MSM (snarkjs's buffPodd_T)."""
    native = witness_map_native(prep, witness)
    out: list[Scalar] = [_ZERO] * prep.n
    for m, i in enumerate(prep.h_order):
        out[i] = native[m]
    return out
