"""The ``teeprover`` command line (ARCHITECTURE.md §9).

Each subcommand lives in the module that owns its concept; this file only
assembles the parser.  Exit codes: 0 success, 1 failure/invalid, 2 malformed
input or usage.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# Modules that add subcommands: each has ``register(subparsers)``.
_COMMAND_MODULES = (
    "teeprover.commands.serve",
    "teeprover.commands.circuits",
    "teeprover.commands.params",
    "teeprover.attestation.cli",
    "teeprover.commands.keys",
    "teeprover.commands.certs",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="teeprover", description="Groth16 (BLS12-381) proofs for wallets, from inside a TEE."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in _COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "attestation":
        from teeprover.attestation import cli as attestation_cli

        # Its runner maps usage and domain errors to exit code 2.
        return attestation_cli.run(args)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
