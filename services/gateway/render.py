"""Render Envoy's configuration from GatewayConfig and the protos' descriptor set.

The REST routes are not written by hand: every ``google.api.http`` binding in
``build/teeprover.pb`` becomes one route to its service's cluster.  What the
protos cannot say (rate limits, timeouts) is the small policy table ``POLICIES``
below; a test fails if an annotated RPC has no policy.  Which routes need an API
key (and share the per-IP bucket) is ``services/common/routes.py``, the list the
prover checks keys against.
"""

from __future__ import annotations

import json
import re
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from google.api import annotations_pb2
from google.protobuf import descriptor_pb2

from services.common.config import GatewayConfig
from services.common.deprecations import PROVE_TX_HEADERS
from services.common.routes import PROTECTED_RPCS
from teeprover.params.manifest import K_MAX, K_MIN

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
DESCRIPTOR = REPO / "build" / "teeprover.pb"
TEMPLATE = HERE / "envoy.yaml.tmpl"
LUA_ERROR_BODY = HERE / "lua" / "error_body.lua"

CLUSTER_OF_SERVICE = {"Prover": "prover", "Attestor": "attestor", "Params": "params"}


@dataclass(frozen=True)
class Policy:
    timeout_s: int = 30
    per_ip_hourly: bool = False  # /fetch-params: one request per client IP per k per hour
    # When set, the route's one path variable may only take these spellings: each gets an exact route
    # (its own per-IP bucket, whatever the query string or percent-encoding), anything else is a 400
    # from Envoy — so "010", "%31%30" or "10?" cannot open a fresh bucket for the same k.
    variable_values: tuple[str, ...] = ()
    # Added by Envoy to every response of the route, errors included (the RPC itself can only send
    # headers with a success: see docs/gateway.md, "error-only replies").
    response_headers: tuple[tuple[str, str], ...] = ()


POLICIES: dict[str, Policy] = {
    "Prover.Health": Policy(),
    "Prover.Ready": Policy(),
    "Prover.Version": Policy(),
    "Prover.ProofVersions": Policy(),
    "Prover.Check": Policy(timeout_s=120),
    "Prover.Prove": Policy(timeout_s=660),
    "Prover.ProveTx": Policy(timeout_s=660, response_headers=PROVE_TX_HEADERS),
    "Prover.K": Policy(timeout_s=60),
    "Prover.VerifyingKey": Policy(timeout_s=30),
    "Attestor.GetAttestation": Policy(timeout_s=10),
    "Params.FetchParams": Policy(timeout_s=900, per_ip_hourly=True,
                                 variable_values=tuple(str(k) for k in range(K_MIN, K_MAX + 1))),
}

ERROR_NAMES = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    408: "Timeout",
    413: "PayloadTooLarge",
    429: "TooManyRequests",
    431: "BadRequest",
    500: "InternalError",
    501: "NotImplemented",
    502: "ServiceUnavailable",
    503: "ServiceUnavailable",
    504: "Timeout",
}


@dataclass(frozen=True)
class HttpRoute:
    service: str  # "Prover"
    method: str  # "Health"
    verb: str  # "get" | "post"
    path: str  # "/fetch-params/{k}"
    query: tuple[str, ...] = ()  # request fields a client may send as query parameters

    @property
    def rpc(self) -> str:
        return f"{self.service}.{self.method}"

    @property
    def label(self) -> str:
        """How error messages name the route: "GET /attestation"."""
        return f"{self.verb.upper()} {self.path}"


def http_routes(descriptor: Path = DESCRIPTOR) -> list[HttpRoute]:
    fds = descriptor_pb2.FileDescriptorSet()
    fds.ParseFromString(descriptor.read_bytes())
    messages = {f".{f.package}.{m.name}": m for f in fds.file for m in f.message_type}
    routes: list[HttpRoute] = []
    for f in fds.file:
        if f.package != "teeprover.v1":
            continue
        for service in f.service:
            for method in service.method:
                if not method.options.HasExtension(annotations_pb2.http):
                    continue
                rule = method.options.Extensions[annotations_pb2.http]
                for r in [rule, *rule.additional_bindings]:
                    verb = r.WhichOneof("pattern")
                    path = getattr(r, verb)
                    routes.append(HttpRoute(service.name, method.name, verb, path,
                                            _query_fields(messages.get(method.input_type), path, r.body)))
    return routes


