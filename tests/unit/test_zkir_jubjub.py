"""Midnight's embedded curve (``ec_add``, ``ec_mul``, ``ec_mul_generator``) against Midnight's own runtime.

The oracle is ``@midnight-ntwrk/onchain-runtime-v2`` (``ecAdd``, ``ecMul``, ``ecMulGenerator``) through the
``midnight`` fixture; a point crosses as a two-entry ``Value`` ``(x, y)``.  The runtime's scalar is an
``EmbeddedFr`` (``< Q``); the ZKIR VM takes a full field element and reduces it modulo ``Q`` before
multiplying (midnight-ledger ``transient-crypto/src/curve.rs``, ``Mul<Fr>``), so the oracle is asked for
``s mod Q``.  Each in-circuit case runs one shared compiled circuit whose outputs are declared public and
checked by a ``pi_skip`` against Midnight's answer, so witness generation itself compares them.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from teeprover import proving, zkir
from teeprover.errors import CircuitError
from teeprover.groth16 import encoding, setup
from teeprover.groth16.verify import verify
from teeprover.r1cs import R1CS, R
from teeprover.snarkjs.ptau import lagrange_params_from_secrets
from teeprover.zkir import ProofPreimage, check, compile_circuit, generate_witness
from teeprover.zkir.gadgets import hash_to_curve as h2c
from teeprover.zkir.gadgets import jubjub as jj
from teeprover.zkir.gadgets import lc
from teeprover.zkir.gadgets.lc import Synth
from teeprover.zkir.ir import format_immediate
from tests.support.midnight import Big, MidnightError, MidnightOracle
from tests.support.midnight_wallet import midnight_check
from tests.unit._zkir_helpers import circuit, first_private

oracle_settings = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

_POINT_JS = """
const pt = (x, y) => onchain.bigIntToValue(x).concat(onchain.bigIntToValue(y));
const xy = (v) => v.map((b) => onchain.valueToBigInt([b]));
"""


def midnight_add(midnight: MidnightOracle, p: jj.Point, q: jj.Point) -> jj.Point:
    return tuple(midnight.run(_POINT_JS + "return xy(onchain.ecAdd(pt(args[0], args[1]), pt(args[2], args[3])));",
                              *(Big(c) for c in (*p, *q))))  # type: ignore[return-value]


def midnight_mul(midnight: MidnightOracle, p: jj.Point, scalar: int) -> jj.Point:
    return tuple(midnight.run(_POINT_JS + "return xy(onchain.ecMul(pt(args[0], args[1]), "
                              "onchain.bigIntToValue(args[2])));", Big(p[0]), Big(p[1]),
                              Big(scalar % jj.Q)))  # type: ignore[return-value]


def midnight_mul_generator(midnight: MidnightOracle, scalar: int) -> jj.Point:
    return tuple(midnight.run(_POINT_JS + "return xy(onchain.ecMulGenerator(onchain.bigIntToValue(args[0])));",
                              Big(scalar % jj.Q)))  # type: ignore[return-value]


scalars = st.one_of(st.sampled_from([0, 1, 2, R - 1, R - 2, jj.Q - 1, jj.Q, jj.Q + 1, 8 * jj.Q, (1 << 254) + 1]),
                    st.integers(0, R - 1))
points = st.one_of(st.sampled_from([jj.IDENTITY, jj.GENERATOR]), st.integers(1, jj.Q - 1).map(jj.mul_generator))


def _publish(cell: int) -> list[dict]:
    """Declare the point in cells ``cell, cell + 1`` public, checked by one pi_skip against the transcript."""
    return [{"op": "declare_pub_input", "var": cell}, {"op": "declare_pub_input", "var": cell + 1},
            {"op": "pi_skip", "guard": None, "count": 2}]


ADD = circuit(4, [{"op": "ec_add", "a_x": 0, "a_y": 1, "b_x": 2, "b_y": 3}, *_publish(4)])
MUL = circuit(3, [{"op": "ec_mul", "a_x": 0, "a_y": 1, "scalar": 2}, *_publish(3)])
GEN = circuit(1, [{"op": "ec_mul_generator", "scalar": 0}, *_publish(1)])


def in_circuit(c: zkir.Circuit, inputs: tuple[int, ...], expected: jj.Point, *, verify: bool = False) -> jj.Point:
    """The witness's value of the published point; the pi_skip has already compared it with ``expected``."""
    _, public = generate_witness(compile_circuit(c), ProofPreimage(inputs=inputs, public_transcript_inputs=expected),
                                 verify=verify)
    return public[1], public[2]


