"""Layered configuration: defaults < YAML file < environment < command-line flags.

One schema for the whole suite (`config/websocket_config.yaml` keeps the original keys); each
service reads the sections it needs. Errors name the key: ``config error: server.port: ...``.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import ipaddress
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec
import yaml
from argus_protocol.markets import MARKETS


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
    flush_interval_ms: float = 0.0  # >0: gather that long before each write; 0: adaptive (max_gather_ms)
    max_gather_ms: float = 20.0  # adaptive gathering's cap: a busy loop waits up to this before writing
    max_event_age_ms: float = 5000.0  # an event older on arrival is not sent live: GAP late + newest snapshot
    nats_grace: float = 10.0  # seconds without NATS before /readyz turns 503 (a blip keeps the Service)
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


Positive = Annotated[int, msgspec.Meta(gt=0)]
Seconds = Annotated[float, msgspec.Meta(gt=0)]


class HttpConfig(msgspec.Struct, forbid_unknown_fields=True):
    """The gateway's HTTP API (`/v1/...` on the WebSocket port): limits per call and per client."""

    enabled: bool = True
    max_bars: Annotated[int, msgspec.Meta(ge=1, le=100_000)] = 1000  # bars per /v1/bars call
    max_trades: Annotated[int, msgspec.Meta(ge=1, le=100_000)] = 2000  # trades per /v1/trades call
    max_symbols: Annotated[int, msgspec.Meta(ge=1, le=10_000)] = 500  # symbols per /v1/snapshot call
    max_calendar_days: Annotated[int, msgspec.Meta(ge=1, le=10_000)] = 400  # days per /v1/calendar call
    timeout: Seconds = 10.0  # an answer (retention plus the sources asked) within this, else UNAVAILABLE
    requests_per_second: Annotated[float, msgspec.Meta(gt=0)] = 20.0  # per client IP
    burst: Positive = 40
    max_clients: Positive = 10_000  # client IPs whose rate buckets are kept (idle ones go first)


class HistoryConfig(msgspec.Struct, forbid_unknown_fields=True):
    """Deep history asked of ingestors on `argus.history.<source>` (gateway and ingestor sides)."""

    # which sources a gateway asks for a market's symbols, in order; a market not listed: every
    # source alive (its STATUS heard, not down), in `order`
    sources: dict[str, list[str]] = {}
    order: list[str] = msgspec.field(default_factory=lambda: ["qmt", "tdx", "yahoo", "mock"])
    chunk_items: Annotated[int, msgspec.Meta(ge=1, le=5000)] = 500  # events per reply message
    max_items: Annotated[int, msgspec.Meta(ge=1, le=100_000)] = 5000  # events per answer at most
    cache_ttl: Annotated[float, msgspec.Meta(ge=0)] = 30.0  # ingestor: answers reused this long (0: never)
    quote_ttl: Annotated[float, msgspec.Meta(ge=0)] = 1.0  # ingestor: quote snapshots reused this long
    cache_entries: Positive = 512
    source_timeout: Seconds = 8.0  # ingestor: the upstream's answer within this, else UNAVAILABLE
    max_in_flight: Positive = 4  # ingestor: upstream history calls at once (the rest queue)


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


class LeaseConfig(msgspec.Struct, forbid_unknown_fields=True):
    """One publisher per source: the ingestor holds a lease in a JetStream KV bucket (libs/ingestor lease.py)."""

    enabled: bool = True
    bucket: str = "ARGUS_LEASES"
    ttl: float = 1.5  # seconds a lease outlives its last renewal; a standby takes over after it
    renew: float = 0.5  # seconds between renewals (and between a standby's attempts)
    replicas: int = 1  # KV bucket replicas: 3 on a 3-node NATS cluster


class FailoverConfig(msgspec.Struct, forbid_unknown_fields=True):
    """Source failover (libs/ingestor failover.py): per group of markets, its sources in order."""

    # "SH,SZ,BJ": [qmt, tdx, yahoo]: qmt publishes those markets while healthy, then tdx, then yahoo
    markets: dict[str, list[str]] = msgspec.field(default_factory=dict)
    recover_after: float = 30.0  # seconds a better source must be healthy before it takes a group back


