"""Coverage-guided fuzzing (atheris, libFuzzer for Python) of the CBOR, ZKIR and preimage decoders.

    python -m tests.fuzz.atheris_run [--runs N] [--target NAME ...] [--list]   (``make fuzz-atheris``)

The hypothesis harness (``run_all``) draws inputs blind; libFuzzer keeps every input that reaches
new code (edges and comparisons of the instrumented ``teeprover`` bytecode) and mutates those.
Each target runs in its own child process (``--child NAME``) that instruments ``teeprover`` on
import, seeds its corpus with the target's valid inputs (``targets.py``) and runs ``N`` inputs
under libFuzzer's limits (``-timeout`` per input, ``-rss_limit_mb``).  The law is the one of
``_harness``: a decoder returns or raises a ``TeeProverError``; any other exception, a hang or
a memory blow-up is a crash, saved by libFuzzer as ``crash-*`` / ``timeout-*`` / ``oom-*`` in
``--artifacts``.  Exit status 1 when a target crashed.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
TIMEOUT_S = 10  # per input, as the hypothesis harness's watchdog
RSS_LIMIT_MB = 4096

# target name → the decoder in targets.py (the same functions the hypothesis harness fuzzes)
DECODERS = {
    "preimage-cbor": "_decode_preimage_cbor",
    "preimage-any": "_decode_preimage_any",  # CBOR, JSON or Midnight's bytes, told apart by their first bytes
    "key-material-cbor": "_decode_key_material",
    "prove-request-cbor": "_decode_prove_request",
    "zkir-json": "_decode_zkir",
    "zkir-cbor": "_decode_zkir",
    "zkir-k": "_decode_zkir_and_k",
}
SEEDS = {
    "preimage-cbor": "_preimage_cbor_seeds",
    "key-material-cbor": "_key_material_seeds",
    "prove-request-cbor": "_prove_request_seeds",
    "zkir-json": "_zkir_json_seeds",
    "zkir-cbor": "_zkir_cbor_seeds",
}


def _midnight_available() -> bool:
    from teeprover.zkir import ProofPreimage

    return hasattr(ProofPreimage, "from_midnight") and hasattr(ProofPreimage, "to_midnight")


def target_names() -> list[str]:
    names = list(DECODERS)
    if _midnight_available():
        names.append("preimage-midnight")  # Midnight's own preimage codec
    return names


def _seeds(name: str) -> list[bytes]:
    from tests.fuzz import targets

    if name == "preimage-midnight":
        from teeprover.zkir import load_preimage

        pre = [load_preimage(s) for s in targets._preimage_json_seeds()]
        return [p.to_midnight() for p in pre] + [p.to_midnight(versioned=True) for p in pre]
    if name == "preimage-any":
        return _seeds("preimage-cbor") + targets._preimage_json_seeds() + (
            _seeds("preimage-midnight") if _midnight_available() else [])
    if name == "zkir-k":
        return targets._zkir_json_seeds() + targets._zkir_cbor_seeds()
    return list(getattr(targets, SEEDS[name])())


def _decoder(name: str) -> Callable[[bytes], Any]:
    from tests.fuzz import targets

    if name == "preimage-midnight":
        from teeprover.zkir import ProofPreimage

        return ProofPreimage.from_midnight  # type: ignore[attr-defined, no-any-return]
    return getattr(targets, DECODERS[name])  # type: ignore[no-any-return]


def child(name: str, runs: int, corpus: Path, artifacts: Path) -> None:
    """Fuzz one target in this process (never returns: libFuzzer exits)."""
    import atheris

    with atheris.instrument_imports(include=["teeprover"]):
        import teeprover.groth16.encoding  # noqa: F401 - instrumented before the decoders import them
        import teeprover.zkir  # noqa: F401
    from teeprover.errors import TeeProverError

    decode = _decoder(name)
    corpus.mkdir(parents=True, exist_ok=True)
    for i, seed in enumerate(_seeds(name)):
        (corpus / f"seed-{i}").write_bytes(seed)

    def one_input(data: bytes) -> None:
        try:
            decode(data)
        except TeeProverError:
            pass

    artifacts.mkdir(parents=True, exist_ok=True)
    atheris.Setup([sys.argv[0], f"-runs={runs}", f"-timeout={TIMEOUT_S}", f"-rss_limit_mb={RSS_LIMIT_MB}",
                   "-max_len=8192", f"-artifact_prefix={artifacts}/{name}-", "-print_final_stats=1", str(corpus)],
                  one_input)
    atheris.Fuzz()


def parse(output: str) -> dict[str, Any]:
    """libFuzzer's final lines → runs, seconds, edges covered, features, corpus size."""
    out: dict[str, Any] = {}
    if m := re.search(r"Done (\d+) runs in (\d+) second", output):
        out["runs"], out["seconds"] = int(m.group(1)), int(m.group(2))
    stats = re.findall(r"cov: (\d+) ft: (\d+) corp: (\d+)", output)
    if stats:
        out["edges"], out["features"], out["corpus"] = map(int, stats[-1])
    if m := re.search(r"==\d+== ERROR: libFuzzer: (.+)|=== Uncaught Python exception: ===\n(.+)", output):
        out["crash"] = (m.group(1) or m.group(2)).strip()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fuzz.atheris_run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=100_000, help="inputs per target")
    parser.add_argument("--target", action="append", help="only this target (repeatable)")
    parser.add_argument("--artifacts", type=Path, default=REPO / "build" / "fuzz-artifacts")
    parser.add_argument("--list", action="store_true")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--corpus", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child, args.runs, args.corpus, args.artifacts)
        return 0
    names = target_names()
    if args.list:
        print("\n".join(names))
        return 0
    unknown = sorted(set(args.target or ()) - set(names))
    if unknown:
        parser.error(f"unknown target(s) {unknown}; known: {', '.join(names)}")
    failures = 0
    print(f"atheris: {args.runs} inputs per target", flush=True)
    for name in [n for n in names if not args.target or n in args.target]:
        with tempfile.TemporaryDirectory(prefix=f"atheris-{name}-") as corpus:
            started = time.monotonic()
            done = subprocess.run([sys.executable, "-m", "tests.fuzz.atheris_run", "--child", name, "--runs",
                                   str(args.runs), "--corpus", corpus, "--artifacts", str(args.artifacts)],
                                  cwd=REPO, capture_output=True, text=True)
            elapsed = time.monotonic() - started
        found = parse(done.stdout + done.stderr)
        ok = done.returncode == 0 and "crash" not in found and found.get("runs") == args.runs
        failures += not ok
        print(f"  {name:20} {'ok ' if ok else 'BUG'} {elapsed:7.1f} s  {found.get('runs', '?')} runs, "
              f"{found.get('edges', '?')} edges, {found.get('features', '?')} features, "
              f"corpus {found.get('corpus', '?')}" + ("" if ok else f"  exit {done.returncode}: "
                                                      f"{found.get('crash') or (done.stderr or done.stdout)[-2000:]}"),
              flush=True)
    print(f"atheris: {failures} target(s) with bugs")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
