"""``make bench-midnight``: Midnight's real circuits — the corpus table and whole REST requests for wallets.

Two parts, each optional:

``--corpus``
    Every circuit of ``tests/fixtures/midnight/`` (midnight-ledger's 24 ``zkir-precompiles`` and the
    ``zswap/static``/``dust`` built-ins): R1CS constraints, k, compile time, and key set-up time from the
    development parameters (keys cached under ``.cache/bench/midnight/``).  Circuits with a real preimage
    (the ledger-v8 wallet captures: zswap output, zswap spend, dust spend) are also proved (in-process
    library prover, median of ``--runs``, each proof verified).  No preimage exists for the other contract
    circuits (they come from Midnight's test contracts, not from a wallet), so for them the table gives the
    time of a proof with the same k and key size, marked ``≈``: a Groth16 proof's cost is set by the key
    (its domain and point counts), not by the witness values.

``--rest``
    A real stack (``serve all``: Envoy, prover, attestor, params) with the zswap built-in keys; once the
    keys are warm, ``--runs`` whole ``POST /prove`` requests per circuit with only the wallet's preimage
    (``ProveRequest(preimage)``): wall time per request (median, min, max), every proof verified with the
    key's verifying key, and the peak RSS (VmHWM) of the prover service and each worker process.

    python -m bench.midnight [--corpus] [--rest] [--runs 3] [--update-docs]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO / "tests" / "fixtures" / "midnight"
CACHE = REPO / ".cache" / "bench" / "midnight"
RESULTS = Path(__file__).resolve().parent / "results"
DOCS = REPO / "docs" / "zkir.md"
REST_DOCS = REPO / "docs" / "benchmarks.md"
# Which corpus file each wallet capture proves against.
WALLET_CIRCUITS = {"zswap/static/output.zkir": "midnight/zswap/output",
                   "zswap/static/spend.zkir": "midnight/zswap/spend",
                   "ledger/static/dust/spend.zkir": "midnight/dust/spend"}


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _loadavg() -> float:
    return os.getloadavg()[0]


# ------------------------------------------------------------------------------------------ corpus

def zkir_k(circuit_bytes: bytes) -> int:
    from teeprover import zkir

    return zkir.circuit_k(zkir.load_circuit(circuit_bytes))


def _keys_for(path: Path, circuit_bytes: bytes, cache: Path) -> tuple[Path, float | None]:
    """Key directory for a corpus circuit (set up once); the set-up time when it ran now."""
    from teeprover.keysetup import ensure_keys
    from teeprover.params.dev import generate_dev, have_dev_params

    target = CACHE / "keys" / path.relative_to(CORPUS).with_suffix("")
    record = target / "key.json"
    k = zkir_k(circuit_bytes)
    if not have_dev_params(k, cache):  # outside the timed set-up
        log(f"  generating INSECURE dev parameters for k={k} ...")
        generate_dev(k, cache)
    t0 = time.perf_counter()
    if not ensure_keys(circuit_bytes, target, cache=cache):
        return target, json.loads(record.read_text()).get("bench_setup_s")
    seconds = time.perf_counter() - t0
    meta = json.loads(record.read_text())
    meta["bench_setup_s"] = seconds
    record.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return target, seconds


def _prove_times(keys: Path, location: str, runs: int) -> list[float]:
    from teeprover import zkir
    from teeprover.keystore import KeyStore
    from teeprover.proving import Prover
    from tests.support.midnight_wallet import read_wallet_preimages

    wallet = read_wallet_preimages()[location]
    preimage = zkir.ProofPreimage.from_midnight(wallet.preimage)
    # Prove against this bench's key directory: a store rooted so that the wallet's key location resolves to it.
    with tempfile.TemporaryDirectory() as tmp:
        link = Path(tmp) / location
        link.parent.mkdir(parents=True)
        link.symlink_to(keys)
        prover = Prover(KeyStore(Path(tmp)))
        times = []
        for _ in range(runs):
            t0 = time.perf_counter()
            prover.prove(zkir.ProveRequest(preimage, None, wallet.overwrite_binding_input))  # verified inside
            times.append(time.perf_counter() - t0)
    return times


def corpus(runs: int, cache: Path) -> list[dict[str, Any]]:
    from teeprover import zkir

    rows = []
    for path in sorted(CORPUS.rglob("*.zkir")):
        name = str(path.relative_to(CORPUS))
        data = path.read_bytes()
        t0 = time.perf_counter()
        compiled = zkir.compile_circuit(zkir.load_circuit(data))
        compile_s = time.perf_counter() - t0
        log(f"{name}: {compiled.r1cs.num_constraints:,} constraints, k={compiled.k} (compiled in {compile_s:.1f} s)")
        keys, setup_s = _keys_for(path, data, cache)
        row: dict[str, Any] = {"circuit": name, "constraints": compiled.r1cs.num_constraints, "k": compiled.k,
                               "compile_s": compile_s, "setup_s": setup_s, "loadavg": _loadavg()}
        if name in WALLET_CIRCUITS:
            times = _prove_times(keys, WALLET_CIRCUITS[name], runs)
            row["prove_s"] = statistics.median(times)
            row["prove_measured"] = True
            log(f"  proved {runs}x: median {row['prove_s']:.2f} s")
        rows.append(row)
    # Circuits without a preimage: the measured time of a wallet circuit with the same k (≈).
    by_k = {r["k"]: r["prove_s"] for r in rows if r.get("prove_measured")}
    for r in rows:
        if not r.get("prove_measured") and r["k"] in by_k:
            r["prove_s"] = by_k[r["k"]]
    return rows


def corpus_markdown(rows: list[dict[str, Any]]) -> str:
    out = ["| circuit | constraints | k | compile | key set-up | prove |", "|---|---|---|---|---|---|"]
    for r in rows:
        setup = f"{r['setup_s']:.1f} s" if r.get("setup_s") is not None else "cached"
        if r.get("prove_measured"):
            prove = f"**{r['prove_s']:.2f} s**"
        elif "prove_s" in r:
            prove = f"≈ {r['prove_s']:.1f} s"
        else:
            prove = "— (no preimage; see k)"
        out.append(f"| `{r['circuit']}` | {r['constraints']:,} | {r['k']} | {r['compile_s']:.1f} s | {setup} "
                   f"| {prove} |")
    return "\n".join(out) + "\n"


# ------------------------------------------------------------------------------------------ REST

def _vmhwm_mib(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def rest(runs: int) -> list[dict[str, Any]]:
    import httpx

    from teeprover import zkir
    from teeprover.groth16 import encoding
    from teeprover.groth16.verify import verify
    from teeprover.keystore import read_key_dir
    from tests.support.midnight_wallet import read_wallet_preimages
    from tests.support.ops import descendants, prover_pid
    from tests.support.stack import SHARED_CACHE, running_stack

    locations = ["midnight/zswap/output", "midnight/zswap/spend"]
    keys = SHARED_CACHE / "keys"  # the test stacks' key store: built-in keys set up once for both
    rows = []
    with tempfile.TemporaryDirectory() as tmp, running_stack(
            Path(tmp), TEEPROVER_BUILTIN_KEYS=",".join(locations), TEEPROVER_KEYS_DIR=str(keys),
            TEEPROVER_NUM_WORKERS="1", TEEPROVER_JOB_TIMEOUT="900") as stack, \
            httpx.Client(base_url=stack.url, timeout=900) as http:
        log(f"waiting for the built-in keys (set up once, kept in {keys}) ...")
        deadline = time.monotonic() + 3 * 3600
        while time.monotonic() < deadline:
            states = http.get("/ready").json().get("builtin_keys", {})
            if all(states.get(loc) == "ready" for loc in locations):
                break
            if any(states.get(loc) == "failed" for loc in locations):
                raise SystemExit(f"built-in key set-up failed: {states}")
            time.sleep(5)
        wallets = read_wallet_preimages()
        for loc in locations:
            request = zkir.ProveRequest(zkir.ProofPreimage.from_midnight(wallets[loc].preimage), None,
                                        wallets[loc].overwrite_binding_input)
            key_files = read_key_dir(keys / loc, loc)
            vk = encoding.decode_verifying_key(key_files.verifier_key)
            compiled = zkir.compile_circuit(zkir.load_circuit(key_files.circuit))
            public = zkir.generate_witness(compiled, request.effective_preimage())[1]
            body = request.to_cbor()
            headers = {"x-api-key": stack.api_key or "", "content-type": "application/cbor"}
            warm = http.post("/prove", content=body, headers=headers)  # loads the key into the worker
            warm.raise_for_status()
            times, loads = [], []
            for _ in range(runs):
                t0 = time.perf_counter()
                reply = http.post("/prove", content=body, headers=headers)
                times.append(time.perf_counter() - t0)
                loads.append(_loadavg())
                reply.raise_for_status()
                assert verify(vk, public, encoding.decode_proof(reply.content)), "a proof did not verify"
            prover = prover_pid(stack)
            rss = {"prover": _vmhwm_mib(prover) or 0,
                   "worker": max((_vmhwm_mib(p) or 0 for p in descendants(prover)), default=0)}
            row = {"circuit": loc, "k": compiled.k, "constraints": compiled.r1cs.num_constraints,
                   "median_s": statistics.median(times), "min_s": min(times), "max_s": max(times), "runs": runs,
                   "verified": runs, "rss_mib": rss, "loadavg": [min(loads), max(loads)]}
            log(f"{loc}: median {row['median_s']:.2f} s over {runs} (k={compiled.k}), RSS {rss}")
            rows.append(row)
    return rows


def rest_markdown(rows: list[dict[str, Any]]) -> str:
    out = ["| built-in key | k | constraints | whole REST request (median, min–max) | proofs verified "
           "| peak RSS prover / worker | load avg (1 min) |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        out.append(f"| `{r['circuit']}` | {r['k']} | {r['constraints']:,} | **{r['median_s']:.2f} s** "
                   f"({r['min_s']:.2f}–{r['max_s']:.2f}) | {r['verified']}/{r['runs']} "
                   f"| {r['rss_mib']['prover']:.0f} / {r['rss_mib']['worker']:.0f} MiB "
                   f"| {r['loadavg'][0]:.1f}–{r['loadavg'][1]:.1f} |")
    return "\n".join(out) + "\n"


def _update(doc: Path, tag: str, text: str) -> None:
    from bench.run import replace_marked

    if not replace_marked(doc, tag, text):
        log(f"{doc}: no <!-- {tag}:begin --> … <!-- {tag}:end --> markers; not updated")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.midnight", description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", action="store_true", help="the corpus table (constraints, k, set-up, prove)")
    ap.add_argument("--rest", action="store_true", help="whole REST requests for the zswap built-ins")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--update-docs", action="store_true", help="rewrite the tables in docs/zkir.md, benchmarks.md")
    args = ap.parse_args(argv)
    if not (args.corpus or args.rest):
        args.corpus = args.rest = True
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    RESULTS.mkdir(parents=True, exist_ok=True)
    # The same development parameters as the test stacks (one generation per k for both).
    from tests.support.stack import SHARED_CACHE

    cache = SHARED_CACHE
    result: dict[str, Any] = {"timestamp": stamp, "cpus": os.cpu_count(), "runs": args.runs}
    note = (f"Run `{stamp}` on {os.cpu_count()} CPUs (`python -m bench.midnight"
            f"{' --corpus' if args.corpus else ''}{' --rest' if args.rest else ''} --runs {args.runs}`); "
            "INSECURE development parameters; times are wall clock on a shared machine, load in the table.\n\n")
    if args.corpus:
        rows = corpus(args.runs, cache)
        result["corpus"] = rows
        table = corpus_markdown(rows)
        print(table)
        if args.update_docs:
            _update(DOCS, "corpus", note + table)
    if args.rest:
        rows = rest(args.runs)
        result["rest"] = rows
        table = rest_markdown(rows)
        print(table)
        if args.update_docs:
            _update(REST_DOCS, "midnight-rest", note + table)
    (RESULTS / f"midnight-{stamp}.json").write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