# ---------------------------------------------------------------- twin and circuit against Midnight

def test_generator_and_identity_are_midnights(midnight):
    assert midnight_mul_generator(midnight, 1) == jj.GENERATOR == jj.mul_int(jj._BASE, 8)
    assert midnight_mul_generator(midnight, 0) == jj.IDENTITY == (0, 1)
    assert jj.in_subgroup(jj.GENERATOR) and not jj.in_subgroup(jj._BASE)
    assert jj.on_curve(jj._BASE) and jj.D == -10240 * pow(10241, -1, R) % R and jj.A == R - 1


@oracle_settings
@given(p=points, q=points)
@example(p=jj.IDENTITY, q=jj.IDENTITY)
@example(p=jj.GENERATOR, q=jj.GENERATOR)
@example(p=jj.GENERATOR, q=(R - jj.GENERATOR[0], jj.GENERATOR[1]))  # P + (-P) = identity
def test_ec_add_twin_and_witness_equal_midnight(midnight, p, q):
    expected = midnight_add(midnight, p, q)
    assert jj.add(p, q) == expected
    assert in_circuit(ADD, (*p, *q), expected) == expected


@oracle_settings
@given(p=points, scalar=scalars)
@example(p=jj.IDENTITY, scalar=R - 1)
@example(p=jj.GENERATOR, scalar=0)
@example(p=jj.GENERATOR, scalar=1)
@example(p=jj.GENERATOR, scalar=R - 1)
def test_ec_mul_twin_and_witness_equal_midnight(midnight, p, scalar):
    expected = midnight_mul(midnight, p, scalar)
    assert jj.mul(p, scalar) == expected
    assert in_circuit(MUL, (*p, scalar), expected) == expected


@oracle_settings
@given(scalar=scalars)
@example(scalar=0)
@example(scalar=1)
@example(scalar=R - 1)
def test_ec_mul_generator_twin_and_witness_equal_midnight(midnight, scalar):
    expected = midnight_mul_generator(midnight, scalar)
    assert jj.mul_generator(scalar) == expected
    assert in_circuit(GEN, (scalar,), expected) == expected


def test_a_full_field_scalar_multiplies_as_the_integer_and_as_its_residue_mod_q():
    """Midnight reduces modulo Q; on subgroup points that equals multiplying by the 255-bit integer."""
    p = jj.mul_generator(123456789)
    for s in (R - 1, jj.Q, 8 * jj.Q + 5, (1 << 254) + 3):
        assert jj.mul(p, s) == jj.mul_int(p, s) == jj.mul_int(p, s % jj.Q)
        assert in_circuit(MUL, (*p, s), jj.mul(p, s), verify=True) == jj.mul(p, s)
        assert in_circuit(GEN, (s,), jj.mul_generator(s), verify=True) == jj.mul_generator(s)
    assert jj.mul(p, jj.Q) == jj.IDENTITY


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(p=points, scalar=scalars)
@example(p=jj.GENERATOR, scalar=R - 1)
@example(p=jj.IDENTITY, scalar=jj.Q)
def test_midnights_vm_multiplies_by_the_full_field_scalar_as_we_do(midnight, p, scalar):
    """Midnight's own preprocess (zkir-v2 ``check``) runs ec_mul / ec_mul_generator on the 255-bit scalar and
    accepts our point at the pi_skip, and refuses a wrong one, as we do."""
    for c, inputs, point in ((MUL, (*p, scalar), jj.mul(p, scalar)), (GEN, (scalar,), jj.mul_generator(scalar))):
        ir = {"jubjub": c.to_json().decode()}
        right = ProofPreimage(inputs=inputs, public_transcript_inputs=point, key_location="jubjub")
        assert midnight_check(midnight, right.to_midnight(), ir) == [None]
        assert check(c, right) == [0]
        wrong = replace(right, public_transcript_inputs=(point[0], (point[1] + 1) % R))
        with pytest.raises(MidnightError, match="(?i)mismatch"):
            midnight_check(midnight, wrong.to_midnight(), ir)
        assert str(check(c, wrong)[-1]).startswith("instruction 3 (pi_skip): public transcript input mismatch")


