"""The circom/snarkjs tool chain, with on-disk caches (shared by ``bench.run`` and the interop e2e tests).

Every step shells out to the pinned npm packages (``tests/support/npm.py`` installs
``snarkjs@0.7.6`` and ``circom2@0.2.23`` into ``.cache/npm``).  Results are cached in
folders keyed by everything that determines them, and a folder counts only once
its ``done`` stamp is written (last), so an interrupted run never leaves a
half-made artifact that a later run trusts.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.support import npm

REPO = Path(__file__).resolve().parents[1]
CACHE = REPO / ".cache"
FIXTURES = REPO / "tests" / "fixtures" / "circom"
TOOLS = "-".join(p.replace("@", "") for p in npm.PACKAGES)  # part of every cache key


class ToolError(RuntimeError):
    """A snarkjs/circom command failed; the message carries the command and its output tail."""


def run(args: list[str], *, timeout: float = 7200, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    res = subprocess.run(args, capture_output=True, text=True, timeout=timeout, cwd=cwd)
    if res.returncode != 0:
        tail = (res.stdout + res.stderr)[-2000:]
        raise ToolError(f"{' '.join(args[:3])}... exited {res.returncode}:\n{tail}")
    return res


def bin_dir() -> Path:
    return npm.ensure_installed()


def snarkjs_cmd(*args: str) -> list[str]:
    return [str(bin_dir() / "snarkjs"), *args]


def snarkjs(*args: str, timeout: float = 7200) -> subprocess.CompletedProcess[str]:
    return run(snarkjs_cmd(*args), timeout=timeout)


def snarkjs_verify(vk_json: Path, public_json: Path, proof_json: Path) -> bool:
    """``snarkjs groth16 verify``: True on "OK!", False on "Invalid proof" (exit 1), ToolError on anything else."""
    res = subprocess.run(snarkjs_cmd("groth16", "verify", str(vk_json), str(public_json), str(proof_json)),
                         capture_output=True, text=True, timeout=600)
    out = res.stdout + res.stderr
    if res.returncode == 0 and "OK!" in out:
        return True
    if "Invalid proof" in out:
        return False
    raise ToolError(f"snarkjs groth16 verify exited {res.returncode}:\n{out[-2000:]}")


def _stamped(folder: Path, key: str) -> bool:
    stamp = folder / "done"
    return stamp.exists() and stamp.read_text() == key


def _stamp(folder: Path, key: str) -> None:
    (folder / "done").write_text(key)


# --- universal parameters --------------------------------------------------------------

def snarkjs_ptau(power: int) -> Path:
    """A prepared phase-2 ``.ptau`` made by snarkjs itself (new, one contribution, prepare phase2).

    ~37 s at power 10 and ~4x per extra power: meant for small powers (tests).
    """
    folder = CACHE / "snarkjs-ptau" / f"bls12-381_power{power}_{TOOLS}"
    final = folder / "final.ptau"
    key = f"snarkjs ptau bls12-381 power {power} {TOOLS}"
    if _stamped(folder, key):
        return final
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    snarkjs("powersoftau", "new", "bls12-381", str(power), str(folder / "pot0.ptau"))
    snarkjs("powersoftau", "contribute", str(folder / "pot0.ptau"), str(folder / "pot1.ptau"),
            "--name=teeprover tests", "-e=teeprover test entropy (insecure)")
    snarkjs("powersoftau", "prepare", "phase2", str(folder / "pot1.ptau"), str(final))
    (folder / "pot0.ptau").unlink()
    (folder / "pot1.ptau").unlink()
    _stamp(folder, key)
    return final


def dev_ptau(power: int) -> Path:
    """INSECURE prepared ``.ptau`` from :func:`teeprover.snarkjs.ptau.generate_dev_ptau` (seconds, not hours).

    It carries one contribution record made with its own (discarded) secrets, so
    ``snarkjs powersoftau verify`` and ``groth16 setup`` accept it; it is still
    insecure (one party, nobody can check the secrets were destroyed): benchmarks
    and tests only.
    """
    from teeprover.snarkjs.ptau import generate_dev_ptau

    folder = CACHE / "bench" / "ptau"
    path = folder / f"dev_power{power}.ptau"
    key = f"dev ptau power {power}"
    if path.exists() and (folder / f"dev_power{power}.done").exists():
        return path
    folder.mkdir(parents=True, exist_ok=True)
    generate_dev_ptau(power, path)  # writes a temporary file and renames it
    (folder / f"dev_power{power}.done").write_text(key)
    return path


def cached_ptau(power: int) -> Path | None:
    """A cached dev ptau of at least ``power`` (snarkjs setup takes any size >=), or None."""
    folder = CACHE / "bench" / "ptau"
    for p in range(power, 29):
        if (folder / f"dev_power{p}.done").exists():
            return folder / f"dev_power{p}.ptau"
    return None


def smallest_ptau(power: int) -> Path:
    """:func:`cached_ptau`, made (:func:`dev_ptau`) if there is none."""
    return cached_ptau(power) or dev_ptau(power)


# --- circuits ----------------------------------------------------------------------

@dataclass(frozen=True)
class Circuit:
    folder: Path
    r1cs: Path
    wasm: Path
    wtns: Path
    zkey: Path
    vk_json: Path


def _main_source(template_file: str, template: str, args: str, public: str) -> str:
    """A main component over a fixture template; build_circuit copies ``include``d fixtures next to it."""
    pub = f" {{public [{public}]}}" if public else ""
    return f'pragma circom 2.0.0;\ninclude "{template_file}";\n\ncomponent main{pub} = {template}({args});\n'


def squaring_chain_source(n: int) -> str:
    return _main_source("squaring_chain.circom", "SquaringChain", str(n), "x")


def build_circuit(name: str, source: str, inputs: dict[str, object], ptau: Path, *,
                  cache: Path | None = None, contribute: bool = True) -> Circuit:
    """Compile (circom2 ``--prime bls12381``), compute the witness, and make keys with snarkjs.

    Keys: ``groth16 setup`` and, with ``contribute``, one ``zkey contribute`` (so delta is
    not the generator, as in any real key).  Cached under ``cache/name`` keyed by the
    source, the inputs, the ptau and the tool versions.
    """
    folder = (cache or CACHE / "circom") / name
    key = json.dumps({"source": source, "inputs": inputs, "ptau": str(ptau), "contribute": contribute,
                      "tools": TOOLS}, sort_keys=True)
    c = Circuit(folder=folder, r1cs=folder / "main.r1cs", wasm=folder / "main_js" / "main.wasm",
                wtns=folder / "main.wtns", zkey=folder / "main.zkey", vk_json=folder / "verification_key.json")
    if _stamped(folder, key):
        return c
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    (folder / "main.circom").write_text(source)
    for fixture in FIXTURES.glob("*.circom"):  # circom2 (WASI) resolves includes next to the main file
        if f'include "{fixture.name}"' in source:
            shutil.copy(fixture, folder / fixture.name)
    # circom2 runs under WASI with the working folder pre-opened: relative paths only.
    run([str(bin_dir() / "circom2"), "main.circom", "--prime", "bls12381", "--r1cs", "--wasm", "-o", "."],
        timeout=7200, cwd=folder)
    (folder / "input.json").write_text(json.dumps(inputs))
    snarkjs("wtns", "calculate", str(c.wasm), str(folder / "input.json"), str(c.wtns))
    z0 = folder / "setup.zkey"
    snarkjs("groth16", "setup", str(c.r1cs), str(ptau), str(z0 if contribute else c.zkey))
    if contribute:
        snarkjs("zkey", "contribute", str(z0), str(c.zkey), "--name=teeprover bench", "-e=insecure bench entropy")
        z0.unlink()
    snarkjs("zkey", "export", "verificationkey", str(c.zkey), str(c.vk_json))
    _stamp(folder, key)
    return c


__all__ = ["Circuit", "ToolError", "build_circuit", "squaring_chain_source", "snarkjs_ptau", "dev_ptau",
           "smallest_ptau", "snarkjs", "snarkjs_cmd", "snarkjs_verify", "run", "bin_dir", "CACHE", "FIXTURES"]
