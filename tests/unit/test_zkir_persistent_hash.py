"""``persistent_hash`` against Midnight's own packages: the alignment, the decode, SHA-256, the two cells.

Two oracles from ``@midnight-ntwrk/*`` (:mod:`tests.support.midnight`):

- ``onchain.persistentHash(alignment, value)`` hashes a Midnight value (one byte string per atom);
- ``zkir.check`` runs Midnight's IR VM on our serialized circuit and preimage, so it decodes *our*
  cells with Midnight's own ``parse_field_repr``: it accepts only if our cells are Midnight's field
  form of the value and our two output cells are Midnight's.
"""

from __future__ import annotations

import json
import random
from collections import defaultdict
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from teeprover.errors import CircuitError
from teeprover.r1cs import R
from teeprover.zkir import ProofPreimage, check, compile_circuit, generate_witness, load_circuit
from teeprover.zkir.alignment import (
    AlignmentError,
    AlignmentMismatch,
    BytesAtom,
    FieldAtom,
    alignment_to_json,
    bin_len,
    decode_to_bytes,
    encode_value,
    field_len,
    parse_alignment,
)
from teeprover.zkir.gadgets import fab, lc
from teeprover.zkir.gadgets.lc import Synth
from teeprover.zkir.ir import Circuit
from tests.support.midnight import MidnightError, MidnightOracle
from tests.unit._zkir_helpers import circuit

ZSWAP = [{"tag": "atom", "value": {"length": n, "tag": "bytes"}} for n in (21, 32, 32, 16, 1, 32)]
FIELD = {"tag": "atom", "value": {"tag": "field"}}


def _bytes_atom(n: int) -> dict[str, Any]:
    return {"tag": "atom", "value": {"tag": "bytes", "length": n}}


def _hash_body(alignment: list[Any], inputs: list[int], memory: int) -> list[dict[str, Any]]:
    """``persistent_hash`` of ``inputs``, both outputs declared public and checked against the transcript."""
    return [{"op": "persistent_hash", "alignment": alignment, "inputs": inputs},
            {"op": "declare_pub_input", "var": memory}, {"op": "declare_pub_input", "var": memory + 1},
            {"op": "pi_skip", "guard": None, "count": 2}]


def _hash_circuit(alignment: list[Any], num_cells: int) -> Circuit:
    return circuit(num_cells, _hash_body(alignment, list(range(num_cells)), num_cells))


def _oracle_cells(midnight: MidnightOracle, alignment: list[Any], value: list[bytes]) -> list[int]:
    (digest,) = midnight.call("onchain", "persistentHash", alignment, value)
    return fab.digest_cells(digest + bytes(32 - len(digest)))  # the answer is a value atom: trailing zeros dropped


_CHECK_JS = """
const ir = zkir.jsonIrToBinary(args[0]);
const key = {proverKey: new Uint8Array(), verifierKey: new Uint8Array(), ir};
return zkir.check(args[1], {lookupKey: () => Promise.resolve(key), getParams: () => Promise.resolve(new Uint8Array())});
"""


def _midnight_check(midnight: MidnightOracle, c: Circuit, pre: ProofPreimage) -> Any:
    return midnight.run(_CHECK_JS, c.to_json().decode(), pre.to_midnight())


# ---------------------------------------------------------------- the alignment

def test_alignment_json_round_trip() -> None:
    raw = [*ZSWAP, FIELD, _bytes_atom(0)]
    alignment = parse_alignment(raw)
    assert alignment == (*(BytesAtom(n) for n in (21, 32, 32, 16, 1, 32)), FieldAtom(), BytesAtom(0))
    assert parse_alignment(alignment_to_json(alignment)) == alignment
    assert field_len(alignment) == 1 + 2 + 2 + 1 + 1 + 2 + 1 + 0
    assert bin_len(alignment) == 134 + 32