def _query_fields(message: descriptor_pb2.DescriptorProto | None, path: str, body: str) -> tuple[str, ...]:
    """Fields the transcoder takes from the query string: neither bound in the path nor the body."""
    if message is None or body == "*":
        return ()
    bound = set(re.findall(r"\{([^}=]+)", path)) | {body}
    return tuple(f.name for f in message.field if f.name not in bound)


def _path_match(path: str) -> dict[str, Any]:
    if "{" not in path:
        return {"path": path}
    # "/fetch-params/{k}" → one path segment in place of each variable; "{key_location=**}" → one or more.
    regex = re.sub(r"\{[^}=]+=\*\*\}", ".+", path)
    regex = re.sub(r"\{[^}]+\}", "[^/]+", regex)
    return {"safe_regex": {"regex": regex}}


# Draining (SIGTERM to the gateway): the admin API sets this runtime key to 100 and every new request
# matches the drain route below, a 503 with Retry-After, while requests already routed run to the end.
DRAIN_RUNTIME_KEY = "teeprover.draining"
DRAIN_RETRY_AFTER_S = 5
DRAIN_MESSAGE = f"the server is shutting down: retry in {DRAIN_RETRY_AFTER_S} s"

# Messages for Envoy's own replies whose default text says nothing useful to a wallet.
LOCAL_REPLY_MESSAGES = {
    429: "too many requests from this address: wait the number of seconds in the Retry-After header",
}
# Marks Envoy's own replies for the Lua filter, which puts their keys in the services' order.
LOCAL_REPLY_HEADER = "x-teeprover-local-reply"


def _local_reply_config(cfg: GatewayConfig) -> dict[str, Any]:
    """Envoy's own replies (404, 405, 413, 429, 503, 504 …) in the public JSON error shape."""
    messages = {**LOCAL_REPLY_MESSAGES,
                # Envoy's buffer allows a small margin (see _http_filters); the limit a client must keep is this.
                413: f"request body is over the limit of {cfg.max_body_bytes} bytes"}
    mappers = []
    for code, name in ERROR_NAMES.items():
        details: dict[str, Any] = {"code": "%RESPONSE_CODE_DETAILS%"}
        if code == 413:
            details["limit"] = cfg.max_body_bytes
        mapper: dict[str, Any] = {
            "filter": {"status_code_filter": {"comparison": {"op": "EQ", "value": {"default_value": code,
                                                                                    "runtime_key": f"lr_{code}"}}}},
            "headers_to_add": [{"header": {"key": LOCAL_REPLY_HEADER, "value": "1"},
                                "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"}],
            "body_format_override": {
                "json_format": {
                    "error": name,
                    "message": "%LOCAL_REPLY_BODY%",
                    "details": details,
                    "request_id": "%REQ(X-REQUEST-ID)%",
                },
                "content_type": "application/json",
            },
        }
        if code in messages:
            mapper["body"] = {"inline_string": messages[code]}
        mappers.append(mapper)
    return {"mappers": mappers}


_LOCAL_RATELIMIT = "envoy.filters.http.local_ratelimit"
_LOCAL_RATELIMIT_TYPE = "type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit"
_TRANSCODER = "envoy.filters.http.grpc_json_transcoder"
_LUA = "envoy.filters.http.lua"
_HCM_TYPE = ("type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3."
             "HttpConnectionManager")