# ---------------------------------------------------------------- refusals, as Midnight's VM

def test_point_off_the_curve_is_refused_naming_the_instruction(midnight):
    g = jj.GENERATOR
    off = (g[0], (g[1] + 1) % R)
    with pytest.raises(CircuitError, match=r"^instruction 0 \(ec_add\): elliptic curve point not on curve"):
        generate_witness(compile_circuit(ADD), ProofPreimage(inputs=(*g, *off), public_transcript_inputs=g))
    with pytest.raises(CircuitError, match=r"^instruction 0 \(ec_mul\): elliptic curve point not on curve"):
        generate_witness(compile_circuit(MUL), ProofPreimage(inputs=(*off, 5), public_transcript_inputs=g))
    answer = check(ADD, ProofPreimage(inputs=(*off, *g), public_transcript_inputs=g))
    assert len(answer) == 1 and str(answer[0]).startswith("instruction 0 (ec_add): elliptic curve point not on")
    with pytest.raises(MidnightError):
        midnight_add(midnight, off, g)


def test_point_on_the_curve_outside_the_subgroup_is_refused_as_midnight_does(midnight):
    for bad in (jj._BASE, (0, R - 1), jj.add(jj.GENERATOR, (0, R - 1))):  # order 8q, order 2, mixed
        assert jj.on_curve(bad) and not jj.in_subgroup(bad)
        with pytest.raises(MidnightError):  # Midnight's VM panics ("Point should be part of the subgroup")
            midnight_add(midnight, bad, jj.GENERATOR)
        with pytest.raises(CircuitError, match=r"^instruction 0 \(ec_add\): .* not in the prime-order subgroup"):
            generate_witness(compile_circuit(ADD), ProofPreimage(inputs=(*jj.GENERATOR, *bad),
                                                                 public_transcript_inputs=bad))


def test_x_with_the_right_parity_is_refused_though_midnights_preprocess_decompresses_it(midnight):
    """Midnight's preprocess rebuilds x from y and x's parity; its circuit then fails on x.  We refuse at once."""
    g, p = jj.GENERATOR, jj.mul_generator(5)
    alias = ((p[0] + 2) % R, p[1])
    assert midnight_add(midnight, alias, g) == jj.add(p, g)  # the runtime is lenient here
    pre = ProofPreimage(inputs=(*alias, *g), public_transcript_inputs=jj.add(p, g), key_location="jubjub")
    assert midnight_check(midnight, pre.to_midnight(), {"jubjub": ADD.to_json().decode()}) == [None]  # and check
    with pytest.raises(CircuitError, match="not on curve"):
        generate_witness(compile_circuit(ADD), pre)


@pytest.mark.parametrize(("c", "inputs", "point"), [
    (ADD, (*jj.GENERATOR, *jj.IDENTITY), jj.GENERATOR),
    (MUL, (*jj.GENERATOR, R - 1), jj.mul_generator(R - 1)),
    (GEN, (R - 1,), jj.mul_generator(R - 1)),
])
def test_transcript_expecting_a_wrong_point_is_refused_naming_the_pi_skip(c, inputs, point):
    compiled = compile_circuit(c)
    generate_witness(compiled, ProofPreimage(inputs=inputs, public_transcript_inputs=point))
    op = c.instructions[0].op
    for wrong in ((point[0], (point[1] + 1) % R), ((point[0] + 1) % R, point[1]), point[::-1]):
        if wrong == point:
            continue
        with pytest.raises(CircuitError, match=r"instruction 3 \(pi_skip\): public transcript input mismatch"):
            generate_witness(compiled, ProofPreimage(inputs=inputs, public_transcript_inputs=wrong))
    assert op in ("ec_add", "ec_mul", "ec_mul_generator")


# ---------------------------------------------------------------- constraint counts

