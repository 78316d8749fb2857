"""snarkjs ``.ptau`` files (BLS12-381): reader, writer and insecure development parameters."""

from __future__ import annotations

from collections.abc import Sequence

from teeprover import curve
from teeprover.curve import R
from teeprover.groth16.types import LagrangeParams


def lagrange_values(n: int, tau: int) -> list[int]:
    """``[L_i(tau) for i < n]`` over ffjavascript's n-th roots of unity."""
    w = curve.root_of_unity(n)
    zn = (pow(tau, n, R) - 1) % R
    if zn == 0:
        raise ValueError("tau is a root of unity")
    factor = zn * pow(n, -1, R) % R
    out = []
    wi = 1
    for _ in range(n):
        out.append(factor * wi % R * pow((tau - wi) % R, -1, R) % R)
        wi = wi * w % R
    return out


def _mul_all_g1(values: Sequence[int]) -> tuple:
    g = curve.g1_generator()
    return tuple(g * s for s in curve.frs(values))


def _mul_all_g2(values: Sequence[int]) -> tuple:
    g = curve.g2_generator()
    return tuple(g * s for s in curve.frs(values))


def lagrange_params_from_secrets(n: int, tau: int, alpha: int, beta: int) -> LagrangeParams:
    """Phase-2 parameters computed directly from known secrets (INSECURE: development and tests)."""
    lag = lagrange_values(n, tau)
    lag2 = lagrange_values(2 * n, tau)
    return LagrangeParams(
        domain_size=n,
        alpha_g1=curve.g1_mul(curve.g1_generator(), alpha),
        beta_g1=curve.g1_mul(curve.g1_generator(), beta),
        beta_g2=curve.g2_mul(curve.g2_generator(), beta),
        tau_g1=_mul_all_g1(lag),
        tau_g2=_mul_all_g2(lag),
        alpha_tau_g1=_mul_all_g1([alpha * x % R for x in lag]),
        beta_tau_g1=_mul_all_g1([beta * x % R for x in lag]),
        h_g1=_mul_all_g1(lag2[1::2]),
    )


# ---------------------------------------------------------------------------
# File format (binfile "ptau" v1; points as affine x, y in Montgomery form, 48-byte LE each
# coordinate; the identity is all zeros).  Sections:
#   1 header: n8=48, q, power, ceremonyPower     2 tauG1 (2^(p+1)-1)   3 tauG2 (2^p)
#   4 alphaTauG1 (2^p)   5 betaTauG1 (2^p)   6 betaG2 (1)   7 contributions
#   12 Lagrange tauG1 for sizes 1,2,..,2^p,2^(p+1)   13/14/15 Lagrange tauG2/alphaTauG1/
#   betaTauG1 for sizes 1,2,..,2^p (each size n starts at point index n-1).

import secrets  # noqa: E402
import struct  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

from teeprover.curve import P  # noqa: E402
from teeprover.errors import MalformedEncoding  # noqa: E402

_RQ = pow(2, 384, P)
_RQ_INV = pow(_RQ, -1, P)
_G1S, _G2S = 96, 192


def _fq_from(b: bytes) -> int:
    return int.from_bytes(b, "little") * _RQ_INV % P


def _fq_to(x: int) -> bytes:
    return (x * _RQ % P).to_bytes(48, "little")


def g1_from_lem(b: bytes) -> curve.G1:
    if not any(b):
        return curve.g1_identity()
    return curve.g1_from_affine(_fq_from(b[:48]), _fq_from(b[48:96]), check_subgroup=False)


def g2_from_lem(b: bytes) -> curve.G2:
    if not any(b):
        return curve.g2_identity()
    return curve.g2_from_affine((_fq_from(b[:48]), _fq_from(b[48:96])),
                                (_fq_from(b[96:144]), _fq_from(b[144:192])), check_subgroup=False)


def g1_to_lem(p: curve.G1) -> bytes:
    xy = curve.g1_to_affine(p)
    return bytes(_G1S) if xy is None else _fq_to(xy[0]) + _fq_to(xy[1])


def g2_to_lem(p: curve.G2) -> bytes:
    xy = curve.g2_to_affine(p)
    if xy is None:
        return bytes(_G2S)
    (x0, x1), (y0, y1) = xy
    return _fq_to(x0) + _fq_to(x1) + _fq_to(y0) + _fq_to(y1)


@dataclass
class Ptau:
    """A parsed ``.ptau`` file: raw sections, decoded on demand."""

    power: int
    ceremony_power: int
    sections: dict[int, bytes] = field(repr=False)

    def _g1s(self, sec: int, start: int, count: int) -> tuple[curve.G1, ...]:
        data = self.sections[sec]
        if (start + count) * _G1S > len(data):
            raise MalformedEncoding(f"ptau section {sec} is too short")
        return tuple(g1_from_lem(data[i * _G1S:(i + 1) * _G1S]) for i in range(start, start + count))

    def _g2s(self, sec: int, start: int, count: int) -> tuple[curve.G2, ...]:
        data = self.sections[sec]
        if (start + count) * _G2S > len(data):
            raise MalformedEncoding(f"ptau section {sec} is too short")
        return tuple(g2_from_lem(data[i * _G2S:(i + 1) * _G2S]) for i in range(start, start + count))

    @property
    def has_phase2(self) -> bool:
        return all(s in self.sections for s in (12, 13, 14, 15))

    def lagrange_params(self, n: int) -> LagrangeParams:
        """Phase-2 inputs for a domain of size n (needs the prepared sections 12-15)."""
        if n & (n - 1) or n > 1 << self.power:
            raise MalformedEncoding(f"ptau of power {self.power} cannot serve a domain of size {n}")
        if not self.has_phase2:
            raise MalformedEncoding("ptau file is not prepared for phase 2 (no sections 12-15)")
        h_all = self._g1s(12, 2 * n - 1, 2 * n)
        return LagrangeParams(
            domain_size=n,
            alpha_g1=self._g1s(4, 0, 1)[0],
            beta_g1=self._g1s(5, 0, 1)[0],
            beta_g2=self._g2s(6, 0, 1)[0],
            tau_g1=self._g1s(12, n - 1, n),
            tau_g2=self._g2s(13, n - 1, n),
            alpha_tau_g1=self._g1s(14, n - 1, n),
            beta_tau_g1=self._g1s(15, n - 1, n),
            h_g1=h_all[1::2],
        )


