"""`datasource.options.qmt.*`: every knob of the QMT source, validated once at start-up."""

from __future__ import annotations

from datetime import time
from typing import Any, Literal

import msgspec
from argus_ingestor.sessions import parse_session as parse_span


class QmtOptions(msgspec.Struct, forbid_unknown_fields=True):
    host: str = ""  # xtdata service address; "" lets xtquant find the local MiniQMT
    port: int = 0  # 0: xtquant scans for the local MiniQMT's port
    whole_quote_threshold: int = 50  # more wanted quote symbols than this: subscribe_whole_quote per market
    level2: bool = False  # the account has Level-2: trades from l2transaction
    bar_label: Literal["end", "start"] = "end"  # QMT labels intraday bars by their end minute
    bars_history: int = 240  # 1m bars asked for on subscription (a whole A-share day: 分时 VWAP, 60m)
    backoff_initial: float = 1.0
    backoff_max: float = 30.0
    health_interval: float = 5.0  # seconds between liveness probes of MiniQMT
    call_timeout: float = 10.0  # a blocking xtdata call taking longer counts as MiniQMT gone
    close_grace: float = 2.0  # seconds past a bar's end before it is sent closed without a newer bar
    roll_interval: float = 1.0
    sessions: list[
        str
    ] = []  # session minutes for 15/30/60m and 分时; [] = the SSE calendar's (09:30-11:30, 13:00-15:00)
    session_markets: list[str] = msgspec.field(default_factory=lambda: ["SH", "SZ", "BJ", "IF"])
    halted_statuses: list[int] = msgspec.field(default_factory=lambda: [17, 20])  # 临时停牌P, 暂停交易至闭市N
    day_close: str = "15:00"  # markets without an exchange calendar (futures): a 1d bar closes this long after midnight
    bond_prefixes: dict[str, list[str]] = msgspec.field(
        default_factory=lambda: {"SH": ["10", "11"], "SZ": ["10", "11", "12"]}
    )  # codes whose QMT lot is 10 (bonds); other equities 100, futures 1
    probe_symbol: str = "000001.SZ"
    xtdata_module: str = ""  # import this module instead of xtquant.xtdata (tests, wrappers)
    update_interval: float = 0.0  # the generic datasource key; QMT pushes, so it is unused


def _split(value: Any) -> Any:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


def parse_session(item: str) -> tuple[int, int]:
    """'09:30-11:30' -> (570, 690): minutes after local midnight, end exclusive."""
    start, end = parse_span(item)
    return start.hour * 60 + start.minute, end.hour * 60 + end.minute


def load_options(raw: dict[str, Any]) -> QmtOptions:
    """Raises ValueError naming the key; the CLI turns that into exit code 2."""
    data = dict(raw)
    for key in ("sessions", "session_markets", "halted_statuses"):
        if key in data:
            data[key] = _split(data[key])
    try:
        opts = msgspec.convert(data, QmtOptions, strict=False)
    except msgspec.ValidationError as e:
        raise ValueError(str(e)) from None
    for item in opts.sessions:
        parse_session(item)
    try:
        time.fromisoformat(opts.day_close)
    except ValueError:
        raise ValueError(f"day_close: {opts.day_close!r} is not HH:MM") from None
    if not 0 <= opts.port < 65536:
        raise ValueError(f"port: {opts.port} is not a port")
    if opts.host and not opts.port:
        raise ValueError("port: a remote host needs its port (xtquant cannot scan a remote host)")
    if opts.whole_quote_threshold < 0:
        raise ValueError(f"whole_quote_threshold: must be >= 0, got {opts.whole_quote_threshold}")
    if not 2 <= opts.bars_history <= 5000:
        raise ValueError(f"bars_history: must be 2..5000, got {opts.bars_history}")
    for key in ("backoff_initial", "backoff_max", "health_interval", "call_timeout", "roll_interval"):
        if getattr(opts, key) <= 0:
            raise ValueError(f"{key}: must be > 0, got {getattr(opts, key)}")
    return opts
