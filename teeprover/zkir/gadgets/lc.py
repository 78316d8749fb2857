"""Linear combinations and the two builders (constraints at compile time, values at witness time).

A linear combination (LC) is a sparse ``{variable: coefficient}`` map with
variable 0 the constant ``1``.  LCs are treated as immutable: helpers always
return fresh dicts, so memory cells can share them.
"""

from __future__ import annotations

from teeprover.errors import CircuitTooLarge
from teeprover.r1cs import Constraint, R

LC = dict[int, int]

ONE: LC = {0: 1}


def const(c: int) -> LC:
    c %= R
    return {0: c} if c else {}


def var(v: int) -> LC:
    return {v: 1}


def add(a: LC, b: LC) -> LC:
    if len(a) < len(b):
        a, b = b, a
    out = dict(a)
    for k, v in b.items():
        s = (out.get(k, 0) + v) % R
        if s:
            out[k] = s
        else:
            out.pop(k, None)
    return out


def scale(a: LC, k: int) -> LC:
    k %= R
    if not k:
        return {}
    return {v: c * k % R for v, c in a.items()}


def sub(a: LC, b: LC) -> LC:
    return add(a, scale(b, R - 1))


def constant_value(a: LC) -> int | None:
    """The value of a constant LC, or ``None`` if it mentions a variable."""
    if not a:
        return 0
    if len(a) == 1 and 0 in a:
        return a[0]
    return None


def weighted_sum(vars_: list[int], shift: int = 0) -> LC:
    """``sum 2^(i+shift) * vars_[i]``."""
    return {v: pow(2, i + shift, R) for i, v in enumerate(vars_)}


class ConstraintBuilder:
    """Collects constraints; ``label`` is set by the compiler before each instruction."""

    def __init__(self, first_free: int, max_constraints: int) -> None:
        self.next_var = first_free
        self.constraints: list[Constraint] = []
        self.labels: list[str] = []
        self.label = ""
        self.max_constraints = max_constraints

    def new_var(self) -> int:
        v = self.next_var
        self.next_var += 1
        return v

    def enforce(self, a: LC, b: LC, c: LC) -> None:
        """``<a,z> * <b,z> = <c,z>``."""
        self.constraints.append(Constraint(a, b, c))
        self.labels.append(self.label)
        if len(self.constraints) > self.max_constraints:
            raise CircuitTooLarge(f"the circuit needs more than {self.max_constraints} constraints "
                                  f"(stopped at {self.label})",
                                  details={"max_constraints": self.max_constraints})

    def enforce_boolean(self, x: LC) -> None:
        self.enforce(x, sub(x, ONE), {})

    def enforce_equal(self, a: LC, b: LC) -> None:
        self.enforce(sub(a, b), ONE, {})


class WitnessBuilder:
    """Collects the values of private variables allocated after the circuit inputs, in allocation order."""

    def __init__(self) -> None:
        self.values: list[int] = []

    def push(self, value: int) -> None:
        self.values.append(value % R)
