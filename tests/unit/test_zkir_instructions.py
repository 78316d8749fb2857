"""Per-instruction laws: an honest witness satisfies the R1CS, a tampered one does not."""

from __future__ import annotations

import pytest

from teeprover.errors import CircuitError
from teeprover.r1cs import R
from teeprover.zkir import ProofPreimage, compile_circuit, generate_witness
from teeprover.zkir.gadgets import bits as bitsg
from teeprover.zkir.gadgets.lc import Synth
from teeprover.zkir.synth import MAX_LC_TERMS
from tests.unit._zkir_helpers import circuit, first_private, witness


def _declare(cell: int) -> list[dict]:
    return [{"op": "declare_pub_input", "var": cell}, {"op": "pi_skip", "guard": None, "count": 1}]


# (name, inputs, instructions producing cell `out`, out, expected value of cell out)
VALUE_CASES = [
    ("add", [3, 4], [{"op": "add", "a": 0, "b": 1}], 2, 7),
    ("mul", [3, 4], [{"op": "mul", "a": 0, "b": 1}], 2, 12),
    ("mul_by_constant", [3], [{"op": "load_imm", "imm": "05"}, {"op": "mul", "a": 1, "b": 0}], 2, 15),
    ("neg", [3], [{"op": "neg", "a": 0}], 1, R - 3),
    ("not_0", [0], [{"op": "not", "a": 0}], 1, 1),
    ("not_1", [1], [{"op": "not", "a": 0}], 1, 0),
    ("copy", [9], [{"op": "copy", "var": 0}], 1, 9),
    ("load_imm", [], [{"op": "load_imm", "imm": "-02"}], 0, R - 2),
    ("cond_select_1", [1, 5, 6], [{"op": "cond_select", "bit": 0, "a": 1, "b": 2}], 3, 5),
    ("cond_select_0", [0, 5, 6], [{"op": "cond_select", "bit": 0, "a": 1, "b": 2}], 3, 6),
    ("test_eq_true", [5, 5], [{"op": "test_eq", "a": 0, "b": 1}], 2, 1),
    ("test_eq_false", [5, 6], [{"op": "test_eq", "a": 0, "b": 1}], 2, 0),
    ("less_than_true", [5, 6], [{"op": "less_than", "a": 0, "b": 1, "bits": 8}], 2, 1),
    ("less_than_equal", [6, 6], [{"op": "less_than", "a": 0, "b": 1, "bits": 8}], 2, 0),
    ("less_than_false", [255, 0], [{"op": "less_than", "a": 0, "b": 1, "bits": 8}], 2, 0),
    ("less_than_0_bits", [0, 0], [{"op": "less_than", "a": 0, "b": 1, "bits": 0}], 2, 0),
    ("div_mod_quotient", [0x1234], [{"op": "div_mod_power_of_two", "var": 0, "bits": 8}], 1, 0x12),
    ("div_mod_remainder", [0x1234], [{"op": "div_mod_power_of_two", "var": 0, "bits": 8}], 2, 0x34),
    ("div_mod_r_minus_1", [R - 1], [{"op": "div_mod_power_of_two", "var": 0, "bits": 248}], 1, (R - 1) >> 248),
    ("reconstitute_field", [0x12, 0x34],
     [{"op": "reconstitute_field", "divisor": 0, "modulus": 1, "bits": 8}], 2, 0x1234),
    ("private_input", [], [{"op": "private_input", "guard": None}], 0, 77),
    ("public_input", [], [{"op": "public_input", "guard": None}], 0, 88),
    ("private_input_guard_off", [0], [{"op": "private_input", "guard": 0}], 1, 0),
    ("public_input_guard_on", [1], [{"op": "public_input", "guard": 0}], 1, 88),
]


def _transcripts(name: str) -> dict:
    if name == "private_input":
        return {"private_transcript": (77,)}
    if name in ("public_input", "public_input_guard_on"):
        return {"public_transcript_outputs": (88,)}
    return {}


@pytest.mark.parametrize(("name", "inputs", "body", "out", "value"), VALUE_CASES, ids=[c[0] for c in VALUE_CASES])
def test_instruction_output_satisfies_and_tampered_output_fails(name, inputs, body, out, value):
    compiled = compile_circuit(circuit(len(inputs), body + _declare(out)))
    pre = ProofPreimage(inputs=tuple(inputs), public_transcript_inputs=(value,), **_transcripts(name))
    z, public = generate_witness(compiled, pre)
    assert public == [0, value]
    compiled.r1cs.check_witness(z)
    bad = list(z)
    bad[2] = (bad[2] + 1) % R  # the declared public output
    with pytest.raises(CircuitError):
        compiled.r1cs.check_witness(bad)


# Constraint-only instructions: (name, instructions, good inputs, bad inputs)
CONSTRAINT_CASES = [
    ("assert", [{"op": "assert", "cond": 0}], [1], [0]),
    ("constrain_eq", [{"op": "constrain_eq", "a": 0, "b": 1}], [4, 4], [4, 5]),
    ("constrain_to_boolean", [{"op": "constrain_to_boolean", "var": 0}], [1], [2]),
    ("constrain_bits", [{"op": "constrain_bits", "var": 0, "bits": 8}], [255], [256]),
    ("constrain_bits_0", [{"op": "constrain_bits", "var": 0, "bits": 0}], [0], [1]),
    ("less_than_range", [{"op": "less_than", "a": 0, "b": 1, "bits": 8}], [3, 200], [3, 256]),
    ("reconstitute_range", [{"op": "reconstitute_field", "divisor": 0, "modulus": 1, "bits": 8}], [1, 255], [1, 256]),
    ("not_boolean", [{"op": "not", "a": 0}], [1], [2]),
    ("cond_select_boolean", [{"op": "cond_select", "bit": 0, "a": 1, "b": 1}], [0, 3], [2, 3]),
]


