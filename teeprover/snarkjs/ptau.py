"""snarkjs ``.ptau`` files (BLS12-381): reader, writer and insecure development parameters."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from teeprover import curve
from teeprover.curve import R
from teeprover.groth16.types import LagrangeParams, LagrangeXY


def _batch_inverse(xs: list[int]) -> list[int]:
    """``[x^-1 mod R for x in xs]`` (all non-zero) with one modular inversion (Montgomery's trick):
    three multiplications an element instead of one ``pow(x, -1, R)`` (~15 us) each."""
    prefix = []
    acc = 1
    for x in xs:
        prefix.append(acc)
        acc = acc * x % R
    inv = pow(acc, -1, R)
    out = [0] * len(xs)
    for i in range(len(xs) - 1, -1, -1):
        out[i] = inv * prefix[i] % R
        inv = inv * xs[i] % R
    return out


def lagrange_values(n: int, tau: int) -> list[int]:
    """``[L_i(tau) for i < n]`` over ffjavascript's n-th roots of unity."""
    w = curve.root_of_unity(n)
    zn = (pow(tau, n, R) - 1) % R
    if zn == 0:
        raise ValueError("tau is a root of unity")
    factor = zn * pow(n, -1, R) % R
    roots = _powers(w, n)
    inverses = _batch_inverse([(tau - wi) % R for wi in roots])
    return [factor * wi % R * v % R for wi, v in zip(roots, inverses, strict=True)]


def _mul_all_g1(values: Sequence[int]) -> tuple:
    return tuple(curve.g1_mul_many(curve.g1_generator(), values))


def _mul_all_g2(values: Sequence[int]) -> tuple:
    return tuple(curve.g2_mul_many(curve.g2_generator(), values))


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

import mmap  # noqa: E402
import os  # noqa: E402
import secrets  # noqa: E402
import struct  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

from teeprover.curve import P  # noqa: E402
from teeprover.errors import MalformedEncoding  # noqa: E402
from teeprover.snarkjs.contribution import contribution_record  # noqa: E402

_G1S, _G2S = 96, 192


def _lem_to_xy(b: bytes | memoryview) -> bytes:
    """Montgomery LE coordinates -> standard LE coordinates (48 bytes each), zeros kept as zeros."""
    return curve.fq_from_montgomery(b, "ptau")


def _xy_to_lem(b: bytes) -> bytes:
    """Standard LE coordinates -> Montgomery LE coordinates (native), zeros kept as zeros."""
    return curve.to_montgomery(b)


@dataclass
class Ptau:
    """A parsed ``.ptau`` file: raw sections (views of the memory-mapped file, from :func:`read_ptau`:
    only the pages a caller decodes are read), decoded on demand."""

    power: int
    ceremony_power: int
    sections: dict[int, bytes | memoryview] = field(repr=False)

    def _g1s(self, sec: int, start: int, count: int) -> tuple[curve.G1, ...]:
        data = self.sections[sec]
        if (start + count) * _G1S > len(data):
            raise MalformedEncoding(f"ptau section {sec} is too short")
        return curve.g1s_from_xy(_lem_to_xy(data[start * _G1S:(start + count) * _G1S]), check_subgroup=False)

    def _g2s(self, sec: int, start: int, count: int) -> tuple[curve.G2, ...]:
        data = self.sections[sec]
        if (start + count) * _G2S > len(data):
            raise MalformedEncoding(f"ptau section {sec} is too short")
        return curve.g2s_from_xy(_lem_to_xy(data[start * _G2S:(start + count) * _G2S]), check_subgroup=False)

    @property
    def has_phase2(self) -> bool:
        # Setup reads alpha/beta (sections 4-6) as well as the Lagrange sections 12-15.
        return all(s in self.sections for s in (4, 5, 6, 12, 13, 14, 15))

    def _check_domain(self, n: int) -> None:
        if n < 1 or n & (n - 1) or n > 1 << self.power:
            raise MalformedEncoding(f"ptau of power {self.power} cannot serve a domain of size {n}")
        if not self.has_phase2:
            raise MalformedEncoding("ptau file is not prepared for phase 2 (no sections 12-15)")

    def _xy(self, sec: int, start: int, count: int, size: int) -> bytes:
        """Points ``start .. start + count - 1`` of section ``sec`` as standard-form affine bytes, converted
        natively straight from the memory map."""
        data = self.sections[sec]
        if (start + count) * size > len(data):
            raise MalformedEncoding(f"ptau section {sec} is too short")
        return _lem_to_xy(data[start * size:(start + count) * size])

    def lagrange_xy(self, n: int) -> LagrangeXY:
        """:meth:`lagrange_params` as byte arrays (no point objects: what setup at k=22 needs to fit)."""
        self._check_domain(n)
        sec12 = self.sections[12]
        if (4 * n - 1) * _G1S > len(sec12):
            raise MalformedEncoding("ptau section 12 is too short")
        # h: the odd points of section 12 at size 2n (which starts at point 2n - 1), picked as a strided
        # view of the memory map, copied once and converted natively.
        odd = np.frombuffer(sec12, np.uint8, count=2 * n * _G1S, offset=(2 * n - 1) * _G1S).reshape(n, 2 * _G1S)
        h_g1 = _lem_to_xy(np.ascontiguousarray(odd[:, _G1S:]).reshape(-1).data)
        del odd
        return LagrangeXY(
            domain_size=n,
            alpha_g1=self._xy(4, 0, 1, _G1S),
            beta_g1=self._xy(5, 0, 1, _G1S),
            beta_g2=self._xy(6, 0, 1, _G2S),
            g1_sources=b"".join([self._xy(15, n - 1, n, _G1S), self._xy(14, n - 1, n, _G1S),
                                 self._xy(12, n - 1, n, _G1S)]),
            tau_g2=self._xy(13, n - 1, n, _G2S),
            h_g1=h_g1,
        )

    def lagrange_params(self, n: int) -> LagrangeParams:
        """Phase-2 inputs for a domain of size n (needs the prepared sections 12-15)."""
        self._check_domain(n)
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
    """The section table of ``path`` and views of its sections in a read-only memory map (a power-20
    file is ~1.8 GB; setup reads a fraction of it)."""
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        data: bytes | memoryview = memoryview(mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)) if size else b""
    try:
        if bytes(data[:4]) != b"ptau":
            raise MalformedEncoding("not a ptau file")
        (version, n_sections) = struct.unpack_from("<II", data, 4)
        if version != 1:
            raise MalformedEncoding(f"unsupported ptau version {version}")
        pos = 12
        sections: dict[int, bytes | memoryview] = {}
        for _ in range(n_sections):
            sec, size = struct.unpack_from("<IQ", data, pos)
            pos += 12
            if pos + size > len(data) or sec in sections:
                raise MalformedEncoding("ptau section table is corrupt")
            sections[sec] = data[pos:pos + size]
            pos += size
        hdr = sections[1]
        n8 = struct.unpack_from("<I", hdr, 0)[0]
        if n8 != 48 or int.from_bytes(bytes(hdr[4:52]), "little") != P:
            raise MalformedEncoding("ptau file is not for BLS12-381")
        power, ceremony_power = struct.unpack_from("<II", hdr, 52)
    except (struct.error, KeyError) as exc:
        raise MalformedEncoding("truncated ptau file") from exc
    return Ptau(power=power, ceremony_power=ceremony_power, sections=sections)


