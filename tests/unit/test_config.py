"""Configuration: typed, frozen, strict about unknown keys, validated across fields."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from services.common import config as c


def test_defaults_match_the_architecture() -> None:
    g = c.load(c.GatewayConfig, {})
    assert (g.port, g.admin_port, g.prover_port, g.attestor_port, g.params_port) == (6300, 9901, 50051, 50052, 50053)
    assert (g.rate_limit_rps, g.rate_limit_burst, g.max_body_bytes) == (10, 20, 10485760)
    p = c.load(c.ProverConfig, {})
    assert p.job_timeout == 600 and p.job_capacity == 0 and p.cache_dir == Path.home() / ".cache" / "midnight"


def test_unknown_key_fails_at_start() -> None:
    with pytest.raises(c.ConfigError, match="TEEPROVER_PROT"):
        c.load(c.GatewayConfig, {"TEEPROVER_PROT": "1"})


def test_other_prefixes_are_ignored() -> None:
    c.load(c.GatewayConfig, {"HOME": "/root", "TEEPROVERX": "1"})


@pytest.mark.parametrize("key,value", [("TEEPROVER_PORT", "x"), ("TEEPROVER_DISABLE_AUTH", "maybe"),
                                       ("TEEPROVER_LOG_LEVEL", "LOUD"), ("TEEPROVER_NUM_WORKERS", "65"),
                                       ("TEEPROVER_PLATFORM", "sgx"), ("TEEPROVER_TLS_PORT", "8443")])
def test_bad_values_fail(key: str, value: str) -> None:
    cls = {"TEEPROVER_NUM_WORKERS": c.ProverConfig, "TEEPROVER_DISABLE_AUTH": c.ProverConfig,
           "TEEPROVER_PLATFORM": c.AttestorConfig}.get(key, c.GatewayConfig)
    with pytest.raises(c.ConfigError):
        c.load(cls, {key: value})


def test_config_is_frozen() -> None:
    cfg = c.load(c.GatewayConfig, {})
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.port = 1  # type: ignore[misc]


def test_prover_refuses_to_start_without_keys() -> None:
    with pytest.raises(c.ConfigError, match="API keys"):
        c.load(c.ProverConfig, {}).require_api_keys()
    c.load(c.ProverConfig, {"TEEPROVER_DISABLE_AUTH": "true"}).require_api_keys()


def test_round_trip_through_the_environment() -> None:
    cfg = c.load(c.SupervisorConfig, {"TEEPROVER_CORS_ORIGINS": "https://a.example, https://b.example",
                                      "TEEPROVER_PORT": "7000"})
    assert cfg.cors_origins == ("https://a.example", "https://b.example")
    again = c.load(c.SupervisorConfig, c.to_environ(cfg))
    assert again == cfg


def test_the_client_keys_do_not_stop_a_server() -> None:
    from teeprover import clientconfig

    env = {key: "x" for key in clientconfig.CLIENT_KEYS}
    assert env and c.load(c.SupervisorConfig, env)
    with pytest.raises(c.ConfigError, match="TEEPROVER_CLIENT_APIKEY"):
        c.load(c.SupervisorConfig, {"TEEPROVER_CLIENT_APIKEY": "x"})


def test_the_client_reads_only_known_keys() -> None:
    from teeprover import clientconfig
    from teeprover.errors import InvalidInput

    cfg = clientconfig.load({"TEEPROVER_CLIENT_API_KEY": " k ", "TEEPROVER_CACHE_DIR": "/tmp/c", "TEEPROVER_PORT": "1"})
    assert (cfg.api_key, cfg.cache_root(), cfg.params_manifest) == ("k", Path("/tmp/c"), None)
    assert clientconfig.load({}).cache_root() == Path.home() / ".cache" / "midnight"
    with pytest.raises(InvalidInput, match="TEEPROVER_CLIENT_APIKEY"):
        clientconfig.load({"TEEPROVER_CLIENT_APIKEY": "k"})
    assert clientconfig.SHARED_KEYS and clientconfig.SHARED_KEYS <= c.KNOWN_KEYS


def test_the_build_date_is_a_prover_key() -> None:
    cfg = c.load(c.ProverConfig, {"TEEPROVER_BUILD_DATE_OVERRIDE": "2026-01-02T03:04:05Z"})
    assert cfg.build_date_override == "2026-01-02T03:04:05Z"


def test_dev_params_must_reach_the_largest_demo_circuit() -> None:
    """serve all's first start sets up every demo circuit's keys from dev parameters for k = 10..max_k."""
    from teeprover.circuits import DEMO_CIRCUITS, demo_circuit_ks, demo_params_k

    least, circuit = demo_params_k()
    assert set(demo_circuit_ks()) == set(DEMO_CIRCUITS) and demo_circuit_ks()[circuit] == least
    assert least == max(demo_circuit_ks().values())
    assert c.load(c.SupervisorConfig, {"TEEPROVER_DEV_PARAMS_MAX_K": str(least)}).dev_params_max_k == least
    with pytest.raises(c.ConfigError) as below:
        c.load(c.SupervisorConfig, {"TEEPROVER_DEV_PARAMS_MAX_K": str(least - 1)})
    message = str(below.value)
    assert message.startswith(f"TEEPROVER_DEV_PARAMS_MAX_K must be between {least} and {c.DEV_PARAMS_MAX_K_LIMIT}")
    assert f"not {least - 1}" in message and circuit in message
    with pytest.raises(c.ConfigError, match="TEEPROVER_DEV_PARAMS_MAX_K must be between"):
        c.load(c.SupervisorConfig, {"TEEPROVER_DEV_PARAMS_MAX_K": str(c.DEV_PARAMS_MAX_K_LIMIT + 1)})
    assert least <= c.SupervisorConfig.dev_params_max_k  # the default starts
