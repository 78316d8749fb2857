"""ZKIR v2: parse, compile to R1CS, generate witnesses, /check, k, and the proof preimage formats.

The API the prover calls::

    circuit  = load_circuit(data)                    # JSON or CBOR bytes -> Circuit
    compiled = compile_circuit(circuit)              # -> CompiledCircuit(r1cs, k, ...), cached by content
    z, public_inputs = generate_witness(compiled, preimage)
    k        = circuit_k(circuit)                    # 10..24, CircuitTooLarge beyond
    answer   = check(circuit, preimage)              # list[int | str], one entry per pi_skip group
    preimage = load_preimage(data)                   # CBOR (tag 0x7E000001) or JSON
    request  = ProveRequest.from_cbor(body)          # [preimage, key_material|null, binding_input|null]
"""

from teeprover.zkir.check import check
from teeprover.zkir.compile import MAX_K, MIN_K, CompiledCircuit, circuit_k, compile_circuit
from teeprover.zkir.ir import TAG_ZKIR_V2, Circuit, Instruction, load_circuit
from teeprover.zkir.preimage import (
    TAG_PROOF_PREIMAGE_V1,
    TAG_PROVING_KEY_MATERIAL_V1,
    ProofPreimage,
    ProveRequest,
    ProvingKeyMaterial,
    load_preimage,
)
from teeprover.zkir.witness import generate_witness

__all__ = [
    "MAX_K", "MIN_K", "TAG_PROOF_PREIMAGE_V1", "TAG_PROVING_KEY_MATERIAL_V1", "TAG_ZKIR_V2",
    "Circuit", "CompiledCircuit", "Instruction", "ProofPreimage", "ProveRequest", "ProvingKeyMaterial",
    "check", "circuit_k", "compile_circuit", "generate_witness", "load_circuit", "load_preimage",
]