def write_ptau(path: str | Path, power: int, sections: Mapping[int, bytes | memoryview | Sequence[bytes]],
               ceremony_power: int | None = None) -> None:
    """Write a ptau file from raw section bytes (sections 2.. as given, header built here).

    A section may be given as a list of byte strings (written one after another, never joined), so a
    large file is streamed to disk rather than built in memory first."""
    header = struct.pack("<I", 48) + P.to_bytes(48, "little") + struct.pack("<II", power, ceremony_power or power)
    all_sections: dict[int, bytes | memoryview | Sequence[bytes]] = {1: header, **sections}
    tmp = Path(str(path) + ".tmp")
    with open(tmp, "wb") as f:
        f.write(b"ptau" + struct.pack("<II", 1, len(all_sections)))
        for sec in sorted(all_sections):
            body = all_sections[sec]
            parts = [body] if isinstance(body, bytes | bytearray | memoryview) else list(body)
            f.write(struct.pack("<IQ", sec, sum(len(x) for x in parts)))
            for part in parts:
                f.write(part)
    tmp.replace(path)


def _powers(x: int, count: int, scale: int = 1) -> list[int]:
    out, acc = [], scale % R
    for _ in range(count):
        out.append(acc)
        acc = acc * x % R
    return out


DEV_CONTRIBUTION_NAME = "teeprover dev parameters (INSECURE)"
_WIDE_COMB_POWER = 16


