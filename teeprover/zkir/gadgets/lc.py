"""Linear combinations and :class:`Synth`, the one builder of constraints and witness values.

A linear combination (LC) is a sparse ``{variable: coefficient}`` map with
variable 0 the constant ``1``.  LCs are treated as immutable: helpers always
return fresh dicts, so memory cells can share them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NoReturn

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


class WitnessError(Exception):
    """The preimage fails a check Midnight's ``preprocess`` makes; the machine names the instruction."""


Value = int | Callable[[], int] | None


class Synth:
    """One constraint system, built in one of two modes by the same gadget code.

    Setup mode (``proving=False``) records every constraint with its ``label``;
    value thunks are never called.  Prove mode (``proving=True``) assigns each
    variable its value as it is allocated, giving the full assignment ``z``, and
    records no constraints: the finished ``z`` is checked once against the
    compiled R1CS.  This is arkworks' ``ConstraintSystem`` in setup vs prove mode
    (``new_witness(|| value)``): allocation order is the code's order in both
    modes, so the R1CS and the witness cannot drift apart.

    Variable layout: ``0`` the constant one, ``1..num_public`` the public inputs
    (assigned with :meth:`set_public`), then private variables in allocation order.
    """

    def __init__(self, num_public: int, *, proving: bool, max_constraints: int | None = None) -> None:
        self.proving = proving
        self.num_public = num_public
        self.next_var = num_public + 1
        self.z: list[int] = [1] + [0] * num_public if proving else []
        self.constraints: list[Constraint] = []
        self.labels: list[str] = []
        self.label = ""
        self.max_constraints = max_constraints

    def new_var(self, value: Value = None) -> int:
        """Allocate a private variable; in prove mode ``value`` (an int or a thunk) is its assignment."""
        v = self.next_var
        self.next_var += 1
        if self.proving:
            x = value() if callable(value) else value
            if x is None:  # pragma: no cover - a gadget bug, not an input error
                raise AssertionError(f"variable {v} allocated without a value in prove mode ({self.label})")
            self.z.append(x % R)
        return v

    def set_public(self, index: int, value: int) -> None:
        if self.proving:
            self.z[index] = value % R

    def value(self, x: LC) -> int:
        """The value of ``x`` under the assignment so far (prove mode only)."""
        z = self.z
        return sum(c * z[v] for v, c in x.items()) % R

    def fail(self, message: str) -> NoReturn:
        raise WitnessError(message)

    def enforce(self, a: LC, b: LC, c: LC) -> None:
        """``<a,z> * <b,z> = <c,z>``."""
        if self.proving:
            return
        self.constraints.append(Constraint(a, b, c))
        self.labels.append(self.label)
        if self.max_constraints is not None and len(self.constraints) > self.max_constraints:
            raise CircuitTooLarge(f"the circuit needs more than {self.max_constraints} constraints "
                                  f"(stopped at {self.label})",
                                  details={"max_constraints": self.max_constraints})

    def enforce_boolean(self, x: LC) -> None:
        self.enforce(x, sub(x, ONE), {})

    def enforce_equal(self, a: LC, b: LC) -> None:
        self.enforce(sub(a, b), ONE, {})
