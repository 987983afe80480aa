"""Layered configuration: defaults < YAML file < environment < command-line flags.

One schema for the whole suite (`config/websocket_config.yaml` keeps the original keys); each
service reads the sections it needs. Errors name the key: ``config error: server.port: ...``.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import msgspec
import yaml


class ServerConfig(msgspec.Struct, forbid_unknown_fields=True):
    host: str = "0.0.0.0"
    port: int = 8765
    max_connections: int = 10000
    max_subscriptions_per_client: int = 500
    max_message_bytes: int = 65536  # larger inbound messages get MESSAGE_TOO_LARGE
    max_frame_bytes: int = 1048576  # larger frames close the connection with 1009
    max_messages_per_second: float = 50.0  # inbound; beyond: RATE_LIMITED
    rate_limit_burst: int = 100
    rate_limit_strikes: int = 20  # RATE_LIMITED replies within 10 s before close 1008
    heartbeat_interval: float = 30.0
    outbox_bytes: int = 1048576  # per-connection bound on queued frames
    write_buffer_high: int = 262144  # transport bytes above which a client counts as behind
    flush_interval_ms: float = 0.0  # 0: write at the end of each loop turn; >0: gather that long first
    flush_budget_ms: float = 4.0  # longest a pass over dirty sockets holds the loop before yielding
    slow_consumer: Literal["gap", "close"] = "gap"
    drain_seconds: float = 5.0  # SIGTERM: time between STATUS draining and close 1012
    reconnect_after_ms: int = 1000
    permessage_deflate: bool = False
    gateway_id: str = ""  # empty: host-pid-random
    max_history: int = 2000  # most entries a SUBSCRIBE's `history` may ask per stream
    # Hostile input (README "Security"): what one request, one client, one address may cost.
    max_items_per_request: int = 1000  # streams one SUBSCRIBE/UNSUBSCRIBE names (and entries of any list)
    rate_limit_items_per_token: int = 50  # a request costs one more rate-limit token per this many streams
    max_rejections_listed: int = 20  # SUBSCRIBED lists this many rejected items, then only counts
    max_gateway_streams: int = 100000  # distinct streams one gateway holds (and announces as demand)
    handshake_timeout: float = 10.0  # seconds to send the request headers; also idle HTTP keep-alive
    max_connections_per_ip: int = 0  # open connections per client address; 0: no limit
    trusted_proxies: list[str] = []  # addresses/networks whose X-Forwarded-For names the client


class DatasourceConfig(msgspec.Struct, forbid_unknown_fields=True):
    source_type: str = "mock"
    update_interval: float = 1.0  # seconds between updates per symbol (the original key)
    always_on: list[str] = []
    status_interval: float = 5.0
    options: dict[str, dict[str, Any]] = {}  # per-source settings, e.g. options.tdx.hosts


class SecurityConfig(msgspec.Struct, forbid_unknown_fields=True):
    enable_auth: bool = False
    allowed_origins: list[str] = msgspec.field(default_factory=lambda: ["*"])
    api_keys: list[str] = []
    jwt_secret: str = ""
    auth_timeout: float = 10.0
    max_unauthenticated: int = 1000  # sessions waiting for their AUTH message; beyond: close 1013
    jwt_algorithms: list[str] = msgspec.field(default_factory=lambda: ["HS256", "RS256", "ES256"])
    jwt_public_key: str = ""  # PEM (or a path to one) for RS256/ES256
    jwt_jwks_url: str = ""  # JWKS for RS256/ES256, fetched and cached
    jwt_jwks_cache: float = 300.0  # seconds a fetched JWKS is trusted before it is fetched again
    jwt_jwks_timeout: float = 3.0  # seconds a JWKS fetch may take
    jwt_jwks_refetch_interval: float = 10.0  # an unknown `kid` refetches at most this often
    jwt_audience: str = ""  # required `aud` when set
    jwt_issuer: str = ""  # required `iss` when set
    jwt_leeway: float = 10.0  # seconds of clock skew allowed on `exp` and `nbf`
    tls_cert: str = ""
    tls_key: str = ""


class NatsConfig(msgspec.Struct, forbid_unknown_fields=True):
    url: str = "nats://127.0.0.1:4222"
    subject_prefix: str = ""
    demand_refresh: float = 5.0
    demand_ttl: float = 15.0
    user: str = ""
    password: str = ""
    token: str = ""
    creds: str = ""
    tls_ca: str = ""


_DAY = 86400.0
_MIB = 1024 * 1024


class StoreLimits(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """One retention stream's bounds; a key left out takes that store's default (`DEFAULT_LIMITS`)."""

    per_subject: int | None = None  # entries kept per subject (bars per symbol and period, trades...)
    max_bytes: int | None = None  # the whole stream, so client-chosen symbols cannot grow it without bound
    max_age: float | None = None  # seconds; 0: no age limit


DEFAULT_LIMITS: dict[str, tuple[int, int, float]] = {
    "last": (1, 128 * _MIB, 7 * _DAY),  # quotes, forming bars and minutes
    "tick": (1500, 256 * _MIB, 7 * _DAY),  # finished 分时 minutes: a 24-hour day fits
    "kline": (1000, 512 * _MIB, 1100 * _DAY),  # finished bars per period (1,000 daily bars take years)
    "trade": (2000, 256 * _MIB, 7 * _DAY),
}


class RetentionConfig(msgspec.Struct, forbid_unknown_fields=True):
    """JetStream streams holding recent market state (argus_protocol.retention names them)."""

    enabled: bool = True  # false: no snapshots, history or resume
    storage: Literal["memory", "file"] = "memory"
    replicas: int = 1
    last: StoreLimits = msgspec.field(default_factory=StoreLimits)
    tick: StoreLimits = msgspec.field(default_factory=StoreLimits)
    kline: StoreLimits = msgspec.field(default_factory=StoreLimits)
    trade: StoreLimits = msgspec.field(default_factory=StoreLimits)
    fetch_timeout: float = 3.0  # seconds a gateway waits for the store before answering without it

    def limits(self, kind: str) -> tuple[int, int, float]:
        """(per subject, max bytes, max age) for one store, defaults filled in."""
        given: StoreLimits = getattr(self, kind)
        per, size, age = DEFAULT_LIMITS[kind]
        return (
            per if given.per_subject is None else given.per_subject,
            size if given.max_bytes is None else given.max_bytes,
            age if given.max_age is None else given.max_age,
        )


class MetricsConfig(msgspec.Struct, forbid_unknown_fields=True):
    enabled: bool = True
    host: str = "0.0.0.0"
    port: int = 9090


class LoggingConfig(msgspec.Struct, forbid_unknown_fields=True):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    file: str = "logs/websocket_server.log"  # "" disables the file
    max_bytes: int = 10 * 1024 * 1024
    backup_count: int = 5
    stats_interval: float = 60.0
    format: Literal["json", "text"] = "json"


class TracingConfig(msgspec.Struct, forbid_unknown_fields=True):
    enabled: bool = False
    exporter: Literal["otlp", "console"] = "otlp"  # otlp needs opentelemetry-exporter-otlp-proto-http
    endpoint: str = "http://127.0.0.1:4318/v1/traces"
    sample_ratio: float = 1.0


class Config(msgspec.Struct, forbid_unknown_fields=True):
    server: ServerConfig = msgspec.field(default_factory=ServerConfig)
    datasource: DatasourceConfig = msgspec.field(default_factory=DatasourceConfig)
    security: SecurityConfig = msgspec.field(default_factory=SecurityConfig)
    nats: NatsConfig = msgspec.field(default_factory=NatsConfig)
    retention: RetentionConfig = msgspec.field(default_factory=RetentionConfig)
    metrics: MetricsConfig = msgspec.field(default_factory=MetricsConfig)
    logging: LoggingConfig = msgspec.field(default_factory=LoggingConfig)
    tracing: TracingConfig = msgspec.field(default_factory=TracingConfig)


class ConfigError(Exception):
    """One line naming the key and the problem; services print it and exit 2."""


# Environment variable -> dotted key. The first six are the original project's names.
ENV_KEYS: dict[str, str] = {
    "WEBSOCKET_HOST": "server.host",
    "WEBSOCKET_PORT": "server.port",
    "DATASOURCE_TYPE": "datasource.source_type",
    "LOG_LEVEL": "logging.level",
    "ENABLE_AUTH": "security.enable_auth",
    "NATS_URL": "nats.url",
    "MAX_CONNECTIONS": "server.max_connections",
    "WEBSOCKET_PERMESSAGE_DEFLATE": "server.permessage_deflate",
    "WEBSOCKET_FLUSH_INTERVAL_MS": "server.flush_interval_ms",
    "METRICS_PORT": "metrics.port",
    "LOG_FILE": "logging.file",
    "NATS_SUBJECT_PREFIX": "nats.subject_prefix",
    "NATS_USER": "nats.user",
    "NATS_PASSWORD": "nats.password",
    "NATS_TOKEN": "nats.token",
    "NATS_CREDS": "nats.creds",
    "NATS_TLS_CA": "nats.tls_ca",
    "ARGUS_API_KEYS": "security.api_keys",
    "ARGUS_JWT_SECRET": "security.jwt_secret",
    "OTEL_ENABLED": "tracing.enabled",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "tracing.endpoint",
    "ARGUS_RETENTION": "retention.enabled",
    "ARGUS_RETENTION_STORAGE": "retention.storage",
    "ARGUS_RETENTION_REPLICAS": "retention.replicas",
}

_LIST_KEYS = {"security.api_keys", "security.allowed_origins", "datasource.always_on"}


def _set(tree: dict[str, Any], dotted: str, value: Any) -> None:
    node = tree
    parts = dotted.split(".")
    for p in parts[:-1]:
        child = node.get(p)
        if not isinstance(child, dict):
            child = node[p] = {}
        node = child
    node[parts[-1]] = value


def _read_file(path: str) -> dict[str, Any]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"config error: cannot read {path}: {e.strerror or e}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigError(f"config error: {path}{where}: invalid YAML: {problem}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config error: {path}: top level must be a mapping of sections")
    return data


def _env_value(dotted: str, raw: str) -> Any:
    if dotted in _LIST_KEYS or dotted.endswith(".hosts"):
        return [item.strip() for item in raw.split(",") if item.strip()]
    return raw


def _validation_message(err: msgspec.ValidationError) -> str:
    # msgspec says "Expected `int`, got `str` - at `$.server.port`"; lead with the key instead.
    text = str(err)
    if " - at `$." in text:
        problem, _, where = text.rpartition(" - at `$.")
        key = where.rstrip("`").replace("[", ".").replace("]", "")
        return f"config error: {key}: {problem[0].lower()}{problem[1:]}"
    if text.startswith("Object contains unknown field"):
        return f"config error: unknown key: {text.split('`')[1] if '`' in text else text}"
    return f"config error: {text}"


def build_config(
    file_path: str | None,
    env: Mapping[str, str],
    overrides: Mapping[str, Any],
    env_keys: Mapping[str, str] | None = None,
    *,
    cls: type[Any] = Config,
) -> Any:
    """Merge the layers and validate; raises ConfigError."""
    tree: dict[str, Any] = _read_file(file_path) if file_path else {}
    for var, dotted in {**ENV_KEYS, **(env_keys or {})}.items():
        if var in env and env[var] != "":
            _set(tree, dotted, _env_value(dotted, env[var]))
    for dotted, value in overrides.items():
        if value is not None:
            _set(tree, dotted, value)
    try:
        cfg = msgspec.convert(tree, cls, strict=False)
    except msgspec.ValidationError as e:
        # unknown nested keys report their path too
        msg = _validation_message(e)
        raise ConfigError(msg) from None
    _check(cfg)
    return cfg


def _check(cfg: Any) -> None:
    if not isinstance(cfg, Config):
        return
    for key, port in (("server.port", cfg.server.port), ("metrics.port", cfg.metrics.port)):
        if not 0 <= port <= 65535:
            raise ConfigError(f"config error: {key}: {port} is not a port (0-65535)")
    positives = {
        "server.max_connections": cfg.server.max_connections,
        "server.max_subscriptions_per_client": cfg.server.max_subscriptions_per_client,
        "server.max_message_bytes": cfg.server.max_message_bytes,
        "server.heartbeat_interval": cfg.server.heartbeat_interval,
        "server.outbox_bytes": cfg.server.outbox_bytes,
        "server.flush_budget_ms": cfg.server.flush_budget_ms,
        "server.max_messages_per_second": cfg.server.max_messages_per_second,
        "datasource.update_interval": cfg.datasource.update_interval,
        "nats.demand_refresh": cfg.nats.demand_refresh,
        "server.max_history": cfg.server.max_history,
        "server.max_items_per_request": cfg.server.max_items_per_request,
        "server.rate_limit_items_per_token": cfg.server.rate_limit_items_per_token,
        "server.max_rejections_listed": cfg.server.max_rejections_listed,
        "server.max_gateway_streams": cfg.server.max_gateway_streams,
        "server.handshake_timeout": cfg.server.handshake_timeout,
        "server.rate_limit_burst": cfg.server.rate_limit_burst,
        "security.auth_timeout": cfg.security.auth_timeout,
        "security.max_unauthenticated": cfg.security.max_unauthenticated,
        "security.jwt_jwks_cache": cfg.security.jwt_jwks_cache,
        "security.jwt_jwks_timeout": cfg.security.jwt_jwks_timeout,
        "retention.replicas": cfg.retention.replicas,
        "retention.fetch_timeout": cfg.retention.fetch_timeout,
    }
    for kind in DEFAULT_LIMITS:
        per, size, age = cfg.retention.limits(kind)
        positives[f"retention.{kind}.per_subject"] = per
        positives[f"retention.{kind}.max_bytes"] = size
        if age < 0:
            raise ConfigError(f"config error: retention.{kind}.max_age: must be >= 0, got {age}")
    if cfg.retention.replicas > 5:
        raise ConfigError(f"config error: retention.replicas: JetStream allows at most 5, got {cfg.retention.replicas}")
    for key, value in positives.items():
        if value <= 0:
            raise ConfigError(f"config error: {key}: must be > 0, got {value}")
    if cfg.server.flush_interval_ms < 0:
        raise ConfigError(f"config error: server.flush_interval_ms: must be >= 0, got {cfg.server.flush_interval_ms}")
    if cfg.server.max_frame_bytes < cfg.server.max_message_bytes:
        raise ConfigError("config error: server.max_frame_bytes: must be >= server.max_message_bytes")
    if cfg.nats.demand_ttl <= cfg.nats.demand_refresh:
        raise ConfigError("config error: nats.demand_ttl: must be longer than nats.demand_refresh")
    if not 0.0 <= cfg.tracing.sample_ratio <= 1.0:
        raise ConfigError(f"config error: tracing.sample_ratio: must be within 0..1, got {cfg.tracing.sample_ratio}")
    _check_security(cfg)
    if not cfg.nats.url.startswith(("nats://", "tls://", "ws://", "wss://")):
        raise ConfigError(f"config error: nats.url: {cfg.nats.url!r} is not a nats:// or tls:// URL")


JWT_ALGORITHMS = ("HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "ES256", "ES384", "ES512")


def _check_security(cfg: Config) -> None:
    """The limits and JWT settings of the README's Security section."""
    srv, sec = cfg.server, cfg.security
    if srv.max_connections_per_ip < 0:
        raise ConfigError(
            f"config error: server.max_connections_per_ip: must be >= 0, got {srv.max_connections_per_ip}"
        )
    for item in srv.trusted_proxies:
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise ConfigError(
                f"config error: server.trusted_proxies: {item!r} is not an IP address or network"
            ) from None
    for key, value in (
        ("security.jwt_leeway", sec.jwt_leeway),
        ("security.jwt_jwks_refetch_interval", sec.jwt_jwks_refetch_interval),
    ):
        if value < 0:
            raise ConfigError(f"config error: {key}: must be >= 0, got {value}")
    for alg in sec.jwt_algorithms:
        if alg not in JWT_ALGORITHMS:
            raise ConfigError(
                f"config error: security.jwt_algorithms: {alg!r} is not one of {', '.join(JWT_ALGORITHMS)}"
            )
    key = sec.jwt_public_key
    if key and not key.lstrip().startswith("-----BEGIN") and not Path(key).is_file():
        raise ConfigError(f"config error: security.jwt_public_key: neither a PEM key nor a readable file: {key[:80]!r}")
    if sec.jwt_public_key and sec.jwt_jwks_url:
        raise ConfigError("config error: security.jwt_jwks_url: set either it or security.jwt_public_key, not both")
    if sec.jwt_jwks_url and not sec.jwt_jwks_url.startswith(("http://", "https://")):
        raise ConfigError(f"config error: security.jwt_jwks_url: {sec.jwt_jwks_url[:80]!r} is not an http(s) URL")


