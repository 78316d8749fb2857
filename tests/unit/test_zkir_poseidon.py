"""Midnight's Poseidon (``transient_hash``) and the communications commitment, against Midnight's own runtime.

The oracle is ``@midnight-ntwrk/onchain-runtime-v2`` (``transientHash``, ``transientCommit``) through
the ``midnight`` fixture; values are field atoms, so Midnight hashes exactly the field elements given.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from teeprover import proving, zkir
from teeprover.errors import CircuitError
from teeprover.groth16 import encoding, setup
from teeprover.groth16.verify import verify
from teeprover.r1cs import R
from teeprover.snarkjs.ptau import lagrange_params_from_secrets
from teeprover.zkir import ProofPreimage, check, compile_circuit, generate_witness
from teeprover.zkir.gadgets import lc, poseidon
from teeprover.zkir.gadgets.lc import Synth
from teeprover.zkir.ir import format_immediate
from tests.support.midnight import Big, MidnightError, MidnightOracle
from tests.unit._zkir_helpers import circuit, first_private

REPO = Path(__file__).resolve().parents[2]
CONSTANTS = REPO / "teeprover" / "zkir" / "gadgets" / "poseidon_constants.json"
CONSTANTS_SHA256 = "918bef920a2478c16378a0ac7be1ef31b0d88b54b5c79374c78080fc3e01b5cf"

_FIELDS = """
const fields = (xs) => ({
  align: xs.map(() => ({tag: 'atom', value: {tag: 'field'}})),
  value: xs.map((x) => onchain.bigIntToValue(x)).flat(),
});
"""
_HASH_JS = _FIELDS + """
const {align, value} = fields(args[0]);
return onchain.valueToBigInt(onchain.transientHash(align, value));
"""
_COMMIT_JS = _FIELDS + """
const {align, value} = fields(args[0]);
return onchain.valueToBigInt(onchain.transientCommit(align, value, onchain.bigIntToValue(args[1])));
"""


def midnight_hash(midnight: MidnightOracle, xs: list[int]) -> int:
    return midnight.run(_HASH_JS, [Big(x) for x in xs])


def midnight_commit(midnight: MidnightOracle, xs: list[int], opening: int) -> int:
    return midnight.run(_COMMIT_JS, [Big(x) for x in xs], Big(opening))


field = st.one_of(st.sampled_from([0, 1, 2, R - 1, R - 2]), st.integers(0, R - 1))
fields = st.lists(field, max_size=20)
oracle_settings = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


# ---------------------------------------------------------------- constants

def test_constants_file_is_pinned_and_reproduced_by_the_generator():
    data = CONSTANTS.read_bytes()
    assert hashlib.sha256(data).hexdigest() == CONSTANTS_SHA256
    generated = subprocess.run([sys.executable, str(REPO / "tools" / "gen_poseidon_constants.py"), "--stdout"],
                               check=True, capture_output=True, timeout=120).stdout
    assert generated == data
    assert (poseidon.FULL_ROUNDS, poseidon.PARTIAL_ROUNDS, poseidon.RATE, poseidon.WIDTH) == (8, 60, 2, 3)
    assert len(poseidon.ROUND_CONSTANTS) == 68 and all(0 < x < R for row in poseidon.ROUND_CONSTANTS for x in row)
    # midnight-zk blstrs.rs, first round constant and first MDS entry (from_raw limbs, little-endian).
    assert poseidon.ROUND_CONSTANTS[0][0] == 0x0A59176C702E80BDE6789030868B74DA429EB1495835F5D0118A2E2F65548257
    assert poseidon.MDS[0][0] == 0x1B8114C381B922FD5D6D241210E2D8A68AD5744053BA9E776118DE4107B51ACE


def test_generator_check_mode_refuses_a_modified_constants_file(tmp_path):
    tool = REPO / "tools" / "gen_poseidon_constants.py"
    ok = subprocess.run([sys.executable, str(tool), "--check"], capture_output=True, timeout=120)
    assert ok.returncode == 0
    # The Rust-literal comparison finds a single flipped limb.
    rust = "".join(f"from_raw([0x{(x >> 0) & (2**64 - 1):x}, 0x{(x >> 64) & (2**64 - 1):x}, "
                   f"0x{(x >> 128) & (2**64 - 1):x}, 0x{x >> 192:x}])\n"
                   for x in [c for row in poseidon.ROUND_CONSTANTS for c in row]
                   + [m for row in poseidon.MDS for m in row])
    (tmp_path / "good.rs").write_text(rust)
    (tmp_path / "bad.rs").write_text(rust.replace("from_raw([0x", "from_raw([0x1", 1))
    assert subprocess.run([sys.executable, str(tool), "--stdout", "--rust", str(tmp_path / "good.rs")],
                          capture_output=True, timeout=120).returncode == 0
    assert subprocess.run([sys.executable, str(tool), "--stdout", "--rust", str(tmp_path / "bad.rs")],
                          capture_output=True, timeout=120).returncode == 1


# ---------------------------------------------------------------- the twin against Midnight

@pytest.mark.parametrize("n", range(21))
def test_twin_and_circuit_equal_midnight_for_every_length_0_to_20(midnight, n):
    xs = [(R - 1, 0, 1)[i % 3] if i % 2 else (i * 0x9E3779B97F4A7C15) % R for i in range(n)]
    expected = midnight_hash(midnight, xs)
    assert poseidon.transient_hash(xs) == expected
    c, inputs, _ = _hash_circuit(xs, [False] * n)
    _, public = generate_witness(compile_circuit(c), ProofPreimage(inputs=inputs, public_transcript_inputs=(expected,)))
    assert public[1] == expected


def test_empty_input_hashes_to_zero_as_midnight():
    # No chunk is absorbed, so no permutation runs: state element 0 stays 0.
    assert poseidon.transient_hash([]) == 0


@oracle_settings
@given(xs=fields, opening=field)
@example(xs=[], opening=0)
@example(xs=[0], opening=1)
@example(xs=[R - 1] * 20, opening=R - 1)
def test_twin_hash_and_commit_equal_midnight(midnight, xs, opening):
    assert poseidon.transient_hash(xs) == midnight_hash(midnight, xs)
    assert poseidon.transient_commit(xs, opening) == midnight_commit(midnight, xs, opening)


def test_hash_is_not_length_extendable_by_zeros():
    # The length sits in the capacity element: [] , [0], [0, 0] all differ.
    assert len({poseidon.transient_hash([0] * n) for n in range(5)}) == 5


# ---------------------------------------------------------------- in circuit against Midnight

def _hash_circuit(xs: list[int], as_constant: list[bool]) -> tuple[zkir.Circuit, tuple[int, ...], int]:
    """Inputs are the non-constant values; constants come from load_imm; cell ``out`` is their hash."""
    inputs = tuple(x for x, c in zip(xs, as_constant, strict=True) if not c)
    body: list[dict] = []
    cells, next_input, next_cell = [], 0, len(inputs)
    for x, c in zip(xs, as_constant, strict=True):
        if c:
            body.append({"op": "load_imm", "imm": format_immediate(x)})
            cells.append(next_cell)
            next_cell += 1
        else:
            cells.append(next_input)
            next_input += 1
    body += [{"op": "transient_hash", "inputs": cells}, {"op": "declare_pub_input", "var": next_cell},
             {"op": "pi_skip", "guard": None, "count": 1}]
    return circuit(len(inputs), body), inputs, next_cell


@oracle_settings
@given(items=st.lists(st.tuples(field, st.booleans()), max_size=20))
@example(items=[])
@example(items=[(0, False), (1, False), (R - 1, False)])
@example(items=[(R - 1, True), (0, False), (1, True)])
def test_in_circuit_witness_equals_midnight(midnight, items):
    """Each value is a circuit input or (flag set) a load_imm constant, which the gadget folds."""
    xs = [x for x, _ in items]
    c, inputs, _ = _hash_circuit(xs, [constant for _, constant in items])
    expected = midnight_hash(midnight, xs)
    compiled = compile_circuit(c)
    z, public = generate_witness(compiled, ProofPreimage(inputs=inputs, public_transcript_inputs=(expected,)))
    assert public[1] == expected  # verify=True (default) also checked every constraint


def test_wrong_hash_in_the_transcript_is_refused_naming_the_pi_skip():
    c, inputs, _ = _hash_circuit([5, 6, 7], [False, False, False])
    compiled = compile_circuit(c)
    wrong = (poseidon.transient_hash([5, 6, 7]) + 1) % R
    with pytest.raises(CircuitError, match=r"instruction 2 \(pi_skip\): public transcript input mismatch"):
        generate_witness(compiled, ProofPreimage(inputs=inputs, public_transcript_inputs=(wrong,)))
    answer = check(c, ProofPreimage(inputs=inputs, public_transcript_inputs=(wrong,)))
    assert len(answer) == 1 and str(answer[0]).startswith("instruction 2 (pi_skip): public transcript input mismatch")
    right = poseidon.transient_hash([5, 6, 7])
    assert check(c, ProofPreimage(inputs=inputs, public_transcript_inputs=(right,))) == [0]


# ---------------------------------------------------------------- constraint counts

def _fresh(s: Synth, n: int) -> list[dict[int, int]]:
    return [lc.var(s.new_var()) for _ in range(n)]


def test_permutation_costs_256_constraints():
    s = Synth(0, proving=False)
    poseidon.permute_lc(s, _fresh(s, 3))
    assert len(s.constraints) == 256 <= 260  # 8*3 + 60 S-boxes of 3, and 2 x 2 materializations
    assert max(len(row) for con in s.constraints for row in (con.a, con.b, con.c)) <= 26


@pytest.mark.parametrize("n", [0, 1, 2, 3, 4, 20])
def test_hash_costs_one_permutation_per_two_inputs(n):
    s = Synth(0, proving=False)
    poseidon.hash_lc(s, _fresh(s, n))
    perms = -(-n // 2)
    # The first permutation's length element is a constant, so its first S-box is free (and so is
    # element 1's when a single input leaves it 0).
    assert len(s.constraints) == (256 * perms - 3 - 3 * (n == 1) if perms else 0)


def test_hash_of_constants_costs_nothing():
    s = Synth(0, proving=False)
    out = poseidon.hash_lc(s, [lc.const(3), lc.const(4)])
    assert s.constraints == [] and lc.constant_value(out) == poseidon.transient_hash([3, 4])


# ---------------------------------------------------------------- soundness

def _mutations_all_fail(compiled: zkir.CompiledCircuit, z: list[int], variables: range) -> None:
    compiled.r1cs.check_witness(z)
    for v in variables:
        bad = list(z)
        bad[v] = (bad[v] + 1) % R
        with pytest.raises(CircuitError):
            compiled.r1cs.check_witness(bad)


def test_witness_mutation_every_gadget_variable_and_the_output_is_caught():
    c, inputs, _ = _hash_circuit([11, 12, 13], [False] * 3)
    compiled = compile_circuit(c)
    z, public = generate_witness(compiled, ProofPreimage(inputs=inputs,
                                                         public_transcript_inputs=(poseidon.transient_hash(
                                                             [11, 12, 13]),)))
    first_aux = first_private(compiled) + len(inputs)
    assert len(z) - first_aux == 2 * 256 - 3  # two permutations, one variable per constraint
    # Every auxiliary variable is a function of the inputs fixed by its own constraint (x^2, x^4, x^5 or a
    # materialized sum), so no change yields another valid witness.  The output is public input #2.
    _mutations_all_fail(compiled, z, range(first_aux, len(z)))
    _mutations_all_fail(compiled, z, range(2, 3))


# ---------------------------------------------------------------- communications commitment

# Two inputs, two outputs (x + y, then x * y), x * y declared public: the commitment hashes 5 values.
_COMM_BODY = [
    {"op": "add", "a": 0, "b": 1}, {"op": "mul", "a": 0, "b": 1},
    {"op": "output", "var": 2}, {"op": "output", "var": 3},
    {"op": "declare_pub_input", "var": 3}, {"op": "pi_skip", "guard": None, "count": 1},
]


def _comm_preimage(midnight: MidnightOracle, x: int, y: int, opening: int) -> ProofPreimage:
    commitment = midnight_commit(midnight, [x, y, (x + y) % R, x * y % R], opening)  # Midnight's transient_commit
    return ProofPreimage(inputs=(x, y), public_transcript_inputs=(x * y % R,),
                         communications_commitment=(commitment, opening))


def test_commitment_circuit_proves_end_to_end_and_verifies(midnight):
    c = circuit(2, _COMM_BODY, dcc=True)
    compiled = compile_circuit(c)
    assert compiled.r1cs.num_constraints == 1 + 1 + 3 * 256 - 3 + 1 and compiled.k == 10
    params = lagrange_params_from_secrets(compiled.r1cs.domain_size(), tau=0xC0FFEE, alpha=0xA1, beta=0xB2)
    pk = setup.setup(compiled.r1cs, params, setup.ToxicWaste(delta=0xD17A))
    keys = zkir.ProvingKeyMaterial(prover_key=encoding.encode_proving_key(pk),
                                   verifier_key=encoding.encode_verifying_key(pk.vk), ir_source=c.to_json())
    pre = _comm_preimage(midnight, 3, R - 1, 0xABCDEF)
    result = proving.Prover(None).prove(zkir.ProveRequest(pre, keys))
    assert result.public_inputs[:2] == [0, pre.communications_commitment[0]]
    assert verify(pk.vk, result.public_inputs, result.proof)
    other = list(result.public_inputs)
    other[1] = (other[1] + 1) % R  # another commitment: the proof does not verify
    assert not verify(pk.vk, other, result.proof)

    # A wrong commitment, or the outputs committed in the other order, is refused by name.
    bad = _comm_preimage(midnight, 3, R - 1, 0xABCDEF)
    for changed in [(bad.communications_commitment[0] + 1, 0xABCDEF),
                    (bad.communications_commitment[0], 0xABCDE0),
                    (midnight_commit(midnight, [3, R - 1, (3 * (R - 1)) % R, 2], 0xABCDEF), 0xABCDEF)]:
        wrong = replace(bad, communications_commitment=changed)
        with pytest.raises(CircuitError, match="^Communications commitment mismatch$"):
            proving.Prover(None).prove(zkir.ProveRequest(wrong, keys))
        assert check(c, wrong) == [0, "Communications commitment mismatch"]
    missing = replace(bad, communications_commitment=None)
    with pytest.raises(CircuitError, match="^Expected communications commitment$"):
        generate_witness(compiled, missing)
    assert check(c, missing) == ["Expected communications commitment"]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(x=field, y=field, opening=field)
def test_commitment_witness_matches_midnights_transient_commit(midnight, x, y, opening):
    compiled = compile_circuit(circuit(2, _COMM_BODY, dcc=True))
    pre = _comm_preimage(midnight, x, y, opening)
    _, public = generate_witness(compiled, pre)
    assert public[1] == pre.communications_commitment[0]


def test_commitment_witness_mutation_randomness_and_commitment_are_caught(midnight):
    # One input and one output: the commitment hashes [randomness, x, x] in two permutations.
    compiled = compile_circuit(circuit(1, [{"op": "output", "var": 0}], dcc=True))
    pre = ProofPreimage(inputs=(7,), communications_commitment=(midnight_commit(midnight, [7, 7], 9), 9))
    z, _ = generate_witness(compiled, pre)
    # After the input: the randomness (private) and the commitment hash's S-box and materialized
    # variables; none can change alone.  Then public input #1, the commitment itself.
    commit_start = first_private(compiled) + 1
    assert z[commit_start] == 9 and len(z) - commit_start - 1 == 2 * 256 - 3
    _mutations_all_fail(compiled, z, range(commit_start, len(z)))
    _mutations_all_fail(compiled, z, range(2, 3))


# ---------------------------------------------------------------- Midnight's own check agrees

_CHECK_JS = """
const ir = zkir.jsonIrToBinary(args[0]);
const key = {proverKey: new Uint8Array(), verifierKey: new Uint8Array(), ir};
return zkir.check(args[1], {lookupKey: () => Promise.resolve(key), getParams: () => Promise.resolve(new Uint8Array())});
"""


def _both_checks(midnight: MidnightOracle, c: zkir.Circuit, pre: ProofPreimage) -> tuple[object, list[int | str]]:
    try:
        theirs: object = midnight.run(_CHECK_JS, c.to_json().decode(), pre.to_midnight())
    except MidnightError as exc:
        theirs = str(exc)
    return theirs, check(c, pre)


def test_midnights_check_accepts_and_refuses_what_we_do(midnight):
    # transient_hash: the transcript value our twin computes is the one Midnight's VM computes.
    c, inputs, _ = _hash_circuit([5, R - 1, 0], [False, True, False])
    right = poseidon.transient_hash([5, R - 1, 0])
    assert _both_checks(midnight, c, ProofPreimage(inputs=inputs, public_transcript_inputs=(right,))) == ([None], [0])
    theirs, ours = _both_checks(midnight, c, ProofPreimage(inputs=inputs, public_transcript_inputs=(right + 1,)))
    assert "mismatch" in str(theirs) and "mismatch" in str(ours[-1])
    # The communications commitment: right, wrong, missing.
    cc = circuit(2, _COMM_BODY, dcc=True)
    pre = _comm_preimage(midnight, 3, 4, 5)
    assert _both_checks(midnight, cc, pre) == ([None], [0])
    commitment, opening = pre.communications_commitment
    theirs, ours = _both_checks(midnight, cc, replace(pre, communications_commitment=(commitment, opening + 1)))
    assert "Communications commitment mismatch" in str(theirs) and ours[-1] == "Communications commitment mismatch"
    theirs, ours = _both_checks(midnight, cc, replace(pre, communications_commitment=None))
    assert "Expected communications commitment" in str(theirs) and ours == ["Expected communications commitment"]
