"""Every documented configuration key set at once (README's table and the client's key): the stack starts.

The strict loader refuses unknown ``TEEPROVER_*`` keys; a key read somewhere outside it (a build date, the
client's API key) once stopped the server at start.  Here each key has a valid, non-default value where one
is cheap to give, and the values that reach a reply are checked through the real Envoy.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from services.common import config
from teeprover import apikeys, clientconfig
from teeprover.commands.certs import make_dev_cert
from teeprover.params.manifest import default_manifest_path
from tests.support.stack import SHARED_CACHE, free_port, running_stack
from tests.unit.test_readme_config import readme_keys

pytestmark = pytest.mark.e2e

BUILD_DATE = "2026-01-02T03:04:05Z"


def every_key(tmp: Path) -> dict[str, str]:
    cert, key = make_dev_cert(tmp / "tls")
    raw_key, hashed_key = apikeys.new_key(), apikeys.new_key()
    key_file = tmp / "api_keys.sha256"
    key_file.write_text(apikeys.hash_key(hashed_key) + "\n")
    return {
        "TEEPROVER_PORT": str(free_port()), "TEEPROVER_ADMIN_PORT": str(free_port()),
        "TEEPROVER_PROVER_PORT": str(free_port()), "TEEPROVER_ATTESTOR_PORT": str(free_port()),
        "TEEPROVER_PARAMS_PORT": str(free_port()),
        "TEEPROVER_TLS_PORT": str(free_port()), "TEEPROVER_TLS_CERT": str(cert), "TEEPROVER_TLS_KEY": str(key),
        "TEEPROVER_METRICS_PORT": "0",
        "TEEPROVER_API_KEYS": raw_key, "TEEPROVER_API_KEYS_FILE": str(key_file), "TEEPROVER_DISABLE_AUTH": "false",
        "TEEPROVER_NUM_WORKERS": "1", "TEEPROVER_JOB_CAPACITY": "4", "TEEPROVER_JOB_TIMEOUT": "120",
        "TEEPROVER_MEMORY_BUDGET": str(2 << 30),
        "TEEPROVER_RATE_LIMIT_RPS": "50", "TEEPROVER_RATE_LIMIT_BURST": "100",
        "TEEPROVER_MAX_BODY_BYTES": str(4 << 20), "TEEPROVER_CORS_ORIGINS": "https://wallet.example",
        "TEEPROVER_PLATFORM": "simulated", "TEEPROVER_CACHE_DIR": str(SHARED_CACHE),
        "TEEPROVER_PARAMS_MANIFEST": str(default_manifest_path()), "TEEPROVER_PARAMS_DISK_BUDGET": str(1 << 30),
        "TEEPROVER_FETCH_PARAMS": "false", "TEEPROVER_DEV_PARAMS_MAX_K": "11",
        "TEEPROVER_LOG_LEVEL": "INFO", "TEEPROVER_OTEL_EXPORTER": "none", "TEEPROVER_OTEL_SAMPLE_RATIO": "0.5",
        "TEEPROVER_BIND_HOST": "127.0.0.1", "TEEPROVER_SHUTDOWN_GRACE": "10",
        "TEEPROVER_ALLOW_PLAIN_HTTP_PUBLIC": "false", "TEEPROVER_FETCH_RATE_PER_HOUR": "2",
        "TEEPROVER_ENVOY_CONCURRENCY": "1", "TEEPROVER_RUNTIME_DIR": str(tmp / "run"),
        "TEEPROVER_KEYS_DIR": str(tmp / "keys"), "TEEPROVER_HPKE_PUBLIC_KEY_FILE": str(tmp / "hpke_public_key.bin"),
        "TEEPROVER_BUILTIN_KEYS": "none", "TEEPROVER_BUILTIN_DEV_PARAMS": "false",
        "TEEPROVER_PCCS_URL": "https://pccs.example", "TEEPROVER_MAA_URL": "https://maa.example",
        "TEEPROVER_IMDS_URL": "http://127.0.0.1:9",
        "TEEPROVER_BUILD_DATE_OVERRIDE": BUILD_DATE,
        "TEEPROVER_CLIENT_API_KEY": hashed_key,  # the client holds the key whose hash is in the file
    }


def test_the_list_covers_every_documented_key(tmp_path: Path) -> None:
    documented = readme_keys() | clientconfig.CLIENT_KEYS | clientconfig.SHARED_KEYS
    assert sorted(documented ^ set(every_key(tmp_path))) == []
    assert config.KNOWN_KEYS | clientconfig.CLIENT_KEYS == documented


def test_the_stack_starts_with_every_key_set(tmp_path: Path) -> None:
    env = every_key(tmp_path)
    with running_stack(tmp_path, **env) as stack:
        base = f"http://127.0.0.1:{env['TEEPROVER_PORT']}"
        with httpx.Client(base_url=base, timeout=30) as http:
            assert http.get("/health").json()["status"] == "healthy"
            assert http.get("/version").json()["build_date"] == BUILD_DATE
            # Both API key sources are live: the raw key and the one whose hash is in the file.
            for key in (env["TEEPROVER_API_KEYS"], env["TEEPROVER_CLIENT_API_KEY"]):
                reply = http.post("/k", content=b"{}", headers={"content-type": "application/json", "x-api-key": key})
                assert reply.status_code == 400, reply.text
            reply = http.post("/k", content=b"{}", headers={"content-type": "application/json", "x-api-key": "no"})
            assert reply.status_code == 401, reply.text
        assert "configuration error" not in stack.log_text()
