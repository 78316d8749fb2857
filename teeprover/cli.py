"""The ``teeprover`` command line (docs/architecture.md §9).

Each subcommand lives in the module that owns its concept; this file only
assembles the parser and turns what is left of a failure into one line on
stderr: Ctrl-C (exit 130), a file that cannot be used, a domain error.  Exit
codes: ``teeprover/commands/_common.py`` (0 success, 1 invalid, 2 a user's
mistake, 3 server unreachable or failing, 130 interrupted).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import NoReturn

# Modules that add subcommands (each has ``register(subparsers)``), by the commands they add.
_COMMAND_MODULES = {
    "teeprover.commands.serve": ("serve",),
    "teeprover.commands.circuits": ("setup", "prove", "verify", "k", "check"),
    "teeprover.commands.params": ("params",),
    "teeprover.commands.attestation": ("attestation",),
    "teeprover.commands.keys": ("keys",),
    "teeprover.commands.certs": ("certs",),
}


class _Parser(argparse.ArgumentParser):
    """A usage mistake is one line too (argparse prints the whole usage block first)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"teeprover: {message} (see `{self.prog} --help`)\n")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; with ``command``, only the module that owns it is imported (start-up time counts:
    `teeprover prove` is measured as a whole process against snarkjs)."""
    parser = _Parser(
        prog="teeprover", description="Groth16 (BLS12-381) proofs for wallets, from inside a TEE."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, commands in _COMMAND_MODULES.items():
        if command is None or command in commands:
            importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    first = args_list[0] if args_list else None
    known = {c for commands in _COMMAND_MODULES.values() for c in commands}
    from teeprover.commands import _common
    from teeprover.errors import TeeProverError

    try:
        parser = build_parser(first if first in known else None)
        args = parser.parse_args(args_list)
        if args.command == "attestation":
            from teeprover.commands import attestation as attestation_cli

            # Its runner maps usage and domain errors to exit code 2.
            return attestation_cli.run(args)
        code: int = args.func(args)
        return code
    except KeyboardInterrupt:
        return _common.interrupted()
    except TeeProverError as exc:
        return _common.fail(exc)
    except OSError as exc:
        return _common.os_failure(exc)


if __name__ == "__main__":
    sys.exit(main())
