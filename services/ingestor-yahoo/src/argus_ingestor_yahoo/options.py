"""`datasource.options.yahoo.*`: every knob of the Yahoo source, validated once at start-up."""

from __future__ import annotations

from typing import Any, Literal
from urllib.parse import urlsplit

import msgspec

from .sessions import YAHOO_MARKETS, parse_session

DEFAULT_WS_URL = "wss://streamer.finance.yahoo.com/?version=2"
DEFAULT_CHART_URL = "https://query2.finance.yahoo.com"


class MarketOption(msgspec.Struct, forbid_unknown_fields=True):
    tz: str
    sessions: list[str]


class YahooOptions(msgspec.Struct, forbid_unknown_fields=True):
    ws_url: str = DEFAULT_WS_URL
    chart_url: str = DEFAULT_CHART_URL  # anything else: every yfinance request goes there (see chart.py)
    poll_interval: float = 30.0  # seconds between chart requests for one symbol (all its bars and 分时)
    poll_workers: int = 4  # threads for yfinance's blocking history(); also the most requests in flight
    poll_timeout: float = 10.0
    bars_backfill: int = 3  # bars / 分时 points published when a stream is first polled
    stale_after: float = 60.0  # in session, seconds without a price before a symbol is `stale`
    resubscribe_interval: float = 15.0  # Yahoo forgets subscriptions: re-send the list this often
    heartbeat: float = 20.0  # WebSocket ping interval; a missing pong means a dead connection
    backoff_initial: float = 0.5
    backoff_max: float = 30.0
    schedule: Literal["exchange", "always"] = "exchange"
    markets: dict[str, MarketOption] = {}  # overrides: fixed weekday sessions instead of the exchange calendar
    cache_dir: str = ""  # yfinance's tz/cookie cache; "" = its default, or a private temp dir when redirected
    update_interval: float = 0.0  # the generic datasource key; Yahoo streams and uses poll_interval


def load_options(raw: dict[str, Any]) -> YahooOptions:
    """Raises ValueError naming the key; the CLI turns that into exit code 2."""
    try:
        opts = msgspec.convert(dict(raw), YahooOptions, strict=False)
    except msgspec.ValidationError as e:
        raise ValueError(str(e)) from None
    ws = urlsplit(opts.ws_url)
    if ws.scheme not in ("ws", "wss") or not ws.hostname:
        raise ValueError(f"ws_url: {opts.ws_url!r} is not a ws:// or wss:// URL")
    chart = urlsplit(opts.chart_url)
    if chart.scheme not in ("http", "https") or not chart.hostname or chart.query:
        raise ValueError(f"chart_url: {opts.chart_url!r} is not an http(s)://host[:port][/prefix] URL")
    positive = {
        "poll_interval": opts.poll_interval,
        "poll_workers": opts.poll_workers,
        "poll_timeout": opts.poll_timeout,
        "stale_after": opts.stale_after,
        "resubscribe_interval": opts.resubscribe_interval,
        "heartbeat": opts.heartbeat,
        "backoff_initial": opts.backoff_initial,
        "backoff_max": opts.backoff_max,
    }
    for key, value in positive.items():
        if value <= 0:
            raise ValueError(f"{key}: must be > 0, got {value}")
    if opts.bars_backfill < 1:
        raise ValueError(f"bars_backfill: must be >= 1, got {opts.bars_backfill}")
    for market, mo in opts.markets.items():  # the markets not named keep their exchange calendar
        if market not in YAHOO_MARKETS:
            raise ValueError(f"markets: {market!r} is not a market Yahoo serves ({', '.join(YAHOO_MARKETS)})")
        if not mo.sessions:
            raise ValueError(f"markets.{market}.sessions: at least one session")
        for s in mo.sessions:
            parse_session(s)
    return opts
