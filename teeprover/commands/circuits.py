"""``teeprover setup | prove | verify | k | check`` (docs/architecture.md §9)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from teeprover.commands._common import EXIT_INVALID, EXIT_OK, cache_dir, fail, read_input
from teeprover.errors import InvalidInput, MalformedEncoding, TeeProverError
from teeprover.progress import Progress

if TYPE_CHECKING:
    from teeprover.client import AttestedKeys, Client


def register(sub: Any) -> None:
    s = sub.add_parser("setup", help="circuit-specific Groth16 keys from universal parameters")
    s.add_argument("circuit", type=Path, nargs="?", help="ZKIR v2 circuit (.json or .cbor)")
    s.add_argument("-o", "--out", type=Path, help="key directory to write")
    s.add_argument("--builtin", nargs="?", const="all", metavar="KEYS",
                   help="set up Midnight's built-in keys instead (all, or a comma list such as midnight/zswap/output)")
    s.add_argument("--keys-dir", type=Path, help="with --builtin: the key store (default: CACHE/keys)")
    s.add_argument("--dev-params", action="store_true",
                   help="with --builtin: generate missing INSECURE development parameters")
    s.add_argument("--k", type=_k_argument, metavar="K",
                   help="the k (10..24) the keys must have: refused unless it is the circuit's own k "
                        "(Groth16 keys are for the circuit's domain; parameters of any size >= k serve)")
    s.add_argument("--ptau", type=Path, help="prepared .ptau file (default: from the parameter cache)")
    s.set_defaults(func=_guard(_setup))

    p = sub.add_parser("prove", help="prove locally, remotely (--url), or a circom circuit (--r1cs/--wtns/--zkey)")
    p.add_argument("circuit", type=Path, nargs="?")
    p.add_argument("preimage", type=Path, nargs="?")
    p.add_argument("--keys", type=Path, help="key directory from `teeprover setup`")
    p.add_argument("-o", "--out", type=Path, required=True, help="proof file (CBOR)")
    p.add_argument("--url", help="prove remotely through the REST API (e.g. http://127.0.0.1:6300)")
    p.add_argument("--api-key", help="API key for --url (or TEEPROVER_CLIENT_API_KEY)")
    p.add_argument("--seal", action="store_true",
                   help="with --url: verify the server's attestation, then seal the request to its attested key")
    p.add_argument("--allow-simulated", action="store_true",
                   help="with --seal: accept a simulated (NOT SECURE) attestation, for development")
    p.add_argument("--snarkjs", type=Path, help="also write proof.json, public.json, verification_key.json here")
    p.add_argument("--no-verify", action="store_true",
                   help="with --url and no --keys/--snarkjs: write the server's proof WITHOUT checking it "
                        "(UNSAFE: it may not verify; for servers that serve no verifying key)")
    p.add_argument("--r1cs", type=Path)
    p.add_argument("--wtns", type=Path)
    p.add_argument("--zkey", type=Path)
    p.set_defaults(func=_guard(_prove))

    v = sub.add_parser("verify", help="verify a proof: exit 0 valid, 1 invalid, 2 malformed input")
    v.add_argument("--vk", type=Path, required=True, help="verifying key: vk.cbor or snarkjs verification_key.json")
    v.add_argument("--proof", type=Path, required=True, help="proof: CBOR or snarkjs proof.json")
    v.add_argument("--public", type=Path, required=True, help="public inputs: snarkjs public.json")
    v.set_defaults(func=_guard(_verify))

    k = sub.add_parser("k", help="the circuit's k (log2 of its evaluation domain)")
    k.add_argument("circuit", type=Path)
    k.set_defaults(func=_guard(_k))

    c = sub.add_parser("check", help="run the circuit on a preimage without proving (the /check answer)")
    c.add_argument("circuit", type=Path)
    c.add_argument("preimage", type=Path)
    c.set_defaults(func=_guard(_check))


def _k_argument(text: str) -> int:
    """``--k``: an integer in 10..24, with the words of ``params generate``."""
    from teeprover.params.manifest import check_k

    try:
        return check_k(int(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"k must be an integer, not {text!r}") from None
    except InvalidInput as exc:
        raise argparse.ArgumentTypeError(exc.message) from None


def _guard(fn: Any) -> Any:
    def run(args: argparse.Namespace) -> int:
        try:
            code: int = fn(args)
            return code
        except TeeProverError as exc:
            return fail(exc)

    return run


# -- setup ----------------------------------------------------------------------------------------
def _setup(args: argparse.Namespace) -> int:
    from teeprover.keysetup import setup_keys

    if args.builtin is not None:
        return _setup_builtin(args)
    if args.circuit is None or args.out is None:
        raise InvalidInput("setup needs CIRCUIT and -o/--out (or --builtin)")
    meta = setup_keys(read_input(args.circuit, "circuit"), args.out, k=args.k, ptau=args.ptau, progress=Progress())
    print(f"keys written to {args.out} (k={meta['k']}, {meta['constraints']} constraints, "
          f"{meta['public_inputs']} public inputs)")
    return EXIT_OK


def _setup_builtin(args: argparse.Namespace) -> int:
    from teeprover import builtin_keys

    locations = builtin_keys.parse_selection(args.builtin)
    root = args.keys_dir or cache_dir() / "keys"
    done = builtin_keys.setup_builtin(root, locations, dev_params=args.dev_params,
                                      on_state=lambda loc, state: print(f"{loc}: {state.replace('_', ' ')}",
                                                                        flush=True))
    print(f"built-in keys in {root}: {len(done)} set up, {len(locations) - len(done)} already ready")
    return EXIT_OK


# -- prove ----------------------------------------------------------------------------------------
def _write_snarkjs(directory: Path, proof: Any, public: list[int], vk: Any) -> None:
    from teeprover.snarkjs.interop import write_snarkjs_outputs

    write_snarkjs_outputs(directory, proof, public, vk)


def _prove(args: argparse.Namespace) -> int:
    from teeprover.groth16 import encoding

    if args.r1cs or args.wtns or args.zkey:
        return _prove_snarkjs(args)
    if args.circuit is None or args.preimage is None:
        raise InvalidInput("prove needs CIRCUIT and PREIMAGE (or --r1cs/--wtns/--zkey)")
    if args.no_verify and (not args.url or args.keys or args.snarkjs):
        raise InvalidInput("--no-verify only applies to --url without --keys or --snarkjs "
                           "(those have the verifying key, so the proof is checked)")
    from teeprover import zkir
    from teeprover.keystore import read_key_dir

    circuit_bytes = read_input(args.circuit, "circuit")
    preimage = zkir.load_preimage(read_input(args.preimage, "preimage"))
    material = None
    if args.keys:
        files = read_key_dir(args.keys, str(args.keys))
        material = zkir.ProvingKeyMaterial(prover_key=files.prover_key, verifier_key=files.verifier_key,
                                           ir_source=circuit_bytes)
    request = zkir.ProveRequest(preimage, material, None)
    progress = Progress()
    if args.url:
        with _remote(args.url, args.api_key, seal=args.seal, allow_simulated=args.allow_simulated) as (client, keys):
            if args.no_verify:
                with progress.stage(f"proving on {args.url}"):
                    answer = client.prove(request, seal_to=keys)
                args.out.write_bytes(answer)
                print(f"proof written to {args.out} (NOT verified: --no-verify)")
                return EXIT_OK
            # Verified before anything is written: with the key from --keys (the key material sent), else the
            # key the server serves for the preimage's key_location (fetched before the witness is sent);
            # with neither, the command fails and writes nothing.
            checked = client.prove_checked(request, circuit_bytes, seal_to=keys, progress=progress)
        proof, public, vk = checked.proof, checked.public_inputs, checked.verifying_key
    else:
        if material is None:
            raise InvalidInput("local proving needs --keys DIR (from `teeprover setup`)")
        from teeprover.proving import Prover

        with progress.stage("proving"):
            result = Prover(None).prove(request)
        proof, public, vk = result.proof, result.public_inputs, result.verifying_key
    args.out.write_bytes(encoding.encode_proof(proof))
    if args.snarkjs:
        _write_snarkjs(args.snarkjs, proof, public, vk)
    print(f"proof written to {args.out}")
    return EXIT_OK


def _prove_snarkjs(args: argparse.Namespace) -> int:
    from teeprover.groth16 import encoding
    from teeprover.snarkjs.interop import prove_snarkjs_files

    if not (args.r1cs and args.wtns and args.zkey):
        raise InvalidInput("--r1cs, --wtns and --zkey go together")
    proof, public, vk = prove_snarkjs_files(args.r1cs, args.wtns, args.zkey)
    args.out.write_bytes(encoding.encode_proof(proof))
    if args.snarkjs:
        _write_snarkjs(args.snarkjs, proof, public, vk)
    return EXIT_OK


@contextmanager
def _remote(url: str, api_key: str | None, *, seal: bool,
            allow_simulated: bool) -> Iterator[tuple[Client, AttestedKeys | None]]:
    """A client for ``url`` and, with ``seal``, the server's verified attested keys."""
    from teeprover import clientconfig
    from teeprover.client import Client

    with Client(url, api_key or clientconfig.load().api_key) as client:
        keys = client.attested_keys(allow_simulated=allow_simulated) if seal else None
        if keys is not None:
            print(f"attestation verified ({keys.platform}); sealing the request to the attested key")
        yield client, keys