def _fresh(s: Synth, n: int) -> list[lc.LC]:
    return [lc.var(s.new_var()) for _ in range(n)]


def test_ec_add_costs_6_plus_16_per_input_point_not_already_known():
    s = Synth(0, proving=False)
    a, b, c, d = _fresh(s, 4)
    p = jj.gadget_add(s, (a, b), (c, d))
    assert len(s.constraints) == 6 + 2 * 16  # addition, and a cofactor root and three doublings per point
    before = len(s.constraints)
    jj.gadget_add(s, p, (c, d))  # an output of the curve gadgets, and a point checked before: known
    assert len(s.constraints) - before == 6 <= 8
    s2 = Synth(0, proving=False)
    jj.gadget_add(s2, jj.const_point(jj.GENERATOR), jj.const_point(jj.mul_generator(7)))  # valid constants
    assert len(s2.constraints) == 6


def test_ec_mul_costs_at_most_3500():
    s = Synth(0, proving=False)
    x, y, k = _fresh(s, 3)
    jj.gadget_mul(s, (x, y), k)
    # subgroup check 16, canonical scalar bits 344, table 2p, 3p 11, top bit 2, 127 windows of 22.
    assert len(s.constraints) == 16 + 344 + 11 + 2 + 127 * 22 == 3167 <= 3500


def test_ec_mul_generator_costs_at_most_1200():
    s = Synth(0, proving=False)
    jj.gadget_mul_generator(s, _fresh(s, 1)[0])
    assert len(s.constraints) == 344 + 85 * 3 + 84 * 6 == 1103 <= 1200


def test_canonical_bits_refuse_the_alias_x_plus_r():
    """The run-length bound check is what makes the scalar's bits unique: the bits of x + r, with every
    helper computed honestly for them, do not satisfy it (while they do satisfy the sum)."""
    s0 = Synth(0, proving=False)
    jj.canonical_bits(s0, _fresh(s0, 1)[0])
    assert len(s0.constraints) == 255 + 1 + 88  # booleans, their sum, one per run of r - 1
    r1cs = R1CS(s0.next_var, 0, tuple(s0.constraints))
    for x in (0, 1, 5, (1 << 255) - R - 1):
        honest = Synth(0, proving=True)
        jj.canonical_bits(honest, lc.var(honest.new_var(x)))
        r1cs.check_witness(honest.z)
        alias = x + R
        assert alias < 1 << 255
        cheat = Synth(0, proving=True)
        cheat.new_var(x)
        jj.witness_canonical_bits(cheat, lambda a=alias: a)
        with pytest.raises(CircuitError, match="is not satisfied"):
            r1cs.check_witness(cheat.z)


def test_generator_tables_are_the_multiples_of_the_generator():
    tables = jj.generator_tables()
    assert len(tables) == 85 and all(len(t) == 8 for t in tables)
    for j in (0, 1, 42, 84):
        base = jj.mul_int(jj.GENERATOR, 8 ** j)
        assert [jj.mul_int(base, k) for k in range(8)] == list(tables[j])


# ---------------------------------------------------------------- soundness

def _dot(row: dict[int, int], z: list[int]) -> int:
    return sum(c * z[v] for v, c in row.items()) % R


def mutations(r1cs: R1CS, z: list[int], variables: range) -> set[int]:
    """The variables in ``variables`` whose change by one leaves the R1CS satisfied.

    Only the constraints mentioning a variable can change when it does, so those are the ones
    checked (the full check passes on ``z`` first).
    """
    r1cs.check_witness(z)
    uses: dict[int, list[int]] = {}
    for i, con in enumerate(r1cs.constraints):
        for v in {*con.a, *con.b, *con.c}:
            uses.setdefault(v, []).append(i)

    def holds(zz: list[int], i: int) -> bool:
        con = r1cs.constraints[i]
        return _dot(con.a, zz) * _dot(con.b, zz) % R == _dot(con.c, zz)

    free = set()
    for v in variables:
        bad = list(z)
        bad[v] = (bad[v] + 1) % R
        if all(holds(bad, i) for i in uses.get(v, [])):
            free.add(v)
    return free