def read_ptau(path: str | Path) -> Ptau:
    data = Path(path).read_bytes()
    try:
        if data[:4] != b"ptau":
            raise MalformedEncoding("not a ptau file")
        (version, n_sections) = struct.unpack_from("<II", data, 4)
        if version != 1:
            raise MalformedEncoding(f"unsupported ptau version {version}")
        pos = 12
        sections: dict[int, bytes] = {}
        for _ in range(n_sections):
            sec, size = struct.unpack_from("<IQ", data, pos)
            pos += 12
            if pos + size > len(data) or sec in sections:
                raise MalformedEncoding("ptau section table is corrupt")
            sections[sec] = data[pos:pos + size]
            pos += size
        hdr = sections[1]
        n8 = struct.unpack_from("<I", hdr, 0)[0]
        if n8 != 48 or int.from_bytes(hdr[4:52], "little") != P:
            raise MalformedEncoding("ptau file is not for BLS12-381")
        power, ceremony_power = struct.unpack_from("<II", hdr, 52)
    except (struct.error, KeyError) as exc:
        raise MalformedEncoding("truncated ptau file") from exc
    return Ptau(power=power, ceremony_power=ceremony_power, sections=sections)


def write_ptau(path: str | Path, power: int, sections: dict[int, bytes], ceremony_power: int | None = None) -> None:
    """Write a ptau file from raw section bytes (sections 2.. as given, header built here)."""
    header = struct.pack("<I", 48) + P.to_bytes(48, "little") + struct.pack("<II", power, ceremony_power or power)
    all_sections = {1: header, **sections}
    out = bytearray(b"ptau" + struct.pack("<II", 1, len(all_sections)))
    for sec in sorted(all_sections):
        body = all_sections[sec]
        out += struct.pack("<IQ", sec, len(body)) + body
    tmp = Path(str(path) + ".tmp")
    tmp.write_bytes(bytes(out))
    tmp.replace(path)


def _powers(x: int, count: int, scale: int = 1) -> list[int]:
    out, acc = [], scale % R
    for _ in range(count):
        out.append(acc)
        acc = acc * x % R
    return out


def generate_dev_ptau(power: int, path: str | Path, rng: Any = None) -> None:
    """INSECURE development parameters of ``power`` (prepared for phase 2) written to ``path``.

    tau, alpha and beta are drawn from ``rng`` (an object with ``randrange``; the
    OS RNG by default) and forgotten.  The Lagrange sections are computed directly
    from tau.  The file carries NO contribution record (section 7 says 0
    contributions): ``snarkjs powersoftau verify`` rejects it ("This file has no
    contribution! It cannot be used in production"), which is the right answer for
    insecure parameters; ``snarkjs groth16 setup`` accepts it.
    """
    rng = rng or secrets.SystemRandom()
    tau, alpha, beta = (rng.randrange(2, R) for _ in range(3))
    n = 1 << power
    g1, g2 = curve.g1_generator(), curve.g2_generator()

    def g1_blob(vals: list[int]) -> bytes:
        return b"".join(g1_to_lem(g1 * s) for s in curve.frs(vals))

    def g2_blob(vals: list[int]) -> bytes:
        return b"".join(g2_to_lem(g2 * s) for s in curve.frs(vals))

    lag = {p: lagrange_values(1 << p, tau) for p in range(power + 2)}
    sections = {
        2: g1_blob(_powers(tau, 2 * n - 1)),
        3: g2_blob(_powers(tau, n)),
        4: g1_blob(_powers(tau, n, alpha)),
        5: g1_blob(_powers(tau, n, beta)),
        6: g2_to_lem(curve.g2_mul(g2, beta)),
        7: struct.pack("<I", 0),
        12: b"".join(g1_blob(lag[p]) for p in range(power + 2)),
        13: b"".join(g2_blob(lag[p]) for p in range(power + 1)),
        14: b"".join(g1_blob([alpha * x % R for x in lag[p]]) for p in range(power + 1)),
        15: b"".join(g1_blob([beta * x % R for x in lag[p]]) for p in range(power + 1)),
    }
    del tau, alpha, beta
    write_ptau(path, power, sections)


__all__ = ["Ptau", "read_ptau", "write_ptau", "generate_dev_ptau", "lagrange_values",
           "lagrange_params_from_secrets", "g1_from_lem", "g2_from_lem", "g1_to_lem", "g2_to_lem"]
