"""Midnight's ``hash_to_curve`` against Midnight's own runtime (``onchain-runtime-v2`` ``hashToCurve``).

Values are field atoms, so Midnight hashes exactly the field elements given (the ZKIR instruction's
``inputs``).  In-circuit cases share one compiled circuit per input length; the point is declared public and
a ``pi_skip`` compares it with Midnight's answer during witness generation.
"""

from __future__ import annotations

import functools

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from teeprover.errors import CircuitError
from teeprover.r1cs import R1CS, R
from teeprover.zkir import Circuit, ProofPreimage, compile_circuit, generate_witness
from teeprover.zkir.gadgets import hash_to_curve as h2c
from teeprover.zkir.gadgets import jubjub as jj
from teeprover.zkir.gadgets import lc
from teeprover.zkir.gadgets.lc import Synth
from tests.support.midnight import Big, MidnightOracle
from tests.unit._zkir_helpers import circuit, first_private
from tests.unit.test_zkir_jubjub import mutations, zero_multiplied

oracle_settings = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

_H2C_JS = """
const align = args.map(() => ({tag: 'atom', value: {tag: 'field'}}));
const value = args.map((x) => onchain.bigIntToValue(x)).flat();
return onchain.hashToCurve(align, value).map((b) => onchain.valueToBigInt([b]));
"""


def midnight_hash_to_curve(midnight: MidnightOracle, xs: list[int]) -> jj.Point:
    return tuple(midnight.run(_H2C_JS, *(Big(x) for x in xs)))  # type: ignore[return-value]


@functools.cache
def h2c_circuit(n: int) -> Circuit:
    return circuit(n, [{"op": "hash_to_curve", "inputs": list(range(n))},
                       {"op": "declare_pub_input", "var": n}, {"op": "declare_pub_input", "var": n + 1},
                       {"op": "pi_skip", "guard": None, "count": 2}])


field = st.one_of(st.sampled_from([0, 1, 2, R - 1, R - 2]), st.integers(0, R - 1))


@oracle_settings
@given(xs=st.lists(field, max_size=5))
@example(xs=[])
@example(xs=[0])
@example(xs=[1])
@example(xs=[R - 1])
@example(xs=[0, 1, R - 1])
def test_twin_and_witness_equal_midnight(midnight, xs):
    expected = midnight_hash_to_curve(midnight, xs)
    assert h2c.hash_to_curve(xs) == expected
    _, public = generate_witness(compile_circuit(h2c_circuit(len(xs))),
                                 ProofPreimage(inputs=tuple(xs), public_transcript_inputs=expected), verify=False)
    assert (public[1], public[2]) == expected


def test_output_is_a_subgroup_point_and_the_witness_satisfies_the_r1cs(midnight):
    for xs in ([], [7], [R - 1, 0, 5]):
        expected = midnight_hash_to_curve(midnight, xs)
        assert jj.in_subgroup(expected)
        generate_witness(compile_circuit(h2c_circuit(len(xs))),
                         ProofPreimage(inputs=tuple(xs), public_transcript_inputs=expected))  # verify=True


@pytest.mark.parametrize("u", [0, 1, R - 1, 2, 3, R - 2, 1 << 200])
def test_map_gadget_equals_the_twin_on_edge_values(u):
    s0 = Synth(0, proving=False)
    h2c.map_to_curve_lc(s0, lc.var(s0.new_var()))
    s1 = Synth(0, proving=True)
    ex, ey = h2c.map_to_curve_lc(s1, lc.var(s1.new_var(u)))
    R1CS(s0.next_var, 0, tuple(s0.constraints)).check_witness(s1.z)
    assert (s1.value(ex), s1.value(ey)) == h2c.map_to_curve_uncleared(u)
    assert jj.on_curve(h2c.map_to_curve_uncleared(u))


def test_sqrt_and_constants():
    assert h2c.SVDW_Z == R - 2 and h2c.C3 % 2 == 0
    for x in (0, 1, 4, 12345, R - 1):
        if h2c.is_square(x):
            assert h2c.sqrt(x) ** 2 % R == x
    assert not h2c.is_square(h2c.NON_RESIDUE)
    with pytest.raises(ValueError):
        h2c.sqrt(h2c.NON_RESIDUE)


def test_transcript_expecting_a_wrong_point_is_refused_naming_the_pi_skip():
    compiled = compile_circuit(h2c_circuit(2))
    point = h2c.hash_to_curve([5, 6])
    for wrong in ((point[0], (point[1] + 1) % R), ((R - point[0]) % R, point[1])):  # the negated point too
        with pytest.raises(CircuitError, match=r"instruction 3 \(pi_skip\): public transcript input mismatch"):
            generate_witness(compiled, ProofPreimage(inputs=(5, 6), public_transcript_inputs=wrong))


# ---------------------------------------------------------------- constraint counts

def _count(build) -> int:
    s = Synth(0, proving=False)
    build(s)
    return len(s.constraints)


@pytest.mark.parametrize("n", [0, 1, 2, 3, 6])
def test_costs_1469_beyond_poseidon(n):
    def fresh(s: Synth) -> list[lc.LC]:
        return [lc.var(s.new_var()) for _ in range(n)]

    total = _count(lambda s: h2c.gadget_hash_to_curve(s, fresh(s)))
    sponge = _count(lambda s: h2c.sponge_squeeze_two_lc(s, fresh(s)))
    assert sponge <= 256 * ((n + 1 + 1) // 2)  # one permutation per two of the inputs and their count
    # Two maps of 724 (canonical parities of u and y, 344 + 343; SvdW with the root and its parity tie 29;
    # Montgomery to Edwards 8), the addition (6) and the cofactor clearing (3 doublings, 15).
    assert total - sponge == 2 * 724 + 6 + 15 == 1469 <= 1500


# ---------------------------------------------------------------- soundness

def test_witness_mutation_every_gadget_variable_and_the_output_is_caught():
    compiled = compile_circuit(h2c_circuit(2))
    point = h2c.hash_to_curve([5, 6])
    z, _ = generate_witness(compiled, ProofPreimage(inputs=(5, 6), public_transcript_inputs=point))
    first_aux = first_private(compiled) + 2
    free = mutations(compiled.r1cs, z, range(first_aux, len(z)))
    # Only the zero-multiplied helpers of the canonical bound checks (u and y of both maps) may change;
    # every Poseidon, SvdW, square-root, parity and point variable is pinned, and so is the output.
    assert free == zero_multiplied(compiled.r1cs, z) & set(range(first_aux, len(z)))
    assert len(free) <= 4 * 44  # at most one per run of ones of r - 1, per canonical decomposition
    assert mutations(compiled.r1cs, z, range(2, 4)) == set()
