"""Circuit-specific Groth16 keys from the universal parameters: what ``teeprover setup`` does, for every caller.

The command line (teeprover/commands/circuits.py), the services' first-start set-up and built-in keys
(services/supervisor/devsetup.py, teeprover/builtin_keys.py) and the benchmarks call :func:`setup_keys`.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from teeprover.errors import InvalidInput
from teeprover.params.dev import cache_root, manifest_path
from teeprover.progress import QUIET, Progress


def load_ptau_for(k: int, explicit: Path | None, cache: Path | None = None) -> Any:
    from teeprover.params.manifest import load_manifest
    from teeprover.params.store import ParamStore
    from teeprover.snarkjs.ptau import read_ptau

    if explicit is not None:
        return read_ptau(explicit)
    manifest = load_manifest(manifest_path(cache=cache))
    with ParamStore(cache_root(cache) / "params", manifest) as store:
        power = manifest.power_at_least(k)
        if power is not None:
            return read_ptau(store.ensure(power))
    raise InvalidInput(f"no parameters of size >= {k} in the manifest: run `teeprover params fetch {k}`, or "
                       f"`teeprover params generate {k} --dev` for INSECURE development ones")


def setup_keys(circuit_bytes: bytes, out: Path, *, k: int | None = None, ptau: Path | None = None,
               cache: Path | None = None, progress: Progress = QUIET) -> dict[str, Any]:
    from teeprover import zkir
    from teeprover.groth16 import encoding, qap
    from teeprover.groth16.setup import random_toxic_waste, setup_xy
    from teeprover.keystore import write_key_dir
    from teeprover.snarkjs.export import verification_key_json

    with progress.stage("compiling the circuit"):
        circuit = zkir.load_circuit(circuit_bytes)
        compiled = zkir.compile_circuit(circuit)
    if k is not None and k != compiled.k:
        raise InvalidInput(
            f"--k {k}: the circuit's k is {compiled.k}" + (
                ", so its keys cannot be smaller" if k < compiled.k else
                "; Groth16 keys are made for the circuit's own domain, so drop --k (parameters of any size "
                f">= {compiled.k} serve)"), details={"k": k, "circuit_k": compiled.k})
    n = compiled.r1cs.domain_size()
    power = max(compiled.k, n.bit_length() - 1)
    with progress.stage(f"loading parameters (k={power})"):
        params = load_ptau_for(power, ptau, cache).lagrange_xy(n)  # bytes from the memory map, no point objects
    with progress.stage(f"generating keys ({compiled.r1cs.num_constraints} constraints)"):
        # the key stays in the byte arrays setup makes, which are the stored form's (no point objects)
        key = setup_xy(compiled.r1cs, params, random_toxic_waste())
        del params
        vk, stored = key.verifying_key(), encoding.encode_proving_key_xy(key, qap.constraint_coeffs(compiled.r1cs))
        del key
    meta = {"circuit_sha256": circuit.digest().hex(), "k": compiled.k, "domain_size": n,
            "constraints": compiled.r1cs.num_constraints, "public_inputs": compiled.r1cs.num_public,
            "created": dt.datetime.now(dt.UTC).isoformat(), "made_by": "teeprover setup"}
    with progress.stage(f"writing keys to {out}"):
        write_key_dir(out, circuit=circuit.to_cbor(), prover_key=stored,
                      verifier_key=encoding.encode_verifying_key(vk),
                      verification_key_json=verification_key_json(vk), meta=meta)
    return meta


def ensure_keys(circuit_bytes: bytes, out: Path, *, cache: Path | None = None, dev_params: bool = False) -> bool:
    """Set up keys in ``out`` unless it already holds keys for this circuit; True when they were set up now.

    With ``dev_params``, missing parameters are first generated as INSECURE development ones.
    """
    from teeprover import zkir
    from teeprover.keystore import made_for
    from teeprover.params.dev import generate_dev, have_dev_params

    circuit = zkir.load_circuit(circuit_bytes)
    if made_for(out, circuit.digest().hex()):
        return False
    k = zkir.circuit_k(circuit)
    if dev_params and not have_dev_params(k, cache):
        generate_dev(k, cache)
    setup_keys(circuit_bytes, out, cache=cache)
    return True
