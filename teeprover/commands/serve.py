"""``teeprover serve [all|prover|attestor|params|gateway]``."""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Any

SERVICES = ("all", "prover", "attestor", "params", "gateway")


def register(sub: Any) -> None:
    p = sub.add_parser("serve", help="start the services (what `make run` calls)",
                       description="Start all services under a supervisor, or one service in the foreground. "
                                   "Configuration comes from TEEPROVER_* environment variables (README).")
    p.add_argument("service", nargs="?", default="all", choices=SERVICES)
    p.add_argument("--disable-auth", action="store_true",
                   help="accept requests without an API key (development only; warns at every start)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import os

    if args.disable_auth:
        os.environ["TEEPROVER_DISABLE_AUTH"] = "true"
    from services.common import config as cfgmod
    from services.common import logs

    if args.service == "all":
        from services.supervisor import supervisor

        try:
            config = cfgmod.load(cfgmod.SupervisorConfig)
        except cfgmod.ConfigError as exc:
            print(f"teeprover: configuration error: {exc}", file=sys.stderr)
            return 2
        logs.setup("supervisor", config.log_level)
        return supervisor.run(config)
    module = importlib.import_module(f"services.{args.service}.server")
    try:
        code: int = module.main()
    except cfgmod.ConfigError as exc:
        print(f"teeprover: configuration error: {exc}", file=sys.stderr)
        return 2
    return code