@pytest.mark.parametrize(("raw", "message"), [
    ([{"tag": "atom", "value": {"tag": "compress"}}], "compress atom cannot be decoded"),
    ([{"tag": "option", "value": [[FIELD], []]}], "option segments cannot be decoded"),
    ({"tag": "atom"}, "expected a list"),
    ([{"tag": "atom", "value": {"tag": "bits", "length": 1}}], "unknown atom tag"),
    ([{"tag": "segment", "value": FIELD["value"]}], "unknown segment tag"),
    ([{"tag": "atom", "value": {"tag": "bytes"}}], "exactly the keys tag, length"),
    ([{"tag": "atom", "value": {"tag": "field", "length": 3}}], "exactly the keys tag"),
    ([{"tag": "atom", "value": {"tag": "bytes", "length": -1}}], "unsigned 32-bit"),
    ([{"tag": "atom", "value": {"tag": "bytes", "length": True}}], "unsigned 32-bit"),
    ([{"tag": "atom", "value": {"tag": "bytes", "length": 1 << 32}}], "unsigned 32-bit"),
    ([{"tag": "atom", "value": FIELD["value"], "extra": 1}], "exactly the keys tag, value"),
    (["field"], "must be an object"),
])
def test_malformed_or_undecodable_alignments_are_refused(raw: Any, message: str) -> None:
    with pytest.raises(AlignmentError, match=message):
        parse_alignment(raw)
    with pytest.raises(CircuitError, match=f"instruction 0 \\(persistent_hash\\).*{message}") as info:
        circuit(1, [{"op": "persistent_hash", "alignment": raw, "inputs": [0]}])
    assert info.value.instruction == 0


_K_JS = "return zkir.Zkir.fromJson(args[0]).getK();"  # Midnight lays out (synthesizes) the circuit


@pytest.mark.parametrize(("alignment", "cells", "refused"), [
    ([FIELD], 1, False),
    ([_bytes_atom(40)], 2, False),
    ([{"tag": "atom", "value": {"tag": "compress"}}], 1, True),
    ([{"tag": "option", "value": [[FIELD]]}], 2, True),
    ([_bytes_atom(40)], 1, True),  # too few cells
])
def test_midnight_refuses_in_circuit_what_we_refuse(midnight: MidnightOracle, alignment: list[Any], cells: int,
                                                     refused: bool) -> None:
    doc = {"version": {"major": 2, "minor": 0}, "num_inputs": cells, "do_communications_commitment": False,
           "instructions": [{"op": "persistent_hash", "alignment": alignment, "inputs": list(range(cells))}]}
    if not refused:
        assert midnight.run(_K_JS, json.dumps(doc)) >= 10
        load_circuit(json.dumps(doc).encode())
        return
    with pytest.raises(MidnightError):
        midnight.run(_K_JS, json.dumps(doc))
    with pytest.raises(CircuitError, match="instruction 0 \\(persistent_hash\\)"):
        load_circuit(json.dumps(doc).encode())


def test_too_few_cells_are_refused_and_extra_cells_ignored(midnight: MidnightOracle) -> None:
    with pytest.raises(CircuitError, match="the alignment reads 2 cells, 1 given"):
        circuit(1, [{"op": "persistent_hash", "alignment": [_bytes_atom(40)], "inputs": [0]}])
    # Like Midnight (parse_field_repr and fab_decode_to_bytes stop at the alignment's end).
    c = _hash_circuit([_bytes_atom(3)], 2)
    expected = _oracle_cells(midnight, [_bytes_atom(3)], [b"abc"])
    pre = ProofPreimage(inputs=(int.from_bytes(b"abc", "little"), 12345), public_transcript_inputs=tuple(expected))
    assert check(c, pre) == [0]
    assert _midnight_check(midnight, c, pre) == [None]


def test_too_many_bytes_are_refused() -> None:
    with pytest.raises(CircuitError, match="hashes 65537 bytes, the limit is 65536"):
        _hash_circuit([_bytes_atom(65537)], 2115)


def test_circuit_codecs_keep_the_alignment() -> None:
    c = _hash_circuit([*ZSWAP, FIELD], 10)
    assert load_circuit(c.to_cbor()) == c
    assert load_circuit(c.to_json()) == c
    assert c.instructions[0].to_json()["alignment"] == alignment_to_json(parse_alignment([*ZSWAP, FIELD]))
    other = _hash_circuit([*ZSWAP[:-1], _bytes_atom(31), FIELD], 10)
    assert other.digest() != c.digest()


