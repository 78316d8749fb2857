"""Groth16 engine at k = 12, 14, 16: dev ptau, setup, key encode/decode, prove, and the MSM floor.

    python bench/bench_prove.py 12 14 16            # all stages, artifacts cached in .cache/bench-engine
    python bench/bench_prove.py --process 16        # only the whole-process prove (key load + prove)

Circuit: the squaring chain ``s[i+1] = s[i]^2 + i`` (as docs/architecture.md §11 and the unit tests), sized so
that constraints + public + 1 = 2^k; the witness starts from a random x, so every value is a full
size field element.  Points come from a real dev ptau (distinct points, not repeats).

"MSM floor" = the five MSMs alone, run exactly as the prover runs them (same thread pool, same
bases and scalars); "above floor" = (prove - floor) / prove.  Each timing is the median of 3;
CPU/wall shows how many cores were busy (the machine has 2).
"""

from __future__ import annotations

import argparse
import random
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from teeprover import curve  # noqa: E402
from teeprover.curve import R  # noqa: E402
from teeprover.groth16 import encoding, prove, qap, setup, verify  # noqa: E402
from teeprover.groth16.types import ProvingKey  # noqa: E402
from teeprover.r1cs import R1CS, Constraint  # noqa: E402
from teeprover.snarkjs import ptau  # noqa: E402

WORK = REPO / ".cache" / "bench-engine"
T = TypeVar("T")


def squaring_chain(m: int, x: int) -> tuple[R1CS, list[int]]:
    cons = []
    s_var = [2] + [3 + i for i in range(m)]
    for i in range(m):
        a = s_var[i]
        cons.append(Constraint({a: 1}, {a: 1}, {s_var[i + 1]: 1, 0: (-i) % R}))
    cons.append(Constraint({s_var[-1]: 1}, {0: 1}, {1: 1}))
    z = [1, 0, x]
    s = x
    for i in range(m):
        s = (s * s + i) % R
        z.append(s)
    z[1] = s
    return R1CS(num_variables=3 + m, num_public=2, constraints=tuple(cons)), z


def circuit(k: int) -> tuple[R1CS, list[int]]:
    r1cs, z = squaring_chain((1 << k) - 4, random.Random(k).randrange(2, R))
    assert r1cs.domain_size() == 1 << k
    return r1cs, z


def timed(f: Callable[[], T], repeat: int = 3) -> tuple[float, float, T]:
    """Median wall and CPU seconds of ``repeat`` calls of ``f`` (at least one), and the last call's result."""
    walls: list[float] = []
    cpus: list[float] = []

    def once() -> T:
        t, c = time.perf_counter(), time.process_time()
        out = f()
        walls.append(time.perf_counter() - t)
        cpus.append(time.process_time() - c)
        return out

    out = once()
    for _ in range(repeat - 1):
        del out  # one result alive at a time (a decoded key at k=16 is hundreds of MiB)
        out = once()
    return statistics.median(walls), statistics.median(cpus), out


def line(name: str, wall: float, cpu: float | None = None) -> None:
    extra = f"  (cpu/wall {cpu / wall:.1f})" if cpu is not None and wall > 0 else ""
    print(f"  {name:<38} {wall:8.3f} s{extra}", flush=True)


def artifacts(k: int) -> tuple[Path, Path, Path]:
    d = WORK / f"k{k}"
    d.mkdir(parents=True, exist_ok=True)
    return d / f"dev{k}.ptau", d / "pk.cbor", d / "pk_compressed.cbor"


def msm_floor(pk: ProvingKey, z: list[int]) -> float:
    """The five MSMs as the prover schedules them (h scalars precomputed)."""
    records = qap.prepare(pk.coeffs, pk._cache)
    bases = prove._bases(pk)
    zs = curve.msm_scalars(z)
    h = curve.msm_scalars_from_bytes(curve.witness_map(*curve.fr_evaluations(records, curve.fr_vector_to_bytes(z),
                                                                              pk.domain_size)))

    def run() -> None:
        fs = prove._msm_sum(curve.msm_g2, prove._chunks(*bases.b2.scalars(zs, None), prove._WORKERS))
        fs += prove._msm_sum(curve.msm_g1, [bases.a.scalars(zs, None)])
        fs += prove._msm_sum(curve.msm_g1, [bases.b1.scalars(zs, None)])
        fs += prove._msm_sum(curve.msm_g1, [bases.c.scalars(zs, None)])
        fs += prove._msm_sum(curve.msm_g1, prove._chunks(bases.h, h, prove._WORKERS))
        for f in fs:
            f.result()

    wall, cpu, _ = timed(run)
    line("MSM floor (5 MSMs, concurrent)", wall, cpu)
    return wall


