"""MSM floor: ark-algebra-py vs py-arkworks-bls12381, G1/G2, wall time (median of 3)."""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import ark_algebra_py as ark
import py_arkworks_bls12381 as pya


def _median(f: Callable[..., Any], *args: Any) -> float:
    ts = []
    for _ in range(3):
        t = time.perf_counter()
        f(*args)
        ts.append(time.perf_counter() - t)
    return statistics.median(ts)


def main(ks: list[int]) -> None:
    for k in ks:
        n = 1 << k
        sc = [(i * 0x9E3779B97F4A7C15 + 12345) % (1 << 250) for i in range(n)]
        a1 = [ark.G1() * ark.Scalar.from_le_bytes(s.to_bytes(32, "little")) for s in sc[:n]]
        a2 = [ark.G2() * ark.Scalar.from_le_bytes(s.to_bytes(32, "little")) for s in sc[:n]]
        asc = [ark.Scalar.from_le_bytes(s.to_bytes(32, "little")) for s in sc]
        p1 = [pya.G1Point() * pya.Scalar(i + 2) for i in range(n)]
        p2 = [pya.G2Point() * pya.Scalar(i + 2) for i in range(n)]
        psc = [pya.Scalar.from_le_bytes(s.to_bytes(32, "little")) for s in sc]
        g1, g2 = _median(ark.G1.msm, a1, asc), _median(ark.G2.msm, a2, asc)
        pg1, pg2 = _median(pya.G1Point.multiexp_unchecked, p1, psc), _median(pya.G2Point.multiexp_unchecked, p2, psc)
        print(f"k={k} ark-algebra-py G1 {g1:.3f}s G2 {g2:.3f}s | py-arkworks G1 {pg1:.3f}s G2 {pg2:.3f}s", flush=True)


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [12, 14])