# ---------------------------------------------------------------- random values against the oracles

@st.composite
def aligned_values(draw: st.DrawFn, max_bytes: int = 200) -> tuple[list[Any], list[bytes]]:
    """A random alignment of field and bytes atoms (at most ``max_bytes`` bytes) and a Midnight value for it."""
    budget = draw(st.integers(0, max_bytes))
    alignment: list[Any] = []
    value: list[bytes] = []
    for _ in range(draw(st.integers(0, 6))):
        if budget >= 32 and draw(st.integers(0, 3)) == 0:
            x = draw(st.one_of(st.integers(0, R - 1), st.sampled_from([0, 1, R - 1, 1 << 248, 1 << 254])))
            raw = x.to_bytes(32, "little")
            if draw(st.integers(0, 9)) == 0:  # a longer atom, reduced mod r as Midnight does
                raw = draw(st.binary(min_size=33, max_size=64))
            alignment.append(FIELD)
            value.append(raw.rstrip(b"\x00"))
            budget -= 32
            continue
        length = draw(st.integers(0, min(budget, 100)))
        data = draw(st.binary(min_size=length, max_size=length))
        cut = draw(st.integers(0, length))  # trailing zeros: the atom is shorter than its length
        alignment.append(_bytes_atom(length))
        value.append(data[:cut].rstrip(b"\x00"))
        budget -= length
    return alignment, value


@settings(max_examples=300, deadline=None)
@given(aligned_values())
def test_out_of_circuit_matches_midnight(midnight: MidnightOracle, case: tuple[list[Any], list[bytes]]) -> None:
    raw, value = case
    alignment = parse_alignment(raw)
    cells = encode_value(alignment, value)
    assert len(cells) == field_len(alignment)
    assert len(decode_to_bytes(alignment, cells)) == bin_len(alignment)
    expected = _oracle_cells(midnight, raw, value)
    assert fab.persistent_hash(alignment, cells) == expected
    # Midnight decodes our cells itself and compares its output cells with ours.
    c = _hash_circuit(raw, len(cells))
    pre = ProofPreimage(inputs=tuple(cells), public_transcript_inputs=tuple(expected))
    assert _midnight_check(midnight, c, pre) == [None]


SHAPES = [
    ZSWAP,                                                   # the zswap commitment: 134 bytes, 3 blocks
    [FIELD, _bytes_atom(5)],                                 # a field atom
    [_bytes_atom(62), FIELD, _bytes_atom(0), _bytes_atom(40)],  # whole chunks only, an empty atom
    [],                                                      # nothing: SHA-256 of the empty string
]


@settings(max_examples=12, deadline=None)
@given(st.data())
def test_in_circuit_witness_matches_midnight(midnight: MidnightOracle, data: st.DataObject) -> None:
    raw = SHAPES[data.draw(st.integers(0, len(SHAPES) - 1))]
    alignment = parse_alignment(raw)
    value = []
    for atom in alignment:
        size = 32 if isinstance(atom, FieldAtom) else atom.length
        chunk = data.draw(st.binary(min_size=size, max_size=size))
        if isinstance(atom, FieldAtom):
            chunk = (int.from_bytes(chunk, "little") % R).to_bytes(32, "little")
        value.append(chunk.rstrip(b"\x00"))
    cells = encode_value(alignment, value)
    expected = _oracle_cells(midnight, raw, value)
    compiled = compile_circuit(_hash_circuit(raw, len(cells)))  # cached by digest: compiled once per shape
    _, public = generate_witness(compiled, ProofPreimage(inputs=tuple(cells), public_transcript_inputs=tuple(expected)))
    assert public[1:] == expected


def test_constant_cells_fold_and_match_midnight(midnight: MidnightOracle) -> None:
    """A ``load_imm`` cell is split into constant bits (no constraints) and hashes the same."""
    value = [b"xyz", b"\x05"]
    raw = [_bytes_atom(3), FIELD]
    expected = _oracle_cells(midnight, raw, value)
    folded = circuit(1, [{"op": "load_imm", "imm": b"xyz".hex()}, *_hash_body(raw, [1, 0], 2)])
    _, public = generate_witness(compile_circuit(folded),
                                 ProofPreimage(inputs=(5,), public_transcript_inputs=tuple(expected)))
    assert public[1:] == expected
    unfolded = _hash_circuit(raw, 2)
    assert compile_circuit(folded).r1cs.num_constraints < compile_circuit(unfolded).r1cs.num_constraints - 24


