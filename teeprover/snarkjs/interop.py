"""Prove a circom/snarkjs circuit with our prover: ``.r1cs`` + ``.wtns`` + ``.zkey`` in, snarkjs JSON out.

``prove_snarkjs_files`` is what ``teeprover prove --r1cs F --wtns F --zkey F`` runs:
read the three files (strictly), check that they belong together and that the
witness satisfies the circuit (a :class:`~teeprover.errors.CircuitError` naming the
first failing constraint), prove with :func:`create_random_proof`, and verify the
proof with our own verifier before returning it (a proof that fails is a bug and
is never returned: :class:`~teeprover.errors.ProofVerificationFailed`).
``write_snarkjs_outputs`` writes ``proof.json``, ``public.json`` and
``verification_key.json`` exactly as snarkjs does, so ``snarkjs groth16 verify``
checks them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

from teeprover.curve import R
from teeprover.errors import InvalidInput, ProofVerificationFailed
from teeprover.groth16 import qap
from teeprover.groth16.prove import create_random_proof
from teeprover.groth16.types import Coeff, Proof, ProvingKey, VerifyingKey
from teeprover.groth16.verify import verify
from teeprover.r1cs import R1CS
from teeprover.snarkjs import export
from teeprover.snarkjs.r1cs import read_r1cs
from teeprover.snarkjs.wtns import read_wtns
from teeprover.snarkjs.zkey import read_zkey


def _matrices(coeffs: Iterable[Coeff]) -> dict[tuple[int, int, int], int]:
    """Sparse A/B entries with repeats summed and zeros dropped (snarkjs keeps both; we merge)."""
    acc: dict[tuple[int, int, int], int] = defaultdict(int)
    for c in coeffs:
        acc[c.matrix, c.constraint, c.signal] += c.value
    return {key: v % R for key, v in acc.items() if v % R}


def check_key_matches_circuit(r1cs: R1CS, pk: ProvingKey) -> None:
    """Raise InvalidInput unless ``pk`` was made for ``r1cs`` (sizes and the A/B matrices)."""
    problems = []
    if pk.num_variables != r1cs.num_variables:
        problems.append(f"variables: zkey {pk.num_variables}, r1cs {r1cs.num_variables}")
    if pk.num_public != r1cs.num_public:
        problems.append(f"public inputs: zkey {pk.num_public}, r1cs {r1cs.num_public}")
    if pk.domain_size != r1cs.domain_size():
        problems.append(f"domain size: zkey {pk.domain_size}, r1cs needs {r1cs.domain_size()}")
    if not problems and _matrices(pk.coeffs) != _matrices(qap.constraint_coeffs(r1cs)):
        problems.append("the A/B coefficients differ")
    if problems:
        raise InvalidInput("the zkey was not made for this r1cs: " + "; ".join(problems),
                           details={"mismatch": problems})


def prove_snarkjs_files(
    r1cs_path: str | Path, wtns_path: str | Path, zkey_path: str | Path,
) -> tuple[Proof, list[int], VerifyingKey]:
    """``(proof, public_inputs, vk)`` for a circom witness, proved with our prover and checked by our verifier."""
    r1cs = read_r1cs(r1cs_path)
    witness = read_wtns(wtns_path)
    r1cs.check_witness(witness)  # CircuitError: wrong length, witness[0] != 1, or the first unsatisfied constraint
    pk = read_zkey(zkey_path)
    check_key_matches_circuit(r1cs, pk)
    proof = create_random_proof(pk, witness)
    public = witness[1:1 + pk.num_public]
    if not verify(pk.vk, public, proof):
        raise ProofVerificationFailed("the proof we produced does not verify; not returned")
    return proof, public, pk.vk


def write_snarkjs_outputs(directory: str | Path, proof: Proof, public: list[int], vk: VerifyingKey) -> None:
    """Write ``proof.json``, ``public.json`` and ``verification_key.json`` into ``directory`` (created)."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    (d / "proof.json").write_text(export.proof_json(proof))
    (d / "public.json").write_text(export.public_json(public))
    (d / "verification_key.json").write_text(export.verification_key_json(vk))


__all__ = ["prove_snarkjs_files", "write_snarkjs_outputs", "check_key_matches_circuit"]
