"""Small builders shared by the ZKIR unit tests."""

from __future__ import annotations

import json
from typing import Any

from teeprover.zkir import Circuit, ProofPreimage, compile_circuit, generate_witness, load_circuit
from teeprover.zkir.compile import CompiledCircuit


def circuit(num_inputs: int, instructions: list[dict[str, Any]], *, dcc: bool = False) -> Circuit:
    return load_circuit(json.dumps({
        "version": {"major": 2, "minor": 0}, "num_inputs": num_inputs,
        "do_communications_commitment": dcc, "instructions": instructions}).encode())


def witness(instructions: list[dict[str, Any]], inputs: list[int], **pre: Any) -> tuple[CompiledCircuit, list[int]]:
    compiled = compile_circuit(circuit(len(inputs), instructions))
    z, _ = generate_witness(compiled, ProofPreimage(inputs=tuple(inputs), **pre), verify=False)
    return compiled, z


def first_private(compiled: CompiledCircuit) -> int:
    """Index of the first private variable (the first circuit input)."""
    return 1 + compiled.r1cs.num_public
