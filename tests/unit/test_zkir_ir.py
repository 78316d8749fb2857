"""Parsing ZKIR v2 (JSON and CBOR): immediates, strict validation, unsupported ops, k."""

from __future__ import annotations

import json

import cbor2
import pytest

from teeprover.errors import CircuitError, CircuitTooLarge, MalformedEncoding
from teeprover.r1cs import R
from teeprover.zkir import TAG_ZKIR_V2, circuit_k, compile_circuit, load_circuit
from teeprover.zkir.ir import format_immediate, parse_immediate
from tests.unit._zkir_helpers import circuit


def _doc(instructions, num_inputs=1, **over):
    doc = {"version": {"major": 2, "minor": 0}, "num_inputs": num_inputs,
           "do_communications_commitment": False, "instructions": instructions}
    doc.update(over)
    return doc


@pytest.mark.parametrize(("text", "value"), [
    ("00", 0), ("01", 1), ("2a", 42), ("0001", 256), ("-01", R - 1), ("0x0100", 1), ("-2a", R - 42),
    (5, 5), (-5, R - 5), ((R - 1).to_bytes(32, "little").hex(), R - 1),
])
def test_immediates_parse_midnights_little_endian_hex(text, value):
    assert parse_immediate(text) == value


@pytest.mark.parametrize("text", ["", "-", "1", "zz", "01" * 33, R.to_bytes(32, "little").hex(), True, 1.5, None, R])
def test_malformed_immediates_are_refused(text):
    with pytest.raises(MalformedEncoding):
        parse_immediate(text)


def test_immediate_formatting_round_trips_and_drops_trailing_zero_bytes():
    assert format_immediate(0) == "00"
    assert format_immediate(256) == "0001"
    for x in (0, 1, 255, 256, R - 1, 1 << 200):
        assert parse_immediate(format_immediate(x)) == x


def test_json_and_cbor_forms_parse_to_the_same_circuit():
    doc = _doc([{"op": "add", "a": 0, "b": 0}, {"op": "load_imm", "imm": "-01"}, {"op": "public_input", "guard": None},
                {"op": "private_input"}])
    from_json = load_circuit(json.dumps(doc).encode())
    assert load_circuit(cbor2.dumps(doc)) == from_json
    assert load_circuit(cbor2.dumps(cbor2.CBORTag(TAG_ZKIR_V2, doc))) == from_json
    assert load_circuit(from_json.to_cbor()) == from_json
    assert load_circuit(from_json.to_json()) == from_json
    assert from_json.instructions[3].args == (None,)  # an absent guard is no guard


def test_digest_is_content_addressed():
    a = circuit(1, [{"op": "add", "a": 0, "b": 0}])
    assert a.digest() == circuit(1, [{"op": "add", "a": 0, "b": 0}]).digest()
    assert a.digest() != circuit(1, [{"op": "mul", "a": 0, "b": 0}]).digest()


@pytest.mark.parametrize(("op", "operands"), [
    ("ec_add", {"a_x": 0, "a_y": 1, "b_x": 0, "b_y": 1}),
    ("ec_mul", {"a_x": 0, "a_y": 1, "scalar": 0}),
    ("ec_mul_generator", {"scalar": 1}),
    ("hash_to_curve", {"inputs": [0, 1]}),
])
def test_jubjub_ops_take_midnights_operands_and_append_a_point(op, operands):
    c = load_circuit(json.dumps(_doc([{"op": op, **operands}, {"op": "add", "a": 2, "b": 3}], 2)).encode())
    assert c.instructions[0].op == op
    with pytest.raises(CircuitError, match=r"cell 4 is not defined yet \(memory has 4 cells\)"):
        load_circuit(json.dumps(_doc([{"op": op, **operands}, {"op": "add", "a": 3, "b": 4}], 2)).encode())
    first, *_ = operands
    with pytest.raises(CircuitError, match=f"missing operand '{first}'"):
        load_circuit(json.dumps(_doc([{"op": op, **{k: v for k, v in operands.items() if k != first}}], 2)).encode())


def test_communications_commitment_is_public_input_one_and_constrained_not_left_free():
    c = circuit(1, [{"op": "output", "var": 0}], dcc=True)
    assert c.num_public_inputs == 2
    r1cs = compile_circuit(c).r1cs
    # Variable 2 (public input #1) appears only in the commitment's final equality.
    uses = [label for con, label in zip(r1cs.constraints, r1cs.labels, strict=True) if 2 in con.a or 2 in con.c]
    assert uses == ["communications commitment"]


