"""Turn ``nitro-cli build-enclave`` output into the manifest reference value of the enclave.

    nitro-cli build-enclave --docker-uri teeprover-enclave:0.1.0 --output-file build/teeprover.eif > build/eif.json
    teeprover attestation manifest create --keys SECRET.json --git-commit "$(git rev-parse HEAD)" \\
        --image-digest sha256:… --ref "$(python deploy/enclave/eif_ref.py build/eif.json)" --out manifest.json

nitro-cli prints ``{"Measurements": {"HashAlgorithm": "Sha384 { ... }", "PCR0": hex, "PCR1": hex,
"PCR2": hex[, "PCR8": hex]}}``: PCR0 the enclave image, PCR1 the kernel and boot ramdisk, PCR2 the
application, PCR8 the signing certificate (only with --signing-certificate).  The reference value
is ``aws-nitro:pcr0=…,pcr1=…,pcr2=…[,pcr8=…]``, the keys the attestor's Nitro verifier reports
(teeprover/attestation/nitro.py, ``facts["measurements"]``).  Standard library only: it runs on the
build host next to nitro-cli.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

PCRS = ("PCR0", "PCR1", "PCR2", "PCR8")
SHA384_HEX = re.compile(r"^[0-9a-f]{96}$")


def reference(build_output: dict[str, object]) -> str:
    measurements = build_output.get("Measurements")
    if not isinstance(measurements, dict):
        raise ValueError("no Measurements object: is this the output of nitro-cli build-enclave?")
    algorithm = str(measurements.get("HashAlgorithm", ""))
    if not algorithm.lower().startswith("sha384"):
        raise ValueError(f"HashAlgorithm {algorithm!r}: Nitro PCRs are SHA-384")
    parts = []
    for name in PCRS:
        value = measurements.get(name)
        if value is None:
            if name == "PCR8":
                continue
            raise ValueError(f"{name} missing")
        value = str(value).lower()
        if not SHA384_HEX.match(value):
            raise ValueError(f"{name} is not 96 hex digits")
        if name != "PCR8" and value == "0" * 96:
            raise ValueError(f"{name} is all zero (a debug-mode measurement is never a reference value)")
        parts.append(f"{name.lower()}={value}")
    return "aws-nitro:" + ",".join(parts)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: eif_ref.py NITRO_CLI_BUILD_OUTPUT.json", file=sys.stderr)
        return 2
    try:
        print(reference(json.loads(Path(argv[0]).read_text())))
    except (OSError, ValueError) as exc:  # json.JSONDecodeError is a ValueError
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