def _rate_limit_filter_config(cfg: GatewayConfig, *, tokens: int, fill_seconds: int, rps_label: str,
                              bucket_key: str | None = None) -> dict[str, Any]:
    """Per-client-IP token bucket: the empty descriptor value is the per-IP wildcard (docs/architecture.md §10).

    ``bucket_key`` (e.g. "k10") adds a fixed second descriptor entry, so one client IP has one
    bucket per key.  ``max_dynamic_descriptors`` is far above any realistic number of clients
    within one fill interval: with the default (20) a client rotating through 21 source addresses
    would evict its own buckets and get them back full.
    """
    entries = [{"key": "remote_address", "value": ""}]
    actions: list[dict[str, Any]] = [{"remote_address": {}}]
    if bucket_key is not None:
        actions.append({"generic_key": {"descriptor_key": "bucket", "descriptor_value": bucket_key}})
        entries.append({"key": "bucket", "value": bucket_key})
    return {
        "@type": _LOCAL_RATELIMIT_TYPE,
        "stat_prefix": f"ratelimit_{rps_label}",
        # The default bucket is never consumed (always_consume_default_token_bucket: false): only the
        # per-IP descriptor limits; it must still exist for the filter to accept the config.
        "token_bucket": {"max_tokens": 1_000_000, "tokens_per_fill": 1_000_000, "fill_interval": "1s"},
        "filter_enabled": {"default_value": {"numerator": 100, "denominator": "HUNDRED"},
                           "runtime_key": f"rl_{rps_label}_enabled"},
        "filter_enforced": {"default_value": {"numerator": 100, "denominator": "HUNDRED"},
                            "runtime_key": f"rl_{rps_label}_enforced"},
        "always_consume_default_token_bucket": False,
        "max_dynamic_descriptors": 100_000,
        "enable_x_ratelimit_headers": "DRAFT_VERSION_03",
        "response_headers_to_add": [
            {"append_action": "OVERWRITE_IF_EXISTS_OR_ADD", "header": {"key": "retry-after",
                                                                       "value": str(max(1, fill_seconds))}}
        ],
        "rate_limits": [{"actions": actions}],
        "descriptors": [
            {"entries": entries,
             "token_bucket": {"max_tokens": tokens, "tokens_per_fill": 1 if fill_seconds > 1 else cfg.rate_limit_rps,
                              "fill_interval": f"{fill_seconds}s"}}
        ],
    }


def _rate_limit_off() -> dict[str, Any]:
    # filter_enabled at its default 0 %: the route is not limited (a per-route config must name a bucket).
    return {"@type": _LOCAL_RATELIMIT_TYPE, "stat_prefix": "ratelimit_off",
            "token_bucket": {"max_tokens": 1_000_000, "tokens_per_fill": 1_000_000, "fill_interval": "1s"}}


def _protected_rate_limit(cfg: GatewayConfig) -> dict[str, Any]:
    """ONE bucket per client IP shared by every protected route (set on the virtual host).

    A per-route config would give each protected route its own limiter, i.e. four times the
    documented burst; routes that are not protected override it with :func:`_rate_limit_off`.
    """
    return _rate_limit_filter_config(cfg, tokens=cfg.rate_limit_burst, fill_seconds=1, rps_label="protected")


def _routes(r: HttpRoute, cfg: GatewayConfig) -> list[dict[str, Any]]:
    """The Envoy route(s) for one HTTP binding (more than one when the policy lists variable values)."""
    policy = POLICIES[r.rpc]
    if policy.per_ip_hourly and not cfg.fetch_params:
        return [{"name": f"{r.rpc}:disabled", "match": _path_match(r.path),
                 "direct_response": {"status": 404, "body": {"inline_string": "fetch-params is disabled"}},
                 "typed_per_filter_config": {_TRANSCODER: _transcoder_disabled(), _LOCAL_RATELIMIT: _rate_limit_off()}}]
    if not policy.variable_values:
        return [_route(r, cfg, policy, _path_match(r.path), r.path, None)]
    routes = []
    for value in policy.variable_values:
        path = re.sub(r"\{[^}]+\}", value, r.path)
        routes.append(_route(r, cfg, policy, {"path": path}, path, value))
    names = re.findall(r"\{([^}]+)\}", r.path)
    routes.append({
        "name": f"{r.rpc}:{r.path}:invalid",
        "match": {**_path_match(r.path), "headers": [_method_header(r.verb)]},
        "direct_response": {"status": 400, "body": {"inline_string": (
            f"{', '.join(names)} must be one of {policy.variable_values[0]}..{policy.variable_values[-1]}"
            if len(policy.variable_values) > 2 else f"{', '.join(names)} must be one of {policy.variable_values}")}},
        "typed_per_filter_config": {_TRANSCODER: _transcoder_disabled(), _LOCAL_RATELIMIT: _rate_limit_off()},
    })
    return routes


def _method_header(verb: str) -> dict[str, Any]:
    return {"name": ":method", "string_match": {"exact": verb.upper()}}