def generate_dev_ptau(power: int, path: str | Path, rng: Any = None) -> None:
    """INSECURE development parameters of ``power`` (prepared for phase 2) written to ``path``.

    tau, alpha and beta are drawn from ``rng`` (an object with ``randrange``; the
    OS RNG by default) and forgotten.  The Lagrange sections are computed directly
    from tau.  The file carries one real contribution record (section 7) made with
    those secrets from the initial accumulator, named ``DEV_CONTRIBUTION_NAME``, so
    ``snarkjs powersoftau verify`` accepts it; it is still insecure (one party knew
    every secret).  Every point is a multiple of a generator, computed natively by a fixed-base comb
    on all cores (:func:`teeprover.curve.g1_mul_many_xy`), the Lagrange sections straight into the
    file's Montgomery form.
    """
    rng = rng or secrets.SystemRandom()
    tau, alpha, beta = (rng.randrange(2, R) for _ in range(3))
    n = 1 << power
    # 16-bit tables (300 MB, a few seconds to build) halve the work once there are millions of points.
    window = 16 if power >= _WIDE_COMB_POWER else 8
    g1 = curve.FixedBase(curve.g1_generator(), window=window)
    g2 = curve.FixedBase(curve.g2_generator(), window=window)

    xy = {  # standard form: the contribution record hashes these
        2: g1.mul_xy(_powers(tau, 2 * n - 1)),
        3: g2.mul_xy(_powers(tau, n)),
        4: g1.mul_xy(_powers(tau, n, alpha)),
        5: g1.mul_xy(_powers(tau, n, beta)),
        6: g2.mul_xy([beta]),
    }
    sections: dict[int, bytes | memoryview | Sequence[bytes]] = {sec: _xy_to_lem(data) for sec, data in xy.items()}
    sections[7] = contribution_record(power, (tau, alpha, beta), xy, rng, DEV_CONTRIBUTION_NAME)
    del xy
    s12: list[bytes] = []
    s13: list[bytes] = []
    s14: list[bytes] = []
    s15: list[bytes] = []
    for p in range(power + 2):
        lag = lagrange_values(1 << p, tau)
        s12.append(g1.mul_xy(lag, montgomery=True))
        if p <= power:
            s13.append(g2.mul_xy(lag, montgomery=True))
            s14.append(g1.mul_xy([alpha * x % R for x in lag], montgomery=True))
            s15.append(g1.mul_xy([beta * x % R for x in lag], montgomery=True))
    sections.update({12: s12, 13: s13, 14: s14, 15: s15})
    del tau, alpha, beta, lag
    write_ptau(path, power, sections)


__all__ = ["Ptau", "read_ptau", "write_ptau", "generate_dev_ptau", "DEV_CONTRIBUTION_NAME",
           "lagrange_values",
           "lagrange_params_from_secrets"]