def zero_multiplied(r1cs: R1CS, z: list[int]) -> set[int]:
    """Variables that only appear as a factor whose partner evaluates to 0 and never in ``c``.

    These are the helper witnesses ``w`` of ``d * w = eq - eq'`` (and ``v * w = 1 - e``) when ``d = 0``:
    any value is valid and none reaches another constraint, so changing them proves nothing new.
    """
    ok: dict[int, bool] = {}
    for con in r1cs.constraints:
        for v in con.c:
            ok[v] = False
        for mine, other in ((con.a, con.b), (con.b, con.a)):
            for v in mine:
                ok[v] = ok.get(v, True) and _dot(other, z) == 0 and v not in other
    return {v for v, good in ok.items() if good}


@pytest.mark.parametrize(("c", "inputs", "point"), [
    (ADD, (*jj.mul_generator(3), *jj.mul_generator(4)), jj.mul_generator(7)),
    (MUL, (*jj.mul_generator(3), R - 2), jj.mul_generator(3 * (R - 2))),
    (GEN, (jj.Q + 17,), jj.mul_generator(17)),
])
def test_witness_mutation_every_gadget_variable_and_the_output_is_caught(c, inputs, point):
    compiled = compile_circuit(c)
    z, _ = generate_witness(compiled, ProofPreimage(inputs=inputs, public_transcript_inputs=point))
    first_aux = first_private(compiled) + len(inputs)
    free = mutations(compiled.r1cs, z, range(first_aux, len(z)))
    # The only changes that keep the R1CS satisfied are the zero-multiplied helpers of the bound check on
    # the scalar's bits (runs of ones of r - 1 that the bits match exactly); every other variable, and
    # both output coordinates (public inputs 2 and 3), are pinned.
    assert free == zero_multiplied(compiled.r1cs, z) & set(range(first_aux, len(z)))
    assert len(free) <= 44  # at most one per run of ones of r - 1
    assert mutations(compiled.r1cs, z, range(2, 4)) == set()


# ---------------------------------------------------------------- end to end

@pytest.mark.slow  # k = 13: about 45 s on a loaded 2-core machine
def test_a_circuit_mixing_the_curve_ops_proves_and_verifies(midnight):
    """ec_mul_generator, ec_mul, ec_add with a constant point, hash_to_curve; the result is public."""
    g7 = jj.mul_generator(7)
    body = [
        {"op": "ec_mul_generator", "scalar": 0},                          # 2, 3: s G
        {"op": "ec_mul", "a_x": 2, "a_y": 3, "scalar": 1},                # 4, 5: t s G
        {"op": "load_imm", "imm": format_immediate(g7[0])},               # 6
        {"op": "load_imm", "imm": format_immediate(g7[1])},               # 7
        {"op": "ec_add", "a_x": 4, "a_y": 5, "b_x": 6, "b_y": 7},         # 8, 9: t s G + 7 G
        {"op": "hash_to_curve", "inputs": [0, 1]},                        # 10, 11
        {"op": "ec_add", "a_x": 8, "a_y": 9, "b_x": 10, "b_y": 11},       # 12, 13
        *_publish(12),
    ]
    c = circuit(2, body)
    compiled = compile_circuit(c)
    s, t = 0xDEADBEEF, R - 3
    expected = midnight_add(midnight, midnight_add(midnight, midnight_mul(midnight, midnight_mul_generator(
        midnight, s), t), g7), h2c.hash_to_curve([s, t]))
    pre = ProofPreimage(inputs=(s, t), public_transcript_inputs=expected)
    params = lagrange_params_from_secrets(compiled.r1cs.domain_size(), tau=0xC0FFEE, alpha=0xA1, beta=0xB2)
    pk = setup.setup(compiled.r1cs, params, setup.ToxicWaste(delta=0xD17A))
    keys = zkir.ProvingKeyMaterial(prover_key=encoding.encode_proving_key(pk),
                                   verifier_key=encoding.encode_verifying_key(pk.vk), ir_source=c.to_json())
    result = proving.Prover(None).prove(zkir.ProveRequest(pre, keys))
    assert result.public_inputs == [0, *expected]
    assert verify(pk.vk, result.public_inputs, result.proof)
    assert not verify(pk.vk, [0, expected[0], (expected[1] + 1) % R], result.proof)
