"""`datasource.options.tdx.*`: every knob of the TDX source, validated once at start-up."""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

import msgspec

# Codes whose /100 prices (quotes, 分时, transactions) carry three decimals: funds/ETFs and bonds.
DEFAULT_THREE_DECIMALS = {
    "SH": ["5", "11", "01", "02", "10", "12", "13", "20"],
    "SZ": ["15", "16", "18", "10", "11", "12", "13"],
}


class TdxOptions(msgspec.Struct, forbid_unknown_fields=True):
    hosts: list[str] = []
    interval: float = 3.0  # quote poll cadence: the exchanges' snapshot cadence
    bars_interval: float = 10.0
    minutes_interval: float = 6.0
    trades_interval: float = 3.0
    workers: int = 2
    timeout: float = 5.0
    batch_size: int = 80
    probe_symbol: str = "000001.SZ"
    backoff_initial: float = 1.0
    backoff_max: float = 60.0
    down_after: float = 30.0  # seconds of total failure before `stale` becomes `down`
    schedule: Literal["exchange", "always"] = "exchange"  # exchange: the SSE/SZSE calendar (argus-calendar)
    holidays: list[str] = []  # extra closed days the calendar package does not know (yet)
    bars_count: int = 3
    trades_page: int = 200
    trades_backfill: int = 20
    three_decimals: dict[str, list[str]] = msgspec.field(
        default_factory=lambda: {k: list(v) for k, v in DEFAULT_THREE_DECIMALS.items()}
    )
    update_interval: float = 0.0  # the generic datasource key; TDX uses `interval` instead


def _split(value: Any) -> Any:
    """Env vars and flags may give a comma-separated string where a list is meant."""
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


def parse_hostport(item: str) -> tuple[str, int]:
    host, sep, port = item.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"hosts: {item!r} is not host:port")
    return host, int(port)


def load_options(raw: dict[str, Any]) -> TdxOptions:
    """Raises ValueError naming the key; the CLI turns that into exit code 2."""
    data = dict(raw)
    if "sessions" in data:
        raise ValueError(
            "sessions: no longer an option; sessions, auctions and holidays come from the exchange calendar "
            "(argus-calendar): remove the key"
        )
    for key in ("hosts", "holidays"):
        if key in data:
            data[key] = _split(data[key])
    try:
        opts = msgspec.convert(data, TdxOptions, strict=False)
    except msgspec.ValidationError as e:
        raise ValueError(str(e)) from None
    if not opts.hosts:
        raise ValueError("hosts: at least one TDX server is needed (TDX_HOSTS=host:port,... or --hosts)")
    for item in opts.hosts:
        parse_hostport(item)
    for item in opts.holidays:
        try:
            date.fromisoformat(item)
        except ValueError:
            raise ValueError(f"holidays: {item!r} is not YYYY-MM-DD") from None
    positive = {
        "interval": opts.interval,
        "bars_interval": opts.bars_interval,
        "minutes_interval": opts.minutes_interval,
        "trades_interval": opts.trades_interval,
        "timeout": opts.timeout,
        "workers": opts.workers,
        "backoff_initial": opts.backoff_initial,
    }
    for key, value in positive.items():
        if value <= 0:
            raise ValueError(f"{key}: must be > 0, got {value}")
    if not 1 <= opts.batch_size <= 80:
        raise ValueError(
            f"batch_size: must be 1..80 (TDX answers at most ~80 quotes per request), got {opts.batch_size}"
        )
    if not 1 <= opts.trades_page <= 2000:
        raise ValueError(f"trades_page: must be 1..2000, got {opts.trades_page}")
    if not 1 <= opts.bars_count <= 800:
        raise ValueError(f"bars_count: must be 1..800, got {opts.bars_count}")
    return opts
