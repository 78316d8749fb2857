"""``make bench``: our whole-process prover against ``snarkjs groth16 prove`` on the same circom circuit.

Circuit: the squaring chain ``s[i+1] = s[i]*s[i] + i`` (``tests/fixtures/circom/squaring_chain.circom``)
with ``x`` public and ``out`` a public output, ``N = 2^k - 3`` steps, so that
constraints + public + 1 = 2^k.  For each k: compile once and make keys once
(``snarkjs groth16 setup`` + ``zkey contribute``, cached under ``.cache/bench/``),
then alternate ``runs`` runs of each prover (whole process: start-up, imports,
reading the files, proving, writing the JSON), report the median wall time and
the peak RSS of that process alone (``bench._rss.measure``: through a small launcher, so the
bench's own memory is not counted), and check every proof of ours
with ``snarkjs groth16 verify``.  The "MSM floor" is the time of the five MSMs a
proof needs (A, B1, B2 in G2, C, H), measured in this process with the same curve
library on the loaded key, run concurrently on all cores (the library releases the
GIL); the JSON also has them one after another.  Median of ``runs``.

The universal parameters are our insecure development ``.ptau`` (power 16, or k for
``--large``): ``snarkjs powersoftau prepare phase2`` takes ~1 h at power 16.
Keys made from them are as big and as slow to use as ceremony keys.

    python -m bench.run [--ks 10,12,14,16] [--large] [--runs 3] [--ptau FILE] [--no-plot] [--update-docs]

Writes ``bench/results/<timestamp>.json``, ``.md`` and ``.png`` (the plot needs
matplotlib; without it the plot is skipped with a note).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench import _circom
from bench._rss import measure

RESULTS = Path(__file__).resolve().parent / "results"
DOCS = _circom.REPO / "docs" / "benchmarks.md"
DEFAULT_KS = (10, 12, 14, 16)
LARGE_KS = (18, 20)
N_PUBLIC = 2  # x and out


def our_prover_argv(c: _circom.Circuit, out: Path) -> list[str]:
    """The whole-process command for our prover: the real ``teeprover prove`` CLI."""
    return [sys.executable, "-m", "teeprover.cli", "prove", "--r1cs", str(c.r1cs), "--wtns", str(c.wtns),
            "--zkey", str(c.zkey), "-o", str(out / "proof.cbor"), "--snarkjs", str(out)]


def snarkjs_argv(c: _circom.Circuit, out: Path) -> list[str]:
    return _circom.snarkjs_cmd("groth16", "prove", str(c.zkey), str(c.wtns),
                               str(out / "proof.json"), str(out / "public.json"))


def msm_floor(c: _circom.Circuit, runs: int) -> tuple[float, float, float]:
    """In this process, on the loaded key: (zkey load s, five MSMs one after another s, the same five on
    ``os.cpu_count()`` threads s — the curve library's MSM releases the GIL), medians of ``runs``."""
    import secrets
    from concurrent.futures import ThreadPoolExecutor

    from teeprover import curve
    from teeprover.snarkjs.zkey import read_zkey

    t0 = time.perf_counter()
    pk = read_zkey(c.zkey)
    load = time.perf_counter() - t0
    a, b1, b2, cq, h = (list(q) for q in (pk.a_query, pk.b_g1_query, pk.b_g2_query, pk.c_query, pk.h_query))
    z = curve.msm_scalars([secrets.randbelow(curve.R) for _ in range(pk.num_variables)])
    zc = z[pk.num_public + 1:]
    hs = curve.msm_scalars([secrets.randbelow(curve.R) for _ in range(pk.domain_size)])
    jobs: list[tuple[Callable[..., Any], list[Any], list[Any]]] = [
        (curve.msm_g2, b2, z), (curve.msm_g1, h, hs), (curve.msm_g1, a, z), (curve.msm_g1, b1, z),
        (curve.msm_g1, cq, zc)]
    seq, par = [], []
    with ThreadPoolExecutor(os.cpu_count() or 1) as pool:
        for _ in range(runs):
            t0 = time.perf_counter()
            for f, pts, sc in jobs:
                f(pts, sc)
            seq.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            list(pool.map(lambda j: j[0](j[1], j[2]), jobs))
            par.append(time.perf_counter() - t0)
    return load, statistics.median(seq), statistics.median(par)


def build(k: int, ptau: Path | None = None) -> tuple[_circom.Circuit, float | None]:
    steps = (1 << k) - N_PUBLIC - 1
    ptau = ptau or _circom.dev_ptau(max(16, k))
    cache = _circom.CACHE / "bench" / "circuits"
    t0 = time.perf_counter()
    stamp = cache / f"chain_k{k}" / "done"
    fresh = not stamp.exists()
    c = _circom.build_circuit(f"chain_k{k}", _circom.squaring_chain_source(steps), {"x": "3"}, ptau, cache=cache)
    return c, (time.perf_counter() - t0) if fresh else None


def bench_k(k: int, runs: int, log: Callable[[str], None], ptau: Path | None = None) -> dict[str, Any]:
    c, build_s = build(k, ptau)
    from teeprover.snarkjs.r1cs import read_r1cs

    r1cs = read_r1cs(c.r1cs)
    if r1cs.domain_size() != 1 << k or r1cs.num_constraints + r1cs.num_public + 1 != 1 << k:
        raise RuntimeError(f"k={k}: circuit has {r1cs.num_constraints} constraints, {r1cs.num_public} public")
    out = c.folder / "runs"
    snark, ours = [], []
    loads: list[float] = []  # 1-minute load average before each measurement (other test suites share the cores)
    for i in range(runs):
        d = out / f"snarkjs{i}"
        d.mkdir(parents=True, exist_ok=True)
        loads.append(os.getloadavg()[0])
        snark.append(measure(snarkjs_argv(c, d)))
        d = out / f"ours{i}"
        d.mkdir(parents=True, exist_ok=True)
        loads.append(os.getloadavg()[0])
        ours.append(measure(our_prover_argv(c, d)))
        if not _circom.snarkjs_verify(d / "verification_key.json", d / "public.json", d / "proof.json"):
            raise RuntimeError(f"k={k}: snarkjs rejects our proof (run {i})")
        theirs = out / f"snarkjs{i}"
        if not _circom.snarkjs_verify(c.vk_json, theirs / "public.json", theirs / "proof.json"):
            raise RuntimeError(f"k={k}: snarkjs rejects its own proof (run {i})")
        log(f"  k={k} run {i}: snarkjs {snark[-1].wall_s:.2f}s, ours {ours[-1].wall_s:.2f}s (verified; "
            f"load {loads[-2]:.2f} / {loads[-1]:.2f})")
    load_s, msm_seq_s, floor_s = msm_floor(c, runs)
    med = statistics.median
    row: dict[str, Any] = {
        "k": k, "constraints": r1cs.num_constraints, "public": r1cs.num_public, "variables": r1cs.num_variables,
        "build_s": build_s,
        "snarkjs": {"runs": [asdict(r) for r in snark], "median_s": med(r.wall_s for r in snark),
                    "rss_mib": max(r.rss_mib for r in snark), "cpu_per_wall": med(r.cpu_s / r.wall_s for r in snark)},
        "ours": {"runs": [asdict(r) for r in ours], "median_s": med(r.wall_s for r in ours),
                 "rss_mib": max(r.rss_mib for r in ours), "cpu_per_wall": med(r.cpu_s / r.wall_s for r in ours)},
        "zkey_load_s": load_s, "msm_sequential_s": msm_seq_s, "msm_floor_s": floor_s, "verified_by_snarkjs": runs,
        "loadavg_1min": {"before_each_run": loads, "min": min(loads), "max": max(loads)},
    }
    row["ratio"] = row["ours"]["median_s"] / row["snarkjs"]["median_s"]
    return row


def markdown(rows: list[dict[str, Any]], runs: int) -> str:
    head = ("| k | constraints | snarkjs prove | snarkjs RSS | ours (whole process) | ours RSS | snarkjs / ours "
            "| zkey load (ours, in-process) | MSM floor | ours above floor | load avg (1 min) "
            "| our proofs verified by snarkjs |\n"
            "|---|---|---|---|---|---|---|---|---|---|---|---|\n")
    lines = []
    for r in rows:
        ours, floor = r["ours"]["median_s"], r["msm_floor_s"]
        load = r.get("loadavg_1min", {})
        lines.append(
            f"| {r['k']} | {r['constraints']:,} | {r['snarkjs']['median_s']:.2f} s | {r['snarkjs']['rss_mib']:.0f} MiB "
            f"| {ours:.2f} s | {r['ours']['rss_mib']:.0f} MiB | {1 / r['ratio']:.2f}x "
            f"| {r['zkey_load_s']:.2f} s | {floor:.2f} s | {ours - floor:+.2f} s ({100 * (ours - floor) / ours:.0f}%) "
            f"| {load.get('min', float('nan')):.2f}-{load.get('max', float('nan')):.2f} "
            f"| {r['verified_by_snarkjs']}/{runs} |")
    return head + "\n".join(lines) + "\n"


def plot(rows: list[dict[str, Any]], path: Path) -> str | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed: plot skipped (pip install matplotlib==3.11.2)"
    ks = [r["k"] for r in rows]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(ks, [r["snarkjs"]["median_s"] for r in rows], "o-", label="snarkjs 0.7.6 groth16 prove")
    ax.plot(ks, [r["ours"]["median_s"] for r in rows], "s-", label="teeprover (whole process)")
    ax.plot(ks, [r["msm_floor_s"] for r in rows], "^--", label="MSM floor (in-process)")
    ax.set_yscale("log")
    ax.set_xlabel("k (domain size 2^k)")
    ax.set_ylabel("seconds (median)")
    ax.set_xticks(ks)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    ax.set_title("Groth16 BLS12-381 prove time, squaring chain")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return None


def replace_marked(doc: Path, tag: str, text: str) -> bool:
    """Replace what stands between ``<!-- tag:begin -->`` and ``<!-- tag:end -->`` in ``doc``; False without them."""
    begin, end = f"<!-- {tag}:begin -->", f"<!-- {tag}:end -->"
    content = doc.read_text() if doc.exists() else ""
    if begin not in content or end not in content:
        return False
    pre, rest = content.split(begin, 1)
    _, post = rest.split(end, 1)
    doc.write_text(f"{pre}{begin}\n{text}{end}{post}")
    return True


def update_docs(table: str, meta: str) -> None:
    replace_marked(DOCS, "bench", f"{meta}\n\n{table}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n\n")[0])
    ap.add_argument("--ks", default=",".join(map(str, DEFAULT_KS)), help="comma-separated k values")
    ap.add_argument("--large", action="store_true", help="also k = 18 and 20 (hours of one-time setup)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--ptau", type=Path, help="a prepared phase-2 .ptau to use instead of the dev one")
    ap.add_argument("--no-plot", action="store_true")
    ap.add_argument("--update-docs", action="store_true", help="rewrite the table in docs/benchmarks.md")
    args = ap.parse_args(argv)
    ks = sorted({int(x) for x in args.ks.split(",") if x} | (set(LARGE_KS) if args.large else set()))

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    rows = []
    for k in ks:
        log(f"k={k}: compile + setup (cached) ...")
        rows.append(bench_k(k, args.runs, log, args.ptau))
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    RESULTS.mkdir(parents=True, exist_ok=True)
    node = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
    meta = {"timestamp": stamp, "cpus": os.cpu_count(), "machine": platform.machine(),
            "python": platform.python_version(), "node": node, "tools": _circom.TOOLS, "runs": args.runs,
            "our_prover": "teeprover prove --r1cs --wtns --zkey (whole process, bench.run.our_prover_argv)",
            "command": " ".join(["python -m bench.run", *(sys.argv[1:] if argv is None else argv)])}
    (RESULTS / f"{stamp}.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    table = markdown(rows, args.runs)
    (RESULTS / f"{stamp}.md").write_text(table)
    print(table)
    if not args.no_plot:
        note = plot(rows, RESULTS / f"{stamp}.png")
        log(note or f"plot: {RESULTS / f'{stamp}.png'}")
    if args.update_docs:
        update_docs(table, f"Latest run: `{stamp}`, {meta['cpus']} CPUs, Python {meta['python']}, "
                           f"node {node}, {_circom.TOOLS}, median of {args.runs}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