@pytest.mark.parametrize(("instructions", "fragment"), [
    ([{"op": "frobnicate", "a": 0}], "unknown op"),
    ([{"op": "add", "a": 0}], "missing operand 'b'"),
    ([{"op": "add", "a": 0, "b": 0, "c": 0}], "unexpected operand"),
    ([{"op": "add", "a": 0, "b": 2}], "not defined yet"),
    ([{"op": "public_input", "guard": 2}], "not defined yet"),
    ([{"op": "add", "a": -1, "b": 0}], "unsigned 32-bit"),
    ([{"op": "add", "a": True, "b": 0}], "unsigned 32-bit"),
    ([{"op": "add", "a": "0", "b": 0}], "unsigned 32-bit"),
    ([{"op": "constrain_bits", "var": 0, "bits": 255}], "out of range"),
    ([{"op": "div_mod_power_of_two", "var": 0, "bits": 249}], "out of range"),
    ([{"op": "reconstitute_field", "divisor": 0, "modulus": 0, "bits": 0}], "out of range"),
    ([{"op": "less_than", "a": 0, "b": 0, "bits": 254}], "out of range"),
    ([{"op": "pi_skip", "guard": None, "count": 1}], "exceeds"),
    ([{"op": "load_imm", "imm": "zz"}], "hex"),
])
def test_invalid_instructions_are_refused_with_their_index(instructions, fragment):
    with pytest.raises(CircuitError) as info:
        load_circuit(json.dumps(_doc([{"op": "copy", "var": 0}] + instructions)).encode())
    assert info.value.instruction == 1
    assert fragment in info.value.message


@pytest.mark.parametrize("mutate", [
    lambda d: d.pop("num_inputs"),
    lambda d: d.update(extra=1),
    lambda d: d.update(version={"major": 1, "minor": 0}),
    lambda d: d.update(version={"major": 2, "minor": 2}),
    lambda d: d.update(version=2),
    lambda d: d.update(num_inputs=-1),
    lambda d: d.update(do_communications_commitment=0),
    lambda d: d.update(instructions={}),
    lambda d: d.update(instructions=[5]),
])
def test_malformed_documents_are_refused(mutate):
    doc = _doc([])
    mutate(doc)
    with pytest.raises((MalformedEncoding, CircuitError)):
        load_circuit(json.dumps(doc).encode())


@pytest.mark.parametrize("data", [b"", b"{", b"[]", b'{"a":1,"a":2}', b"\xff\xfe", b"\xa0\x00",
                                  json.dumps(_doc([])).encode().replace(b"false", b"NaN")])
def test_garbage_bytes_are_malformed_encoding(data):
    with pytest.raises(MalformedEncoding):
        load_circuit(data)


def test_size_limits_refuse_hostile_counts():
    from teeprover.errors import PayloadTooLarge
    from teeprover.zkir import ir
    with pytest.raises(CircuitError):
        load_circuit(json.dumps(_doc([], num_inputs=ir.MAX_NUM_INPUTS + 1)).encode())
    with pytest.raises(PayloadTooLarge):
        load_circuit(json.dumps(_doc([])).encode(), max_bytes=10)


def test_k_is_at_least_10_and_grows_with_the_domain():
    assert circuit_k(circuit(1, [])) == 10
    # 1101 constraints + 1 public input + 1 > 1024 -> k = 11
    body = [{"op": "mul", "a": 0, "b": 0}] + [{"op": "mul", "a": i + 1, "b": 0} for i in range(1100)]
    c = circuit(1, body)
    compiled = compile_circuit(c)
    assert compiled.r1cs.num_constraints == 1101
    assert circuit_k(c) == compiled.r1cs.k() == 11


def test_k_beyond_the_maximum_is_circuit_too_large():
    c = circuit(1, [{"op": "mul", "a": 0, "b": 0}] + [{"op": "mul", "a": i + 1, "b": 0} for i in range(1100)])
    with pytest.raises(CircuitTooLarge):
        circuit_k(c, max_k=10)


def test_every_instruction_record_has_one_op_function_and_round_trips() -> None:
    from teeprover.zkir import instructions, synth

    assert set(synth.OPS) == set(instructions.RECORDS)
    for op, record in instructions.RECORDS.items():
        assert record.op == op and instructions.OUTPUTS[op] == record.outputs