def _route(r: HttpRoute, cfg: GatewayConfig, policy: Policy, match: dict[str, Any], path: str,
           value: str | None) -> dict[str, Any]:
    match = {**match, "headers": [_method_header(r.verb)]}
    route: dict[str, Any] = {
        "name": f"{r.rpc}:{path}",
        "match": match,
        # For the Lua filter's messages (an unknown query parameter names the route and what it takes).
        "metadata": {"filter_metadata": {_LUA: {"route": r.label, "query": ", ".join(r.query)}}},
        "route": {
            "cluster": CLUSTER_OF_SERVICE[r.service],
            "timeout": f"{policy.timeout_s}s",
            # Idle timeout above the route timeout so long proofs are not cut early.
            "idle_timeout": f"{policy.timeout_s + 60}s",
        },
    }
    if policy.response_headers:
        route["response_headers_to_add"] = [
            {"header": {"key": k, "value": v}, "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"}
            for k, v in policy.response_headers]
    if r.rpc in PROTECTED_RPCS:
        return route  # API key (checked by the prover) + the virtual host's shared per-IP bucket
    if policy.per_ip_hourly:
        limit = _rate_limit_filter_config(cfg, tokens=cfg.fetch_rate_per_hour, fill_seconds=3600,
                                          rps_label="fetch_params", bucket_key=f"{r.rpc}:{value or path}")
    else:
        limit = _rate_limit_off()
    route["typed_per_filter_config"] = {_LOCAL_RATELIMIT: limit}
    return route


def _transcoder_disabled() -> dict[str, Any]:
    return {"@type": "type.googleapis.com/envoy.config.route.v3.FilterConfig", "disabled": True}


# Replaces the error-body Lua script on the preflight route.  The CORS filter (first in the chain)
# answers a preflight from an allowed origin itself; whatever reaches this script is a preflight
# from a refused origin, or a plain OPTIONS request.
LUA_PREFLIGHT_REFUSED = """
function envoy_on_request(handle)
  local h = handle:headers()
  if h:get("origin") ~= nil and h:get("access-control-request-method") ~= nil then
    handle:respond({[":status"] = "403"}, "origin not allowed by the CORS policy")
  else
    handle:respond({[":status"] = "404"}, "no such route")
  end
end
"""


LUA_STRIP_BINARY_HEADERS = """
function envoy_on_request(handle)
  local headers = handle:headers()
  local binary = {}
  for key, _ in pairs(headers) do
    if string.sub(key, -4) == "-bin" then
      binary[#binary + 1] = key
    end
  end
  for _, key in ipairs(binary) do
    headers:remove(key)
  end
end
"""


def _preflight_route() -> dict[str, Any]:
    """OPTIONS on any path: needs a real route (not a direct response) for the CORS filter to act on it.

    Without it, OPTIONS matches no REST route (each matches its verb), ends on the catch-all direct
    response, and the CORS filter never answers.  The cluster is never contacted: the CORS filter or
    the Lua script above always answers first.
    """
    return {
        "name": "cors-preflight",
        "match": {"prefix": "/", "headers": [_method_header("options")]},
        "route": {"cluster": "prover", "timeout": "5s"},
        "typed_per_filter_config": {
            _TRANSCODER: _transcoder_disabled(),
            _LOCAL_RATELIMIT: _rate_limit_off(),
            _LUA: {"@type": "type.googleapis.com/envoy.extensions.filters.http.lua.v3.LuaPerRoute",
                   "source_code": {"inline_string": LUA_PREFLIGHT_REFUSED}},
        },
    }


