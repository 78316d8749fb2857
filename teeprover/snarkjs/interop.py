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

from teeprover import curve
from teeprover.curve import R
from teeprover.errors import InvalidInput, ProofVerificationFailed
from teeprover.groth16 import qap
from teeprover.groth16.prove import create_random_proof, create_random_proof_streamed
from teeprover.groth16.types import Coeff, Proof, ProvingKey, VerifyingKey
from teeprover.groth16.verify import verify
from teeprover.r1cs import R1CS
from teeprover.snarkjs import export
from teeprover.snarkjs.r1cs import read_r1cs, read_r1cs_header
from teeprover.snarkjs.wtns import read_wtns, read_wtns_bytes
from teeprover.snarkjs.zkey import ZkeyChunks, read_zkey


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
    """``(proof, public_inputs, vk)`` for a circom witness, proved with our prover and checked by our verifier.

    Tries :func:`_prove_fast` first; if anything there is not exactly as expected (a malformed file, a
    witness that fails, a key for another circuit, or merely a layout it does not recognise) it gives up
    and :func:`_prove_reference` does everything again step by step and raises the precise error.
    """
    try:
        return _prove_fast(Path(r1cs_path), Path(wtns_path), Path(zkey_path))
    except Exception:  # noqa: BLE001 - the reference path decides (and names the error)
        pass
    return _prove_reference(r1cs_path, wtns_path, zkey_path)


def _prove_reference(
    r1cs_path: str | Path, wtns_path: str | Path, zkey_path: str | Path,
) -> tuple[Proof, list[int], VerifyingKey]:
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


class _NotFast(Exception):
    """The fast path does not vouch for these files: use the reference path."""


def _prove_fast(r1cs_path: Path, wtns_path: Path, zkey_path: Path) -> tuple[Proof, list[int], VerifyingKey]:
    """The proof :func:`_prove_reference` would return, with less work and more overlap.

    Like ``snarkjs groth16 prove`` (which reads no ``.r1cs`` at all) it proves what the key encodes:
    ``A z`` and ``B z`` come from the key's own A/B coefficients (section 4, one native pass over
    fixed-size records, :func:`teeprover.curve.fr_evaluations`), and of the ``.r1cs`` only the
    header is read (its sizes must be the key's).  It does not check the witness against every
    constraint, nor the key's matrices against the ``.r1cs``: the proof is verified instead, and a
    witness that fails a constraint of the key's circuit cannot give a verifying proof (Groth16
    soundness).  On any failure (a malformed file, a proof that does not verify, sizes that differ) it
    raises, and :func:`prove_snarkjs_files` runs the reference path, which does every check and names
    the error.

    The key is streamed (:func:`~teeprover.groth16.prove.prove_streamed` over
    :class:`~teeprover.snarkjs.zkey.ZkeyChunks`): each query is read, decoded and multiplied a chunk of
    points at a time, at most a few chunks alive at once, so memory does not grow with the key beyond
    the witness (its 32-byte values as the ``.wtns`` holds them: :func:`read_wtns_bytes`) and a few
    vectors of n 32-byte values.  The four witness-only MSMs (B2 first) are fed from a second thread
    while this one computes the witness map; then H.
    """
    witness = read_wtns_bytes(wtns_path)  # its length and witness[0] == 1: prove_streamed checks them
    hdr = read_r1cs_header(r1cs_path)
    key = ZkeyChunks(zkey_path)
    if (key.num_variables, key.num_public, key.domain_size) != (hdr.num_variables, hdr.num_public, hdr.domain_size()):
        raise _NotFast("sizes")
    proof = create_random_proof_streamed(key, witness)
    public = curve.fr_vector_from_bytes(witness[curve.FR_BYTES:curve.FR_BYTES * (1 + key.num_public)])
    del witness
    if not verify(key.vk, public, proof):
        raise _NotFast("the proof does not verify")
    return proof, public, key.vk


def write_snarkjs_outputs(directory: str | Path, proof: Proof, public: list[int], vk: VerifyingKey) -> None:
    """Write ``proof.json``, ``public.json`` and ``verification_key.json`` into ``directory`` (created)."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    (d / "proof.json").write_text(export.proof_json(proof))
    (d / "public.json").write_text(export.public_json(public))
    (d / "verification_key.json").write_text(export.verification_key_json(vk))


__all__ = ["prove_snarkjs_files", "write_snarkjs_outputs", "check_key_matches_circuit"]
