"""Property tests: the compiled R1CS agrees with the VM on random values."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from teeprover.r1cs import R
from teeprover.zkir import ProofPreimage, compile_circuit, generate_witness
from tests.unit._zkir_helpers import circuit

PROPS = settings(max_examples=40, deadline=None)
field = st.integers(0, R - 1)


def _run(body, inputs, out_cells):
    body = body + [{"op": "output", "var": c} for c in out_cells]
    compiled = compile_circuit(circuit(len(inputs), body))
    z, _ = generate_witness(compiled, ProofPreimage(inputs=tuple(inputs)))  # verify=True checks every constraint
    return z


@PROPS
@given(st.integers(0, 60), st.integers(0, 2**60), st.integers(0, 2**60))
def test_less_than_matches_integers(bits, a, b):
    a, b = a % (1 << bits), b % (1 << bits)
    body = [{"op": "less_than", "a": 0, "b": 1, "bits": bits}, {"op": "declare_pub_input", "var": 2},
            {"op": "pi_skip", "guard": None, "count": 1}]
    compiled = compile_circuit(circuit(2, body))
    _, public = generate_witness(compiled, ProofPreimage(inputs=(a, b), public_transcript_inputs=(int(a < b),)))
    assert public[1] == int(a < b)


@PROPS
@given(field, st.integers(0, 248))
def test_div_mod_then_reconstitute_is_identity(x, bits):
    body = [{"op": "div_mod_power_of_two", "var": 0, "bits": bits},
            {"op": "constrain_bits", "var": 2, "bits": bits} if bits else {"op": "copy", "var": 2},
            {"op": "declare_pub_input", "var": 1}, {"op": "declare_pub_input", "var": 2},
            {"op": "pi_skip", "guard": None, "count": 2}]
    if bits:
        body.append({"op": "reconstitute_field", "divisor": 1, "modulus": 2, "bits": bits})
        body.append({"op": "constrain_eq", "a": 3, "b": 0})
    q, r = x >> bits, x & ((1 << bits) - 1)
    compiled = compile_circuit(circuit(1, body))
    _, public = generate_witness(compiled, ProofPreimage(inputs=(x,), public_transcript_inputs=(q, r)))
    assert public[1:] == [q, r]


@PROPS
@given(st.lists(st.tuples(st.sampled_from(["add", "mul", "neg", "test_eq"]), st.integers(0, 10**6),
                          st.integers(0, 10**6)), min_size=1, max_size=30), st.lists(field, min_size=3, max_size=3))
def test_random_arithmetic_programs_satisfy_their_constraints(ops, inputs):
    body, values = [], list(inputs)
    for op, i, j in ops:
        a, b = i % len(values), j % len(values)
        if op == "neg":
            body.append({"op": op, "a": a})
            values.append(-values[a] % R)
        else:
            body.append({"op": op, "a": a, "b": b})
            values.append({"add": (values[a] + values[b]) % R, "mul": values[a] * values[b] % R,
                           "test_eq": int(values[a] == values[b])}[op])
    body += [{"op": "declare_pub_input", "var": len(values) - 1}, {"op": "pi_skip", "guard": None, "count": 1}]
    compiled = compile_circuit(circuit(3, body))
    _, public = generate_witness(compiled, ProofPreimage(inputs=tuple(inputs), public_transcript_inputs=(values[-1],)))
    assert public[1] == values[-1]