def common_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags every service takes."""
    parser.add_argument("--config", help="YAML config file (default: $ARGUS_CONFIG)")
    parser.add_argument("--host", help="listen host (server.host)")
    parser.add_argument("--port", type=_port_arg, help="listen port (server.port)")
    parser.add_argument("--log-level", type=str.upper, help="logging.level")
    parser.add_argument("--nats-url", help="nats.url")
    parser.add_argument("--metrics-port", type=_port_arg, help="metrics.port")


def _port_arg(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a port number") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a port (0-65535)")
    return value


COMMON_FLAG_KEYS = {
    "host": "server.host",
    "port": "server.port",
    "log_level": "logging.level",
    "nats_url": "nats.url",
    "metrics_port": "metrics.port",
}


def load_config(
    args: argparse.Namespace,
    env: Mapping[str, str] | None = None,
    flag_keys: Mapping[str, str] | None = None,
    env_keys: Mapping[str, str] | None = None,
) -> Config:
    env = os.environ if env is None else env
    overrides = {
        dotted: getattr(args, attr, None) for attr, dotted in {**COMMON_FLAG_KEYS, **(flag_keys or {})}.items()
    }
    path = args.config or env.get("ARGUS_CONFIG") or None
    cfg: Config = build_config(path, env, overrides, env_keys)
    return cfg
