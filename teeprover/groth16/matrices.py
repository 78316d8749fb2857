"""The R1CS's non-zero A, B and C entries as flat arrays (numpy), and their grouping per signal for setup.

Setup needs, for every signal, the sum of one parameter point per entry times the entry's coefficient.
Per-signal Python lists of ``(index, coefficient)`` tuples cost ~100 bytes an entry and seconds of
interpreter time at k=20 (several GiB at k=22); here an entry is a few bytes in parallel arrays, read
from the R1CS in one pass, and grouped per signal by a stable sort (numpy).  Almost every coefficient
is +-1, so an entry stores only its sign; the rare other values sit in one list, named by ``ref``.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from teeprover.curve import R
from teeprover.r1cs import R1CS

_MINUS_ONE = R - 1
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True, eq=False)
class Entries:
    """A stream of matrix entries: entry ``j`` is in matrix ``matrix[j]`` (0 = A, 1 = B, 2 = C), row
    ``constraint[j]``, column ``signal[j]``; its coefficient is +1 / -1 where ``unit[j]`` says so, else
    (``unit[j] == 0``) ``values[ref[j]]`` (reduced, never 0 or +-1)."""

    matrix: npt.NDArray[np.uint8]
    constraint: IntArray
    signal: IntArray
    unit: npt.NDArray[np.int8]
    ref: npt.NDArray[np.int32]
    values: list[int]

    def __len__(self) -> int:
        return len(self.signal)

    def coefficient(self, j: int) -> int:
        u = int(self.unit[j])
        return 1 if u == 1 else _MINUS_ONE if u == -1 else self.values[int(self.ref[j])]


@dataclass(frozen=True, eq=False)
class Matrices:
    """``ab``: the A and B entries in zkey section 4 order (per constraint its A entries, then its B entries,
    in the R1CS's order; then snarkjs's public-input rows ``A[num_constraints + s][s] = 1`` for
    ``s <= num_public``, see :mod:`teeprover.groth16.qap`), exactly :func:`qap.constraint_coeffs`.
    ``c``: the C entries.  Both share one ``values`` list."""

    ab: Entries
    c: Entries
    num_variables: int
    num_public: int
    num_constraints: int

    @classmethod
    def from_r1cs(cls, r1cs: R1CS) -> Matrices:
        values: list[int] = []
        streams = [(array("B"), array("q"), array("q"), array("b"), array("i")) for _ in range(2)]
        for c, con in enumerate(r1cs.constraints):
            for mat, row in ((0, con.a), (1, con.b), (2, con.c)):
                m_, c_, s_, u_, r_ = streams[mat >> 1]
                for s, v in row.items():
                    v %= R
                    if v == 1:
                        u_.append(1)
                        r_.append(-1)
                    elif v == _MINUS_ONE:
                        u_.append(-1)
                        r_.append(-1)
                    elif v:
                        u_.append(0)
                        r_.append(len(values))
                        values.append(v)
                    else:
                        continue
                    m_.append(mat)
                    c_.append(c)
                    s_.append(s)
        m_, c_, s_, u_, r_ = streams[0]
        n_c = r1cs.num_constraints
        for s in range(r1cs.num_public + 1):
            m_.append(0)
            c_.append(n_c + s)
            s_.append(s)
            u_.append(1)
            r_.append(-1)
        ab, cc = (Entries(np.frombuffer(m, np.uint8), np.frombuffer(c, np.int64), np.frombuffer(s, np.int64),
                          np.frombuffer(u, np.int8), np.frombuffer(r, np.int32), values)
                  for m, c, s, u, r in streams)
        if len(ab) and int(ab.signal.max()) >= r1cs.num_variables or len(cc) and int(cc.signal.max()) >= \
                r1cs.num_variables:
            raise ValueError("R1CS entry names a variable beyond num_variables")
        return cls(ab=ab, c=cc, num_variables=r1cs.num_variables, num_public=r1cs.num_public, num_constraints=n_c)


@dataclass(frozen=True, eq=False)
class Grouped:
    """The sums ``sum(point[index] * coefficient)`` for signals ``lo .. hi - 1``, ready for the native
    helpers: ``terms``/``counts`` as :func:`teeprover.curve.g1_sums_xy` takes them (``+(index + 1)`` or
    ``-(index + 1)``, ``counts[s - lo]`` terms for signal ``s``) for every signal whose coefficients
    are all +-1; each other signal has count 0 there and one ``(signal, indices, coefficients)`` in
    ``msm``."""

    lo: int
    hi: int
    terms: array[int]
    counts: array[int]
    msm: list[tuple[int, IntArray, list[int]]]


def _int32(a: npt.NDArray[np.int64]) -> array[int]:
    if len(a) and (int(a.max()) >= 1 << 31 or int(a.min()) < -(1 << 31)):
        raise ValueError("point index beyond 32 bits")
    out = array("i")
    out.frombytes(a.astype(np.int32).tobytes())
    return out


def group(index: IntArray, entries: Entries, lo: int, hi: int, keep: npt.NDArray[np.bool_] | None = None) -> Grouped:
    """Group ``entries`` (those selected by ``keep``, if given) per signal in ``lo .. hi - 1`` (others are
    left out); entry ``j`` names point ``index[j]`` (``index`` parallel to the selected entries)."""
    sig, unit, ref = entries.signal, entries.unit, entries.ref
    if keep is not None:
        sig, unit, ref = sig[keep], unit[keep], ref[keep]
    if len(index) != len(sig):
        raise ValueError("index and entries differ in length")
    inside = (sig >= lo) & (sig < hi)
    order = np.argsort(sig[inside], kind="stable")
    sig = sig[inside][order] - lo
    idx, unit, ref = index[inside][order], unit[inside][order], ref[inside][order]
    counts = np.bincount(sig, minlength=hi - lo).astype(np.int64)
    terms = (idx + 1) * unit
    msm: list[tuple[int, IntArray, list[int]]] = []
    other = np.unique(sig[unit == 0])
    if len(other):
        starts = np.searchsorted(sig, other, "left")
        ends = np.searchsorted(sig, other, "right")
        values = entries.values
        for s, a, b in zip(other.tolist(), starts.tolist(), ends.tolist(), strict=True):
            coeffs = [1 if u == 1 else _MINUS_ONE if u == -1 else values[r]
                      for u, r in zip(unit[a:b].tolist(), ref[a:b].tolist(), strict=True)]
            msm.append((s + lo, idx[a:b], coeffs))
        terms = terms[~np.isin(sig, other)]
        counts[other] = 0
    return Grouped(lo=lo, hi=hi, terms=_int32(terms), counts=_int32(counts), msm=msm)


__all__ = ["Entries", "Matrices", "Grouped", "group"]
