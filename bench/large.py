"""Large-k benchmark without circom: ``python -m bench.large --k 20``.

circom2 (the npm WASM build of circom) needs more than 20 minutes to compile the 2^20-constraint
squaring chain, and ``snarkjs groth16 setup`` as long again, so ``bench.run --large`` is impractical
at k = 20.  This builds the *same* circuit (``s[i+1] = s[i]^2 + i``, ``x`` and ``out`` public,
constraints + public + 1 = 2^k) with our own writers instead: the R1CS and witness in Python,
``.r1cs`` / ``.wtns`` in circom's binary format, the proving key with our setup from the dev
``.ptau`` of ``bench._circom.dev_ptau`` (the one ``bench.run --large`` uses), written as a snarkjs
``.zkey``.  Then, like ``bench.run`` (alternating, whole processes, each one's own peak RSS: ``bench._rss``):

* ours: ``teeprover prove --r1cs --wtns --zkey`` (the real CLI, same command as ``bench.run``);
* snarkjs: ``snarkjs groth16 prove`` on the same files (skip with ``--no-snarkjs``);

and every proof is checked with ``snarkjs groth16 verify``.  Prints one markdown row and writes
``bench/results/<timestamp>-large-k<k>.json``.  Files are cached under ``.cache/bench/large/``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench import _circom
from bench._rss import Run, measure
from bench.run import RESULTS, our_prover_argv, snarkjs_argv


def _cpu() -> float:
    """CPU seconds of this process (every thread) and its finished children: with the load, what lets a
    figure from a busy machine be compared (on two idle cores, wall ~ CPU / 2 where the work is parallel)."""
    ch = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + ch.ru_utime + ch.ru_stime


def build(k: int) -> _circom.Circuit:
    """The squaring chain at 2^k, its witness and keys, as snarkjs files (cached; ``done`` stamp last).

    Setup works on byte arrays (``Ptau.lagrange_xy``, ``setup_xy``, ``write_zkey_xy``: no point object),
    so k=22 fits in memory; the R1CS and witness files are written first, and the R1CS objects are
    dropped before the key is written."""
    from teeprover.groth16.setup import random_toxic_waste, setup_xy
    from teeprover.snarkjs.export import verification_key_json
    from teeprover.snarkjs.ptau import read_ptau
    from teeprover.snarkjs.r1cs import r1cs_to_bytes
    from teeprover.snarkjs.wtns import wtns_to_bytes
    from teeprover.snarkjs.zkey import write_zkey_xy
    from tests.support.circuits import squaring_chain

    folder = _circom.CACHE / "bench" / "large" / f"chain_k{k}"
    c = _circom.Circuit(folder=folder, r1cs=folder / "main.r1cs", wasm=folder / "none.wasm",
                        wtns=folder / "main.wtns", zkey=folder / "main.zkey", vk_json=folder / "verification_key.json")
    if (folder / "done").exists():
        return c
    folder.mkdir(parents=True, exist_ok=True)
    times: dict[str, float | None] = {"ptau_s": None}
    ptau_path = _circom.cached_ptau(k)
    if ptau_path is None:  # generated here, and timed: one of the figures this bench reports
        t0, c0 = time.perf_counter(), _cpu()
        ptau_path = _circom.dev_ptau(k)
        times["ptau_s"], times["ptau_cpu_s"] = time.perf_counter() - t0, _cpu() - c0
        print(f"  dev ptau power {k}: {times['ptau_s']:.0f} s", flush=True)
    t0, c0 = time.perf_counter(), _cpu()
    r1cs, z = squaring_chain((1 << k) - 4)  # steps + 1 (out) constraints + 2 public + 1 = 2^k
    assert r1cs.domain_size() == 1 << k
    times["circuit_s"], times["circuit_cpu_s"] = time.perf_counter() - t0, _cpu() - c0
    t0, c0 = time.perf_counter(), _cpu()
    c.r1cs.write_bytes(r1cs_to_bytes(r1cs))
    c.wtns.write_bytes(wtns_to_bytes(z))
    del z
    write_s, write_cpu = time.perf_counter() - t0, _cpu() - c0
    t0, c0 = time.perf_counter(), _cpu()
    params = read_ptau(ptau_path).lagrange_xy(1 << k)
    times["read_ptau_s"], times["read_ptau_cpu_s"] = time.perf_counter() - t0, _cpu() - c0
    t0, c0 = time.perf_counter(), _cpu()
    key = setup_xy(r1cs, params, random_toxic_waste())
    times["setup_s"], times["setup_cpu_s"] = time.perf_counter() - t0, _cpu() - c0
    del params, r1cs
    t0, c0 = time.perf_counter(), _cpu()
    write_zkey_xy(c.zkey, key)
    c.vk_json.write_text(verification_key_json(key.verifying_key()))
    times["write_s"], times["write_cpu_s"] = write_s + time.perf_counter() - t0, write_cpu + _cpu() - c0
    times["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"  k={k}: read ptau {times['read_ptau_s']:.0f} s, setup {times['setup_s']:.0f} s "
          f"({times['setup_cpu_s']:.0f} CPU-s), write files {times['write_s']:.0f} s, "
          f"peak RSS {times['peak_rss_mib']:.0f} MiB", flush=True)
    (folder / "build.json").write_text(json.dumps({"k": k, "ptau": str(ptau_path), **times,
                                                   "loadavg_1min": os.getloadavg()[0]}, indent=1) + "\n")
    (folder / "done").write_text(f"squaring chain k={k}, dev ptau\n")
    return c


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--k", type=int, default=20)
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--no-snarkjs", action="store_true", help="measure only our prover")
    ap.add_argument("--baseline", type=Path, metavar="DIR",
                    help="also run `teeprover prove` from another revision's tree (DIR holds its teeprover/ "
                         "package, native helper built), alternating with ours: a before/after in one run")
    ap.add_argument("--build-only", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.build_only:
        build(args.k)
        return 0
    # Built in a child, so this process stays small while it measures.
    subprocess.run([sys.executable, "-m", "bench.large", "--k", str(args.k), "--build-only"], check=True)
    c = build(args.k)
    build_times = json.loads((c.folder / "build.json").read_text()) if (c.folder / "build.json").exists() else {}
    out = _circom.CACHE / "bench" / "large" / f"chain_k{args.k}" / "runs"
    ours: list[Run] = []
    theirs: list[Run] = []
    base: list[Run] = []
    loads: list[float] = []  # before each measurement: other engineers' suites share the two cores
    for i in range(args.runs):
        if not args.no_snarkjs:
            loads.append(os.getloadavg()[0])
            d = out / f"snarkjs{i}"
            d.mkdir(parents=True, exist_ok=True)
            theirs.append(measure(snarkjs_argv(c, d)))
            if not _circom.snarkjs_verify(c.vk_json, d / "public.json", d / "proof.json"):
                raise SystemExit("snarkjs's own proof does not verify")
        if args.baseline is not None:
            d = out / f"baseline{i}"
            d.mkdir(parents=True, exist_ok=True)
            loads.append(os.getloadavg()[0])
            # Run from DIR: ``python -m`` puts the working directory ahead of PYTHONPATH.
            base.append(measure(our_prover_argv(c, d), env={**os.environ, "PYTHONPATH": str(args.baseline)},
                                cwd=args.baseline))
            if not _circom.snarkjs_verify(d / "verification_key.json", d / "public.json", d / "proof.json"):
                raise SystemExit("the baseline's proof does not pass snarkjs groth16 verify")
            r = base[-1]
            print(f"  run {i}: baseline {r.wall_s:.1f} s, {r.cpu_s:.0f} CPU-s, {r.rss_mib:.0f} MiB", flush=True)
        d = out / f"ours{i}"
        d.mkdir(parents=True, exist_ok=True)
        loads.append(os.getloadavg()[0])
        ours.append(measure(our_prover_argv(c, d)))
        if not _circom.snarkjs_verify(d / "verification_key.json", d / "public.json", d / "proof.json"):
            raise SystemExit("our proof does not pass snarkjs groth16 verify")
        print(f"  run {i}: ours {ours[-1].wall_s:.1f} s, {ours[-1].cpu_s:.0f} CPU-s, {ours[-1].rss_mib:.0f} MiB"
              + (f"; snarkjs {theirs[-1].wall_s:.1f} s, {theirs[-1].rss_mib:.0f} MiB" if theirs else ""), flush=True)
    row = {"k": args.k, "constraints": (1 << args.k) - 3,
           "ours_s": statistics.median(r.wall_s for r in ours), "ours_rss_mib": max(r.rss_mib for r in ours),
           "ours_cpu_s": statistics.median(r.cpu_s for r in ours),
           "snarkjs_s": statistics.median(r.wall_s for r in theirs) if theirs else None,
           "snarkjs_rss_mib": max(r.rss_mib for r in theirs) if theirs else None,
           "runs": args.runs, "cpus": os.cpu_count(), "verified_by_snarkjs": f"{len(ours)}/{len(ours)}",
           "loadavg_1min": loads, "build": build_times,
           "baseline": {"tree": str(args.baseline), "runs": [vars(r) for r in base]} if base else None}
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    (RESULTS / f"{stamp}-large-k{args.k}.json").write_text(json.dumps(row, indent=2) + "\n")
    ratio = f"{row['snarkjs_s'] / row['ours_s']:.2f}x" if theirs else "—"
    snark = f"{row['snarkjs_s']:.1f} s | {row['snarkjs_rss_mib']:.0f} MiB" if theirs else "— | —"
    print("| k | constraints | snarkjs prove | snarkjs RSS | ours (whole process) | ours RSS | snarkjs / ours |")
    print(f"| {args.k} | {row['constraints']:,} | {snark} | {row['ours_s']:.1f} s | {row['ours_rss_mib']:.0f} MiB "
          f"| {ratio} |")
    if build_times:
        def cpu(key: str) -> str:
            return f" ({build_times[key]:.0f} CPU-s)" if build_times.get(key) is not None else ""

        ptau_s = build_times.get("ptau_s")
        print(f"dev ptau power {args.k}: " + (f"{ptau_s:.0f} s{cpu('ptau_cpu_s')}" if ptau_s is not None
                                             else "cached (not timed)")
              + f"; read ptau {build_times['read_ptau_s']:.0f} s; setup {build_times['setup_s']:.0f} s"
              + f"{cpu('setup_cpu_s')}; write files {build_times['write_s']:.0f} s "
              f"(load {build_times['loadavg_1min']:.2f})")
    if base:
        b = statistics.median(r.wall_s for r in base)
        print(f"baseline ({args.baseline}): {b:.1f} s, {statistics.median(r.cpu_s for r in base):.0f} CPU-s, "
              f"{max(r.rss_mib for r in base):.0f} MiB; ours / baseline time {row['ours_s'] / b:.2f}")
    print(f"load average (1 min) before each run: {', '.join(f'{x:.2f}' for x in loads)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