# -- verify ---------------------------------------------------------------------------------------
def _looks_json(data: bytes) -> bool:
    return data.lstrip()[:1] in (b"{", b"[")


def _verify(args: argparse.Namespace) -> int:
    from teeprover.groth16 import encoding
    from teeprover.groth16.verify import verify
    from teeprover.snarkjs import export

    vk_data = read_input(args.vk, "verifying key")
    proof_data = read_input(args.proof, "proof")
    try:
        vk = export.verifying_key_from_json(vk_data) if _looks_json(vk_data) else encoding.decode_verifying_key(vk_data)
        proof = export.proof_from_json(proof_data) if _looks_json(proof_data) else encoding.decode_proof(proof_data)
        public = export.public_from_json(read_input(args.public, "public inputs"))
        ok = verify(vk, public, proof)
    except (MalformedEncoding, InvalidInput) as exc:
        return fail(exc)
    print("valid" if ok else "INVALID")
    return EXIT_OK if ok else EXIT_INVALID


# -- k / check ----------------------------------------------------------------------------------
def _k(args: argparse.Namespace) -> int:
    from teeprover.proving import circuit_k

    print(circuit_k(read_input(args.circuit, "circuit")))
    return EXIT_OK


def _check(args: argparse.Namespace) -> int:
    from teeprover import zkir

    circuit = zkir.load_circuit(read_input(args.circuit, "circuit"))
    answer = zkir.check(circuit, zkir.load_preimage(read_input(args.preimage, "preimage")))
    json.dump(answer, sys.stdout)
    print()
    return EXIT_OK if all(isinstance(a, int) for a in answer) else EXIT_INVALID