class Config(msgspec.Struct, forbid_unknown_fields=True):
    server: ServerConfig = msgspec.field(default_factory=ServerConfig)
    datasource: DatasourceConfig = msgspec.field(default_factory=DatasourceConfig)
    security: SecurityConfig = msgspec.field(default_factory=SecurityConfig)
    nats: NatsConfig = msgspec.field(default_factory=NatsConfig)
    retention: RetentionConfig = msgspec.field(default_factory=RetentionConfig)
    http: HttpConfig = msgspec.field(default_factory=HttpConfig)
    history: HistoryConfig = msgspec.field(default_factory=HistoryConfig)
    metrics: MetricsConfig = msgspec.field(default_factory=MetricsConfig)
    logging: LoggingConfig = msgspec.field(default_factory=LoggingConfig)
    tracing: TracingConfig = msgspec.field(default_factory=TracingConfig)
    lease: LeaseConfig = msgspec.field(default_factory=LeaseConfig)
    failover: FailoverConfig = msgspec.field(default_factory=FailoverConfig)


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
    "WEBSOCKET_MAX_GATHER_MS": "server.max_gather_ms",
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
    "ARGUS_LEASE_TTL": "lease.ttl",
    "ARGUS_LEASE_RENEW": "lease.renew",
    "ARGUS_LEASE_REPLICAS": "lease.replicas",
    "ARGUS_FAILOVER": "failover.markets",
    "ARGUS_FAILOVER_RECOVER_AFTER": "failover.recover_after",
}

_LIST_KEYS = {"security.api_keys", "security.allowed_origins", "datasource.always_on"}
# An empty variable is normally "not set"; for these keys it is a value: LOG_FILE= means no file.
_EMPTY_IS_VALUE = {"logging.file"} | _LIST_KEYS
_BOOL_WORDS = {
    "1": True, "true": True, "yes": True, "y": True, "on": True,
    "0": False, "false": False, "no": False, "n": False, "off": False,
}  # fmt: skip


def yes_no(value: object) -> bool | None:
    """A yes/no word as operators write it (true/false, yes/no, on/off, 1/0, any case); None if not one."""
    if isinstance(value, bool):
        return value
    return _BOOL_WORDS.get(str(value).strip().lower())


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
    if dotted == "failover.markets":  # ARGUS_FAILOVER="SH,SZ,BJ=qmt,tdx,yahoo;HK=yahoo"
        groups = [part.partition("=") for part in raw.split(";") if part.strip()]
        return {k.strip(): [s.strip() for s in v.split(",") if s.strip()] for k, _, v in groups}
    if dotted in _LIST_KEYS or dotted.endswith(".hosts"):
        return [item.strip() for item in raw.split(",") if item.strip()]
    return raw


def _typed_leaves(info: Any, prefix: str = "") -> dict[str, Any]:
    """Dotted key -> msgspec type info for every bool and Literal field of the schema."""
    out: dict[str, Any] = {}
    for f in info.fields:
        key = f"{prefix}{f.name}"
        if isinstance(f.type, msgspec.inspect.StructType):
            out.update(_typed_leaves(f.type, f"{key}."))
        elif isinstance(f.type, msgspec.inspect.BoolType | msgspec.inspect.LiteralType):
            out[key] = f.type
    return out


def _get(tree: Mapping[str, Any], dotted: str) -> Any:
    node: Any = tree
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def _normalize(tree: dict[str, Any], cls: type[Any], origin: Mapping[str, str]) -> None:
    """Accept LOG_LEVEL=info, ENABLE_AUTH=yes, slow_consumer: GAP: words are case-insensitive."""
    for dotted, kind in _typed_leaves(msgspec.inspect.type_info(cls)).items():
        value = _get(tree, dotted)
        if not isinstance(value, str):
            continue
        word = value.strip()
        if isinstance(kind, msgspec.inspect.BoolType):
            flag = yes_no(word)
            if flag is None:
                raise ConfigError(
                    f"config error: {_where(dotted, origin)}: {value!r} is not a yes/no value (true/false, yes/no, on/off, 1/0)"
                )
            _set(tree, dotted, flag)
            continue
        choices = {str(v).lower(): v for v in kind.values}
        if word.lower() not in choices:
            allowed = ", ".join(str(v) for v in kind.values)
            raise ConfigError(f"config error: {_where(dotted, origin)}: {value!r} is not one of {allowed}")
        _set(tree, dotted, choices[word.lower()])