@pytest.mark.parametrize(("name", "body", "good", "bad"), CONSTRAINT_CASES, ids=[c[0] for c in CONSTRAINT_CASES])
def test_constraint_holds_for_good_input_and_fails_for_bad_input(name, body, good, bad):
    compiled, z = witness(body, good)
    compiled.r1cs.check_witness(z)
    # The VM refuses the bad input, naming instruction 0 ...
    with pytest.raises(CircuitError) as info:
        generate_witness(compiled, ProofPreimage(inputs=tuple(bad)))
    assert info.value.instruction == 0
    # ... and the constraints refuse the good witness with the bad input substituted.
    tampered = list(z)
    base = first_private(compiled)
    tampered[base:base + len(bad)] = bad
    with pytest.raises(CircuitError) as info:
        compiled.r1cs.check_witness(tampered)
    assert "instruction 0" in str(info.value)


def test_every_constraint_is_labelled_with_its_instruction():
    compiled, _ = witness([{"op": "add", "a": 0, "b": 0}, {"op": "mul", "a": 1, "b": 0},
                           {"op": "test_eq", "a": 2, "b": 0}], [2])
    assert set(compiled.r1cs.labels) == {"instruction 1 (mul)", "instruction 2 (test_eq)"}
    assert len(compiled.r1cs.labels) == compiled.r1cs.num_constraints


def test_test_eq_cannot_claim_inequality_of_equal_values():
    compiled, z = witness([{"op": "test_eq", "a": 0, "b": 1}], [5, 5])
    inv, out = first_private(compiled) + 2, first_private(compiled) + 3
    assert z[out] == 1
    for fake_inv in (0, 1, 12345):
        tampered = list(z)
        tampered[inv], tampered[out] = fake_inv, 0
        with pytest.raises(CircuitError):
            compiled.r1cs.check_witness(tampered)


def test_div_mod_rejects_the_non_canonical_decomposition():
    x = 5  # x + r < 2^255, so x has a second 255-bit decomposition that only the canonical check excludes
    compiled, z = witness([{"op": "div_mod_power_of_two", "var": 0, "bits": 4}], [x])
    compiled.r1cs.check_witness(z)
    base = first_private(compiled) + 1
    alias = x + R
    assert alias < 1 << 255
    tampered = list(z)
    alias_bits = [alias >> i & 1 for i in range(255)]
    tampered[base:base + 255] = alias_bits
    # The canonical check's own variables, recomputed for the alias bits by the gadget in prove mode.
    s = Synth(0, proving=True)
    bit_vars = [s.new_var(b) for b in alias_bits]
    start = len(s.z)
    bitsg.canonical(s, bit_vars)
    canon = s.z[start:]
    tampered[base + 255:base + 255 + len(canon)] = canon
    # Outputs that are LCs of the bits follow automatically; materialised ones are recomputed too.
    rest = tampered[base + 255 + len(canon):]
    assert len(rest) == 1  # the quotient LC has > MAX_LC_TERMS terms and was materialised
    tampered[-1] = (alias >> 4) % R
    with pytest.raises(CircuitError) as info:
        compiled.r1cs.check_witness(tampered)
    assert "div_mod_power_of_two" in str(info.value)


def test_guard_zero_forces_input_value_zero():
    compiled, z = witness([{"op": "private_input", "guard": 0}], [0])
    compiled.r1cs.check_witness(z)
    tampered = list(z)
    tampered[first_private(compiled) + 1] = 42  # claim a value although the guard is off
    with pytest.raises(CircuitError):
        compiled.r1cs.check_witness(tampered)


def test_guard_must_be_boolean():
    with pytest.raises(CircuitError, match="instruction 0 .*boolean"):
        witness([{"op": "public_input", "guard": 0}], [2], public_transcript_outputs=(1,))


def test_declared_public_inputs_follow_the_binding_input_in_order():
    body = [{"op": "declare_pub_input", "var": 1}, {"op": "declare_pub_input", "var": 0},
            {"op": "pi_skip", "guard": None, "count": 2}]
    compiled = compile_circuit(circuit(2, body))
    z, public = generate_witness(compiled, ProofPreimage(inputs=(10, 20), public_transcript_inputs=(20, 10),
                                                         binding_input=99))
    assert public == [99, 20, 10] == z[1:4]
    assert compiled.r1cs.num_public == 3


def test_long_add_chains_stay_linear_and_satisfied():
    n = 40
    body = [{"op": "add", "a": 0, "b": 1}] + [{"op": "add", "a": n + k - 1, "b": k % n} for k in range(1, 500)]
    compiled, z = witness(body, list(range(1, n + 1)))
    assert any(len(c.a) > MAX_LC_TERMS for c in compiled.r1cs.constraints)  # long LCs were stored in a variable
    compiled.r1cs.check_witness(z)
    assert all(len(c.a) <= 2 * 16 for c in compiled.r1cs.constraints)
