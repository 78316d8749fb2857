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

The prover's side works on 32-byte vectors (the witness, ``A z``, ``B z``, ``h``): ``A z`` and
``B z`` by :func:`teeprover.curve.fr_evaluations` from the coefficients in a zkey's section-4 layout
(:func:`coeff_records`, whether the key came from a file or from our setup), ``h = D`` on the odd
coset by :func:`teeprover.curve.witness_map`: one implementation for the streamed and the in-memory
prover.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

from teeprover.curve import R
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


_RECORD = struct.Struct("<III32s")
_RR2 = pow(2, 512, R)  # section 4 stores v * 2^512 mod r ("Montgomery twice", see teeprover.snarkjs.zkey)


def coeff_records(coeffs: Sequence[Coeff]) -> bytes:
    """``coeffs`` in a zkey's section-4 layout: ``u32 count``, then ``(u32 matrix, u32 constraint, u32
    signal, 32-byte v * 2^512 mod r)`` records."""
    pack = _RECORD.pack
    return struct.pack("<I", len(coeffs)) + b"".join(
        [pack(c.matrix, c.constraint, c.signal, (c.value * _RR2 % R).to_bytes(32, "little")) for c in coeffs])


def prepare(coeffs: Sequence[Coeff], cache: dict[str, object] | None = None) -> bytes:
    """:func:`coeff_records` of a key's coefficients, built once and cached on the key (``cache``)."""
    if cache is not None:
        got = cache.get("qap_records")
        if isinstance(got, bytes):
            return got
    records = coeff_records(coeffs)
    if cache is not None:
        cache["qap_records"] = records
    return records