def _where(dotted: str, origin: Mapping[str, str]) -> str:
    """`server.port`, or `WEBSOCKET_PORT=abc (server.port)` when the value came from the environment."""
    return f"{origin[dotted]} ({dotted})" if dotted in origin else dotted


def _validation_message(err: msgspec.ValidationError, origin: Mapping[str, str] | None = None) -> str:
    # msgspec says "Expected `int`, got `str` - at `$.server.port`"; lead with the key instead.
    text = str(err)
    if " - at `$." in text:
        problem, _, where = text.rpartition(" - at `$.")
        key = where.rstrip("`").replace("[", ".").replace("]", "")
        return f"config error: {_where(key, origin or {})}: {problem[0].lower()}{problem[1:]}"
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
    origin: dict[str, str] = {}  # dotted key -> "VAR=value" for keys the environment set
    for var, dotted in {**ENV_KEYS, **(env_keys or {})}.items():
        if var in env and (env[var] != "" or dotted in _EMPTY_IS_VALUE):
            _set(tree, dotted, _env_value(dotted, env[var]))
            origin[dotted] = f"{var}={env[var]!r}" if len(env[var]) <= 40 else var
    for dotted, value in overrides.items():
        if value is not None:
            _set(tree, dotted, value)
            origin.pop(dotted, None)
    _normalize(tree, cls, origin)
    try:
        cfg = msgspec.convert(tree, cls, strict=False)
    except msgspec.ValidationError as e:
        # unknown nested keys report their path too
        msg = _validation_message(e, origin)
        raise ConfigError(msg) from None
    _check(cfg, origin)
    return cfg


def _check(cfg: Any, origin: Mapping[str, str] | None = None) -> None:
    try:
        _check_values(cfg)
    except ConfigError as e:
        # name the variable when the bad value came from the environment
        key = str(e).removeprefix("config error: ").split(":", 1)[0]
        if origin and key in origin:
            raise ConfigError(
                str(e).replace(f"config error: {key}:", f"config error: {_where(key, origin)}:", 1)
            ) from None
        raise


def _check_values(cfg: Any) -> None:
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
    if cfg.server.max_event_age_ms < 0 or cfg.server.nats_grace < 0:
        raise ConfigError("config error: server.max_event_age_ms and server.nats_grace: must be >= 0")
    if cfg.server.max_gather_ms < 0:
        raise ConfigError(f"config error: server.max_gather_ms: must be >= 0, got {cfg.server.max_gather_ms}")
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
    _check_lease(cfg.lease)
    _check_failover(cfg.failover)


def _check_failover(failover: FailoverConfig) -> None:
    if failover.recover_after < 0:
        raise ConfigError(f"config error: failover.recover_after: must be >= 0, got {failover.recover_after}")
    seen: dict[str, str] = {}
    for group, sources in failover.markets.items():
        markets = [m.strip() for m in group.split(",") if m.strip()]
        if not markets:
            raise ConfigError(f"config error: failover.markets: {group!r} names no market (e.g. SH,SZ,BJ=qmt,tdx)")
        for m in markets:
            if m not in MARKETS:
                raise ConfigError(f"config error: failover.markets: {m!r} is not a market ({', '.join(MARKETS)})")
            if m in seen:
                raise ConfigError(f"config error: failover.markets: {m} is in both {seen[m]!r} and {group!r}")
            seen[m] = group
        if not sources or len(set(sources)) != len(sources) or not all(sources):
            raise ConfigError(
                f"config error: failover.markets: {group!r}: needs its sources in order, each once, got {sources!r}"
            )


def _check_lease(lease: LeaseConfig) -> None:
    if lease.ttl <= 0:
        raise ConfigError(f"config error: lease.ttl: must be > 0, got {lease.ttl}")
    if not 0 < lease.renew <= lease.ttl / 2:
        raise ConfigError(f"config error: lease.renew: must be > 0 and at most half of lease.ttl, got {lease.renew}")
    if lease.replicas < 1:
        raise ConfigError(f"config error: lease.replicas: must be >= 1, got {lease.replicas}")


def package_version(dist: str) -> str:
    """The installed version of a distribution (`argus-gateway`), or "unknown" when run from a bare tree."""
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


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
    """The flags every service takes; `--version` prints the distribution named like the program."""
    parser.add_argument("--version", action="version", version=f"%(prog)s {package_version(parser.prog)}")
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