PROCESS = r"""
import sys, time
t0 = time.perf_counter()
from teeprover.groth16 import encoding, prove
from pathlib import Path
t1 = time.perf_counter()
data = Path(sys.argv[1]).read_bytes()
pk = encoding.decode_proving_key(data, check_subgroup=False)
t2 = time.perf_counter()
wb = Path(sys.argv[2]).read_bytes()
z = [int.from_bytes(wb[i:i + 32], "little") for i in range(0, len(wb), 32)]
t3 = time.perf_counter()
proof = prove.create_random_proof(pk, z)
out = encoding.encode_proof(proof)
t4 = time.perf_counter()
print(f"imports {t1 - t0:.3f} load {t2 - t1:.3f} witness {t3 - t2:.3f} prove {t4 - t3:.3f}")
"""


def whole_process(k: int) -> None:
    _, pk_path, _ = artifacts(k)
    _, z = circuit(k)
    wpath = pk_path.parent / "witness.bin"
    wpath.write_bytes(b"".join(x.to_bytes(32, "little") for x in z))
    walls, cpus = [], []
    for _ in range(3):
        t = time.perf_counter()
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        res = subprocess.run([sys.executable, "-c", PROCESS, str(pk_path), str(wpath)], capture_output=True,
                             text=True, check=True, cwd=REPO)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        walls.append(time.perf_counter() - t)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        print(f"    process: {walls[-1]:.3f} s wall, {cpus[-1]:.3f} s cpu; {res.stdout.strip()}", flush=True)
    line(f"whole process (k={k}, median)", statistics.median(walls), statistics.median(cpus))


def bench(k: int, slow: bool) -> None:
    print(f"k={k}", flush=True)
    ptau_path, pk_path, pkc_path = artifacts(k)
    if not ptau_path.exists():
        wall, _, _ = timed(lambda: ptau.generate_dev_ptau(k, ptau_path, random.Random(k)), repeat=1)
        line("generate_dev_ptau", wall)
    r1cs, z = circuit(k)
    wall, _, params = timed(lambda: ptau.read_ptau(ptau_path).lagrange_xy(1 << k), repeat=1)
    line("read ptau + lagrange params (bytes)", wall)
    wall, cpu, pk = timed(lambda: setup.setup(r1cs, params, setup.ToxicWaste(delta=0xDE17A + k)), repeat=1)
    line("setup", wall, cpu)
    wall, _, data = timed(lambda: encoding.encode_proving_key(pk), repeat=1)
    line(f"encode key (fast form, {len(data) >> 20} MiB)", wall)
    pk_path.write_bytes(data)
    wall, _, cdata = timed(lambda: encoding.encode_proving_key(pk, compressed=True), repeat=1)
    line(f"encode key (compressed, {len(cdata) >> 20} MiB)", wall)
    pkc_path.write_bytes(cdata)
    wall, _, pk = timed(lambda: encoding.decode_proving_key(data, check_subgroup=False))
    line("decode fast form, trusted", wall)
    if slow:
        wall, _, _ = timed(lambda: encoding.decode_proving_key(data), repeat=1)
        line("decode fast form, untrusted (checked)", wall)
        wall, _, _ = timed(lambda: encoding.decode_proving_key(cdata, check_subgroup=False), repeat=1)
        line("decode compressed, no subgroup check", wall)
    floor = msm_floor(pk, z)
    wall, cpu, proof = timed(lambda: prove.prove(pk, z, 12345, 67890))
    line("prove (warm key)", wall, cpu)
    print(f"  above MSM floor: {100 * (wall - floor) / wall:.0f}%", flush=True)
    assert verify.verify(pk.vk, z[1:3], proof)
    whole_process(k)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("ks", nargs="*", type=int, default=[12, 14, 16])
    ap.add_argument("--process", action="store_true", help="only the whole-process prove (artifacts must exist)")
    ap.add_argument("--slow", action="store_true", help="also time the checked/compressed key decodes")
    args = ap.parse_args()
    for k in args.ks:
        if args.process:
            whole_process(k)
        else:
            bench(k, args.slow)


if __name__ == "__main__":
    main()
