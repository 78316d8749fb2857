"""One frozen, typed configuration object per service, built once from the environment.

Every key is ``TEEPROVER_<FIELD>`` with the field's default in the class; any
``TEEPROVER_*`` key that no service knows fails at start (a typo must never be
silently ignored).  Core code never reads ``os.environ``: servers build their
config here and pass values down.  Keys with the client prefix ``TEEPROVER_CLIENT_``
belong to the command-line client (teeprover/clientconfig.py): the servers leave its
known keys alone, so a shell set up for the client can start a server.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar, get_type_hints

from services.common import transport
from teeprover.circuits import demo_params_k
from teeprover.clientconfig import CLIENT_KEYS

PREFIX = "TEEPROVER_"
DEV_PARAMS_MAX_K_LIMIT = 16  # serve all's development parameters; larger k: a real manifest


class ConfigError(ValueError):
    """A configuration that cannot start: unknown key, bad value, inconsistent fields."""


def _default_cache_dir() -> Path:
    return Path(os.path.expanduser("~")) / ".cache" / "midnight"


@dataclass(frozen=True)
class CommonConfig:
    bind_host: str = "127.0.0.1"
    log_level: str = "INFO"
    otel_exporter: str = "none"  # none | console | otlp
    otel_sample_ratio: float = 0.1  # errors are always sampled
    metrics_port: int = 9100  # 0 disables the Prometheus endpoint
    max_body_bytes: int = 10 * 1024 * 1024
    shutdown_grace: float = 30.0
    runtime_dir: Path | None = None  # where generated files (Envoy config, dev key hash) go

    def validate(self) -> None:
        """Run the ``_checks`` of every class in the hierarchy once (cross-field validation)."""
        for klass in reversed(type(self).__mro__):
            check = klass.__dict__.get("_checks")
            if check is not None:
                check(self)

    def _checks(self) -> None:
        if self.log_level.upper() not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ConfigError(f"TEEPROVER_LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR, not {self.log_level!r}")
        if self.otel_exporter not in {"none", "console", "otlp"}:
            raise ConfigError(f"TEEPROVER_OTEL_EXPORTER must be none, console or otlp, not {self.otel_exporter!r}")
        if not 0.0 <= self.otel_sample_ratio <= 1.0:
            raise ConfigError("TEEPROVER_OTEL_SAMPLE_RATIO must be between 0 and 1")
        if self.max_body_bytes < 1024:
            raise ConfigError("TEEPROVER_MAX_BODY_BYTES must be at least 1024")
        if self.bind_host.startswith(("unix:", "vsock:")):  # the enclave forms (services/common/transport.py)
            try:
                transport.grpc_listen_target(self.bind_host, 0, "service")
            except ValueError as exc:
                raise ConfigError(f"TEEPROVER_BIND_HOST: {exc}") from None


@dataclass(frozen=True)
class ProverConfig(CommonConfig):
    prover_port: int = 50051
    params_port: int = 50053
    num_workers: int = field(default_factory=lambda: os.cpu_count() or 1)
    job_capacity: int = 0
    job_timeout: float = 600.0
    api_keys: tuple[str, ...] = ()
    api_keys_file: Path | None = None
    disable_auth: bool = False
    cache_dir: Path = field(default_factory=_default_cache_dir)
    keys_dir: Path | None = None  # circuit key store; default CACHE_DIR/keys
    hpke_public_key_file: Path | None = None  # where the prover publishes its HPKE key for the attestor
    # Midnight's built-in keys set up in the background after start: all | none | a comma list of locations
    builtin_keys: str = "all"
    builtin_dev_params: bool = False  # generate missing INSECURE dev parameters for them (set by `serve all`)
    memory_budget: int = 0  # bytes all proof workers may hold; 0 = 80 % of the cgroup limit or RAM
    build_date_override: str = ""  # the build date /version reports (images set it); "" = the install time

    def _checks(self) -> None:
        if self.memory_budget < 0:
            raise ConfigError("TEEPROVER_MEMORY_BUDGET must be >= 0 bytes (0 = 80 % of the cgroup limit or RAM)")
        if not 1 <= self.num_workers <= 64:
            raise ConfigError("TEEPROVER_NUM_WORKERS must be between 1 and 64")
        if self.job_capacity < 0:
            raise ConfigError("TEEPROVER_JOB_CAPACITY must be >= 0 (0 = unbounded)")
        if self.job_timeout <= 0:
            raise ConfigError("TEEPROVER_JOB_TIMEOUT must be > 0")
        from teeprover.builtin_keys import parse_selection
        from teeprover.errors import InvalidInput

        try:
            parse_selection(self.builtin_keys)
        except InvalidInput as exc:
            raise ConfigError(f"TEEPROVER_BUILTIN_KEYS: {exc.message}") from None

    def require_api_keys(self) -> None:
        """The prover refuses to start without keys unless auth is explicitly disabled."""
        if not self.disable_auth and not self.api_keys and self.api_keys_file is None:
            raise ConfigError(
                "no API keys: set TEEPROVER_API_KEYS or TEEPROVER_API_KEYS_FILE "
                "(or TEEPROVER_DISABLE_AUTH=true for development only)"
            )


@dataclass(frozen=True)
class AttestorConfig(CommonConfig):
    attestor_port: int = 50052
    platform: str = "auto"
    tls_cert: Path | None = None
    hpke_public_key_file: Path | None = None
    # Where evidence collection fetches what the TEE itself cannot produce:
    pccs_url: str = "https://api.trustedservices.intel.com"  # TDX collateral (Intel PCS or a caching PCCS)
    maa_url: str = ""  # Azure: the Microsoft Azure Attestation provider, e.g. https://sharedeus2.eus2.attest.azure.net
    imds_url: str = "http://169.254.169.254"  # Azure instance metadata (THIM: the VCEK chain)

    def _checks(self) -> None:
        for name in ("pccs_url", "maa_url", "imds_url"):
            value = getattr(self, name)
            if value and not value.startswith(("https://", "http://")):
                raise ConfigError(f"TEEPROVER_{name.upper()} must be an http(s) URL, not {value!r}")
        allowed = {"auto", "aws-nitro", "sev-snp", "tdx", "gcp-vtpm", "azure", "simulated"}
        if self.platform not in allowed:
            raise ConfigError(f"TEEPROVER_PLATFORM must be one of {sorted(allowed)}, not {self.platform!r}")


@dataclass(frozen=True)
class ParamsConfig(CommonConfig):
    params_port: int = 50053
    cache_dir: Path = field(default_factory=_default_cache_dir)
    params_manifest: Path | None = None  # None = the bundled development manifest
    fetch_params: bool = True
    params_disk_budget: int = 0  # bytes; 0 = unlimited

    def _checks(self) -> None:
        if self.params_disk_budget < 0:
            raise ConfigError("TEEPROVER_PARAMS_DISK_BUDGET must be >= 0")


@dataclass(frozen=True)
class GatewayConfig(CommonConfig):
    port: int = 6300
    tls_port: int = 0  # 0 = no HTTPS listener
    tls_cert: Path | None = None
    tls_key: Path | None = None
    admin_port: int = 9901
    prover_port: int = 50051
    attestor_port: int = 50052
    params_port: int = 50053
    rate_limit_rps: int = 10
    rate_limit_burst: int = 20
    fetch_rate_per_hour: int = 1
    cors_origins: tuple[str, ...] = ()
    fetch_params: bool = True
    envoy_concurrency: int = 2
    allow_plain_http_public: bool = False  # plain HTTP on a non-loopback address needs this explicit opt-in

    def _checks(self) -> None:
        if self.bind_host.startswith("unix:"):
            raise ConfigError("TEEPROVER_BIND_HOST: Envoy's listeners are TCP; unix:/DIR is for the prover and "
                              "attestor inside an enclave (docs/deploy.md)")
        if self.tls_port and (self.tls_cert is None or self.tls_key is None):
            raise ConfigError("TEEPROVER_TLS_PORT needs TEEPROVER_TLS_CERT and TEEPROVER_TLS_KEY")
        if not self.tls_port and not self.allow_plain_http_public and not self.binds_loopback_only():
            raise ConfigError(
                f"refusing plain HTTP on the non-loopback address {self.bind_host!r}: set TEEPROVER_TLS_PORT, "
                "TEEPROVER_TLS_CERT and TEEPROVER_TLS_KEY, or TEEPROVER_ALLOW_PLAIN_HTTP_PUBLIC=true when TLS "
                "is terminated in front of the gateway")
        if self.rate_limit_rps < 1 or self.rate_limit_burst < 1:
            raise ConfigError("rate limits must be >= 1")

    def binds_loopback_only(self) -> bool:
        """True when ``bind_host`` is ``localhost`` or a loopback literal (127.0.0.0/8, ::1)."""
        import ipaddress

        host = self.bind_host.strip().strip("[]")
        if host.lower() == "localhost":
            return True
        try:
            return ipaddress.ip_address(host).is_loopback
        except ValueError:
            return False


@dataclass(frozen=True)
class SupervisorConfig(GatewayConfig, ProverConfig, AttestorConfig, ParamsConfig):
    """Everything ``teeprover serve all`` needs: the union of every service's keys."""

    dev_params_max_k: int = 12  # embedded default: generate INSECURE dev parameters for k = 10..this

    def _checks(self) -> None:
        # The first start sets up the demo circuits' keys from these parameters: they must reach the largest
        # demo circuit's k (computed from the circuits that ship, not written down here).
        least, circuit = demo_params_k()
        if not least <= self.dev_params_max_k <= DEV_PARAMS_MAX_K_LIMIT:
            raise ConfigError(f"TEEPROVER_DEV_PARAMS_MAX_K must be between {least} and {DEV_PARAMS_MAX_K_LIMIT}, "
                              f"not {self.dev_params_max_k}: the first start sets up the keys of the demo "
                              f"circuit {circuit}, whose k is {least}")