def test_inputs_that_do_not_fit_fail_like_midnight(midnight: MidnightOracle) -> None:
    c = _hash_circuit([_bytes_atom(3)], 1)
    pre = ProofPreimage(inputs=(1 << 24,), public_transcript_inputs=(0, 0))
    answer = check(c, pre)
    assert len(answer) == 1 and isinstance(answer[0], str)
    assert answer[0].startswith("instruction 0 (persistent_hash): inputs did not match the alignment")
    with pytest.raises(MidnightError, match="Inputs did not match alignment"):
        _midnight_check(midnight, c, pre)
    with pytest.raises(AlignmentMismatch):
        decode_to_bytes(parse_alignment([_bytes_atom(33)]), [1 << 16, 0])  # the stray cell holds 2 bytes
    assert decode_to_bytes(parse_alignment([_bytes_atom(33)]), [(1 << 16) - 1, 7]) == b"\x07" + bytes(30) + b"\xff\xff"


# ---------------------------------------------------------------- cost and soundness

def test_decomposition_costs() -> None:
    def cost(raw: list[Any]) -> int:
        alignment = parse_alignment(raw)
        s = Synth(0, proving=False)
        fab.decode(s, alignment, [lc.var(s.new_var()) for _ in range(field_len(alignment))])
        return len(s.constraints)

    assert cost([_bytes_atom(31)]) == 8 * 31 + 1
    assert cost([_bytes_atom(5)]) == 8 * 5 + 1
    assert cost([_bytes_atom(64)]) == 2 * (8 * 31 + 1) + 8 * 2 + 1
    assert cost([_bytes_atom(0)]) == 0
    assert cost([FIELD]) == 256 + 254  # 255 bits + their sum, and the canonical check (docs/zkir.md)


def test_witness_mutation_soundness() -> None:
    """Changing one variable of a satisfying witness breaks the R1CS: the inputs, both public outputs and
    a random sample of 250 auxiliary variables (byte decompositions, the canonical check, SHA-256).

    None of them may change freely: every auxiliary variable is a function of the inputs (bits of a
    unique decomposition, products, XORs), so the test expects no exception to this rule.
    """
    raw = [FIELD, _bytes_atom(40)]
    alignment = parse_alignment(raw)
    cells = encode_value(alignment, [(R - 5).to_bytes(32, "little"), bytes(range(1, 41))])
    expected = fab.persistent_hash(alignment, cells)
    compiled = compile_circuit(_hash_circuit(raw, len(cells)))
    z, _ = generate_witness(compiled, ProofPreimage(inputs=tuple(cells), public_transcript_inputs=tuple(expected)))
    r1cs = compiled.r1cs
    touching: dict[int, list[int]] = defaultdict(list)
    for i, con in enumerate(r1cs.constraints):
        for v in {*con.a, *con.b, *con.c}:
            touching[v].append(i)
    first_input = 1 + r1cs.num_public
    rng = random.Random(7)
    aux = range(first_input + len(cells), r1cs.num_variables)
    targets = [2, 3, *range(first_input, first_input + len(cells)), *rng.sample(aux, 250)]

    def satisfied(w: list[int], i: int) -> bool:
        con = r1cs.constraints[i]
        a, b, c = (sum(k * w[v] for v, k in row.items()) % R for row in (con.a, con.b, con.c))
        return a * b % R == c

    for v in targets:
        w = list(z)
        w[v] = (w[v] + rng.randrange(1, R)) % R
        assert touching[v], f"variable {v} is unconstrained"
        assert not all(satisfied(w, i) for i in touching[v]), f"variable {v} can change freely"
    w = list(z)
    w[3] = (w[3] + 1) % R
    with pytest.raises(CircuitError):
        r1cs.check_witness(w)