def _http_filters(cfg: GatewayConfig, descriptor: Path) -> list[dict[str, Any]]:
    filters: list[dict[str, Any]] = [
        {
            # First in the chain: gRPC's status headers mean nothing to a REST client (docs/architecture.md §10:
            # removing them here is safe, unlike route-level removal which turns errors into 200s).
            "name": "envoy.filters.http.header_mutation",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.header_mutation.v3.HeaderMutation",
                "mutations": {"response_mutations": [
                    {"remove": "grpc-status"}, {"remove": "grpc-message"}, {"remove": "grpc-accept-encoding"},
                    {"remove": "x-envoy-upstream-service-time"},
                    # Left only on replies the error-body script did not see (its own Lua-made ones).
                    {"remove": LOCAL_REPLY_HEADER},
                ]},
            },
        },
    ]
    if cfg.cors_origins:
        filters.append({"name": "envoy.filters.http.cors",
                        "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors"}})
    filters += [
        {
            # grpc base64-decodes metadata whose name ends in "-bin"; a client's junk "x-foo-bin" header
            # would otherwise turn any request into a 500 with grpc's own text (docs/architecture.md §10).
            "name": "teeprover.strip_binary_headers",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua",
                "default_source_code": {"inline_string": LUA_STRIP_BINARY_HEADERS},
            },
        },
        {
            "name": "envoy.filters.http.lua",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua",
                "default_source_code": {"inline_string": LUA_ERROR_BODY.read_text()},
            },
        },
        {
            # Enabled per route (protected routes, fetch-params); no global bucket.
            "name": "envoy.filters.http.local_ratelimit",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit",
                "stat_prefix": "ratelimit_off",
            },
        },
        {
            # 413 before the body reaches Python; the transcoded frame is a little larger than
            # the raw body, so Envoy allows a small margin and Python enforces the exact limit.
            "name": "envoy.filters.http.buffer",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.buffer.v3.Buffer",
                "max_request_bytes": cfg.max_body_bytes + 1024,
            },
        },
        {
            "name": "envoy.filters.http.grpc_json_transcoder",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.grpc_json_transcoder.v3.GrpcJsonTranscoder",
                "proto_descriptor": str(descriptor),
                "services": ["teeprover.v1.Prover", "teeprover.v1.Attestor", "teeprover.v1.Params"],
                "match_incoming_request_route": True,
                "convert_grpc_status": True,
                "print_options": {"add_whitespace": False, "always_print_primitive_fields": True,
                                  "preserve_proto_field_names": True},
                "request_validation_options": {"reject_unknown_method": True,
                                               "reject_unknown_query_parameters": True},
            },
        },
        {"name": "envoy.filters.http.router",
         "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}},
    ]
    return filters


def _drain_route() -> dict[str, Any]:
    """First in the table; matches nothing until the gateway drains (``DRAIN_RUNTIME_KEY`` at 100 %)."""
    return {
        "name": "draining",
        "match": {"prefix": "/", "runtime_fraction": {
            "default_value": {"numerator": 0, "denominator": "HUNDRED"}, "runtime_key": DRAIN_RUNTIME_KEY}},
        "direct_response": {"status": 503, "body": {"inline_string": DRAIN_MESSAGE}},
        "response_headers_to_add": [{"header": {"key": "retry-after", "value": str(DRAIN_RETRY_AFTER_S)},
                                     "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"}],
        "typed_per_filter_config": {_TRANSCODER: _transcoder_disabled(), _LOCAL_RATELIMIT: _rate_limit_off()},
    }


def _method_not_allowed_routes(routes: list[HttpRoute]) -> list[dict[str, Any]]:
    """A known path with a method it does not take: 405 with ``Allow`` (after every method's own route)."""
    verbs: dict[str, list[str]] = {}
    for r in routes:
        verbs.setdefault(r.path, [])
        if r.verb.upper() not in verbs[r.path]:
            verbs[r.path].append(r.verb.upper())
    out = []
    for path, allowed in verbs.items():
        allow = ", ".join(allowed)
        out.append({
            "name": f"method-not-allowed:{path}",
            "match": _path_match(path),
            "direct_response": {"status": 405, "body": {"inline_string": f"{path} takes only {allow}"}},
            "response_headers_to_add": [{"header": {"key": "allow", "value": allow},
                                         "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"}],
            "typed_per_filter_config": {_TRANSCODER: _transcoder_disabled(), _LOCAL_RATELIMIT: _rate_limit_off()},
        })
    return out


def _virtual_host(cfg: GatewayConfig, routes: list[HttpRoute]) -> dict[str, Any]:
    table: list[dict[str, Any]] = [_drain_route()]
    table += [route for r in routes for route in _routes(r, cfg)]
    if cfg.cors_origins:
        table.append(_preflight_route())
    table += _method_not_allowed_routes(routes)
    table.append({
        # Anything else — including raw application/grpc calls — is not public.
        "name": "not-found",
        "match": {"prefix": "/"},
        "direct_response": {"status": 404, "body": {"inline_string": "no such route"}},
        "typed_per_filter_config": {_TRANSCODER: _transcoder_disabled(), _LOCAL_RATELIMIT: _rate_limit_off()},
    })
    per_filter: dict[str, Any] = {_LOCAL_RATELIMIT: _protected_rate_limit(cfg)}
    if cfg.cors_origins:
        per_filter["envoy.filters.http.cors"] = {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy",
            "allow_origin_string_match": [{"exact": o} for o in cfg.cors_origins],
            "allow_methods": "GET, POST, OPTIONS",
            "allow_headers": "content-type, x-api-key, x-request-id",
            "expose_headers": "x-request-id, retry-after, deprecation, x-ratelimit-limit, x-ratelimit-remaining, "
                              "x-ratelimit-reset",
            "max_age": "600",
        }
    return {"name": "public", "domains": ["*"], "routes": table, "typed_per_filter_config": per_filter}