_ALL_CONFIGS: tuple[type, ...] = (ProverConfig, AttestorConfig, ParamsConfig, GatewayConfig, SupervisorConfig)
KNOWN_KEYS = frozenset(PREFIX + f.name.upper() for cls in _ALL_CONFIGS for f in fields(cls))

T = TypeVar("T", bound=CommonConfig)


def _parse(name: str, raw: str, typ: Any) -> Any:
    text = raw.strip()
    try:
        if typ is bool:
            if text.lower() in {"1", "true", "yes", "on"}:
                return True
            if text.lower() in {"0", "false", "no", "off", ""}:
                return False
            raise ValueError(raw)
        if typ is int:
            return int(text)
        if typ is float:
            return float(text)
        if typ is str:
            return text
        if typ == Path | None or typ is Path:
            return Path(os.path.expanduser(text)) if text else None
        if typ == tuple[str, ...]:
            return tuple(p.strip() for p in text.split(",") if p.strip())
    except ValueError:
        raise ConfigError(f"{PREFIX}{name.upper()}: cannot parse {raw!r} as {getattr(typ, '__name__', typ)}") from None
    raise ConfigError(f"{PREFIX}{name.upper()}: unsupported type {typ}")


def load(cls: type[T], environ: Mapping[str, str] | None = None, **overrides: Any) -> T:
    """Build and validate ``cls`` from ``environ`` (default ``os.environ``); unknown keys fail."""
    env = os.environ if environ is None else environ
    unknown = sorted(k for k in env if k.startswith(PREFIX) and k not in KNOWN_KEYS and k not in CLIENT_KEYS)
    if unknown:
        raise ConfigError(f"unknown configuration keys: {', '.join(unknown)} (known: {', '.join(sorted(KNOWN_KEYS))})")
    hints = get_type_hints(cls)
    values: dict[str, Any] = {}
    for f in fields(cls):
        key = PREFIX + f.name.upper()
        if key in env:
            values[f.name] = _parse(f.name, env[key], hints[f.name])
    values.update(overrides)
    config = cls(**values)
    config.validate()
    return config


def to_environ(config: CommonConfig) -> dict[str, str]:
    """The environment that reproduces ``config`` (used by the supervisor for its children)."""
    env: dict[str, str] = {}
    for f in fields(config):
        value = getattr(config, f.name)
        if value is None:
            continue
        if isinstance(value, tuple):
            value = ",".join(value)
        elif isinstance(value, bool):
            value = "true" if value else "false"
        env[PREFIX + f.name.upper()] = str(value)
    return env


def replace(config: T, **changes: Any) -> T:
    new = dataclasses.replace(config, **changes)
    new.validate()
    return new
