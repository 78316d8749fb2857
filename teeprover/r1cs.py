"""Sparse rank-1 constraint systems over the BLS12-381 scalar field.

Variable layout follows circom/snarkjs so keys and proofs interoperate:
index 0 is the constant ``1``, indices ``1..num_public`` are the public inputs
(in the order of the proof's public signals), the rest are private.

A constraint ``i`` says ``<a_i, z> * <b_i, z> = <c_i, z>`` where each row is a
sparse map ``{variable index: coefficient mod r}``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from teeprover.errors import CircuitError

# The BLS12-381 scalar field order (also checked against the curve library in curve.py).
R = 0x73EDA753299D7D483339D80809A1D80553BDA402FFFE5BFEFFFFFFFF00000001

Row = dict[int, int]


@dataclass(frozen=True)
class Constraint:
    a: Row
    b: Row
    c: Row


@dataclass(frozen=True)
class R1CS:
    num_variables: int
    num_public: int
    constraints: tuple[Constraint, ...]
    # Optional human-readable origin per constraint (e.g. "instruction 5 (mul)"),
    # used in error messages; empty when unknown.
    labels: tuple[str, ...] = field(default=())

    @property
    def num_constraints(self) -> int:
        return len(self.constraints)

    def domain_size(self) -> int:
        """Smallest power of two holding every constraint plus one row per public input and the constant."""
        need = self.num_constraints + self.num_public + 1
        n = 1
        while n < need:
            n <<= 1
        return n

    def k(self) -> int:
        return self.domain_size().bit_length() - 1

    def label(self, index: int) -> str:
        return self.labels[index] if index < len(self.labels) else f"constraint {index}"

    def check_witness(self, z: list[int]) -> None:
        """Raise :class:`CircuitError` naming the first unsatisfied constraint."""
        if len(z) != self.num_variables:
            raise CircuitError(f"witness has {len(z)} values, the circuit has {self.num_variables} variables")
        if z[0] % R != 1:
            raise CircuitError("witness[0] must be 1")
        for i, con in enumerate(self.constraints):
            a = _dot(con.a, z)
            b = _dot(con.b, z)
            c = _dot(con.c, z)
            if a * b % R != c:
                raise CircuitError(f"constraint {i} is not satisfied ({self.label(i)})", constraint=i,
                                   details={"origin": self.label(i)})


def _dot(row: Row, z: list[int]) -> int:
    return sum(coeff * z[var] for var, coeff in row.items()) % R