def _listener(name: str, port: int, cfg: GatewayConfig, routes: list[HttpRoute], descriptor: Path,
              tls: dict[str, Any] | None) -> dict[str, Any]:
    hcm = {
        "@type": _HCM_TYPE,
        "stat_prefix": name,
        "codec_type": "AUTO",
        # The client address is the TCP peer, never X-Forwarded-For (rate limits cannot be rotated).
        "use_remote_address": True,
        "generate_request_id": True,
        "always_set_request_id_in_response": True,
        "preserve_external_request_id": False,
        "stream_idle_timeout": "720s",
        "request_timeout": "0s",
        "local_reply_config": _local_reply_config(cfg),
        "route_config": {"name": "public", "virtual_hosts": [_virtual_host(cfg, routes)]},
        "http_filters": _http_filters(cfg, descriptor),
    }
    chain: dict[str, Any] = {
        "filters": [{"name": "envoy.filters.network.http_connection_manager", "typed_config": hcm}]}
    if tls is not None:
        chain["transport_socket"] = tls
    return {
        "name": name,
        "address": {"socket_address": {"address": cfg.bind_host, "port_value": port}},
        "filter_chains": [chain],
    }


# TLS 1.2 cipher order of the spec; TLS 1.3 suites are fixed by BoringSSL.
TLS12_CIPHERS = [
    "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-CHACHA20-POLY1305",
    "ECDHE-RSA-CHACHA20-POLY1305",
    "ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-RSA-AES128-GCM-SHA256",
]


def _tls_socket(cfg: GatewayConfig) -> dict[str, Any]:
    return {
        "name": "envoy.transport_sockets.tls",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
            "common_tls_context": {
                "alpn_protocols": ["h2", "http/1.1"],
                "tls_params": {
                    "tls_minimum_protocol_version": "TLSv1_2",
                    "tls_maximum_protocol_version": "TLSv1_3",
                    "cipher_suites": TLS12_CIPHERS,
                    "ecdh_curves": ["X25519MLKEM768", "X25519", "P-256"],
                },
                "tls_certificates": [{"certificate_chain": {"filename": str(cfg.tls_cert)},
                                      "private_key": {"filename": str(cfg.tls_key)}}],
            },
        },
    }


def _cluster(name: str, port: int) -> dict[str, Any]:
    return {
        "name": name,
        "type": "STATIC",
        "connect_timeout": "1s",
        "typed_extension_protocol_options": {
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                "explicit_http_config": {"http2_protocol_options": {}},
            }
        },
        # A dead single host must give a clean 503, not panic-mode traffic (docs/architecture.md §10).
        "common_lb_config": {"healthy_panic_threshold": {"value": 0}},
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [{"lb_endpoints": [{"endpoint": {"address": {"socket_address": {
                "address": "127.0.0.1", "port_value": port}}}}]}],
        },
    }


def render(cfg: GatewayConfig, descriptor: Path = DESCRIPTOR) -> str:
    routes = http_routes(descriptor)
    missing = [r.rpc for r in routes if r.rpc not in POLICIES]
    if missing:
        raise ValueError(f"no gateway policy for {missing}")
    listeners = [_listener("http", cfg.port, cfg, routes, descriptor, None)]
    if cfg.tls_port:
        listeners.append(_listener("https", cfg.tls_port, cfg, routes, descriptor, _tls_socket(cfg)))
    clusters = [_cluster("prover", cfg.prover_port), _cluster("attestor", cfg.attestor_port),
                _cluster("params", cfg.params_port)]
    return string.Template(TEMPLATE.read_text()).substitute(
        admin_port=cfg.admin_port, listeners=json.dumps(listeners), clusters=json.dumps(clusters))
