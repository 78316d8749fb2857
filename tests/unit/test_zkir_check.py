"""/check semantics, guarded I/O, pi_skip groups, and the example circuits in tests/fixtures/zkir."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from teeprover.errors import CircuitError
from teeprover.zkir import ProofPreimage, check, compile_circuit, generate_witness, load_circuit, load_preimage
from tests.unit._zkir_helpers import circuit

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "zkir"
NAMES = sorted(p.name.removesuffix(".zkir.json") for p in FIXTURES.glob("*.zkir.json"))


@pytest.mark.parametrize("name", NAMES)
def test_fixture_circuits_prove_their_expected_public_inputs(name):
    c = load_circuit((FIXTURES / f"{name}.zkir.json").read_bytes())
    pre = load_preimage((FIXTURES / f"{name}.preimage.json").read_bytes())
    expected = json.loads((FIXTURES / f"{name}.expected.json").read_text())
    compiled = compile_circuit(c)
    z, public = generate_witness(compiled, pre)
    assert [str(x) for x in public] == expected["public_inputs"]
    assert compiled.k == expected["k"] and compiled.r1cs.num_constraints == expected["num_constraints"]
    assert check(c, pre) == expected["check"]
    # the same preimage through CBOR gives the same answer
    assert check(c, load_preimage(pre.to_cbor())) == expected["check"]


def test_fixture_with_wrong_public_transcript_fails_check_with_a_string():
    c = load_circuit((FIXTURES / "arithmetic.zkir.json").read_bytes())
    pre = load_preimage((FIXTURES / "arithmetic.preimage.json").read_bytes())
    from dataclasses import replace
    answer = check(c, replace(pre, public_transcript_inputs=(15,)))
    assert len(answer) == 1 and isinstance(answer[0], str) and "mismatch" in answer[0]


PI_SKIP = [
    {"op": "declare_pub_input", "var": 0},
    {"op": "pi_skip", "guard": None, "count": 1},   # group 0: always checked
    {"op": "declare_pub_input", "var": 1},
    {"op": "pi_skip", "guard": 2, "count": 1},      # group 1: checked iff input 2 is 1
]


def test_pi_skip_guard_off_skips_the_group_and_its_transcript_entry():
    c = circuit(3, PI_SKIP)
    assert check(c, ProofPreimage(inputs=(5, 6, 0), public_transcript_inputs=(5,))) == [0, 1]
    # skipped public inputs are still public inputs of the proof
    _, public = generate_witness(compile_circuit(c), ProofPreimage(inputs=(5, 6, 0), public_transcript_inputs=(5,)))
    assert public == [0, 5, 6]


def test_pi_skip_guard_on_checks_the_group():
    c = circuit(3, PI_SKIP)
    assert check(c, ProofPreimage(inputs=(5, 6, 1), public_transcript_inputs=(5, 6))) == [0, 0]
    answer = check(c, ProofPreimage(inputs=(5, 6, 1), public_transcript_inputs=(5, 7)))
    assert answer[0] == 0 and isinstance(answer[1], str) and answer[1].startswith("instruction 3 (pi_skip)")


def test_check_reports_failure_after_the_last_group():
    c = circuit(3, PI_SKIP)
    answer = check(c, ProofPreimage(inputs=(5, 6, 0), public_transcript_inputs=(5, 6)))  # one entry too many
    assert answer[:2] == [0, 1] and "not fully consumed" in answer[2]


def test_check_failure_mid_program_ends_the_list():
    c = circuit(3, [*PI_SKIP[:2], {"op": "assert", "cond": 2}, *PI_SKIP[2:]])
    answer = check(c, ProofPreimage(inputs=(5, 6, 0), public_transcript_inputs=(5,)))
    assert answer == [0, "instruction 2 (assert): failed direct assertion"]


def test_wrong_number_of_inputs_is_an_error_string_in_check_and_an_error_in_witness():
    c = circuit(2, [])
    assert check(c, ProofPreimage(inputs=(1,))) == ["expected 2 inputs, received 1"]
    with pytest.raises(CircuitError):
        generate_witness(compile_circuit(c), ProofPreimage(inputs=(1,)))


@pytest.mark.parametrize(("guard", "consumed"), [(1, 1), (0, 0)])
def test_guarded_inputs_read_the_transcripts_only_when_the_guard_is_one(guard, consumed):
    c = circuit(1, [{"op": "public_input", "guard": 0}, {"op": "private_input", "guard": 0}])
    pre = ProofPreimage(inputs=(guard,), public_transcript_outputs=(9,) * consumed, private_transcript=(8,) * consumed)
    assert check(c, pre) == []
    z, _ = generate_witness(compile_circuit(c), pre)
    assert z[-2:] == ([9, 8] if guard else [0, 0])
    # with the transcripts swapped (consumed when they should not be, or missing), the run fails
    other = ProofPreimage(inputs=(guard,), public_transcript_outputs=(9,) * (1 - consumed),
                          private_transcript=(8,) * (1 - consumed))
    assert isinstance(check(c, other)[-1], str)


def test_running_out_of_private_transcript_names_the_instruction():
    c = circuit(0, [{"op": "private_input", "guard": None}])
    with pytest.raises(CircuitError) as info:
        generate_witness(compile_circuit(c), ProofPreimage(inputs=()))
    assert info.value.instruction == 0 and "private transcript" in info.value.message
