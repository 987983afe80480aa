"""Deep history over NATS request-reply: `argus.history.{source}` (a gateway asks, an ingestor answers).

A gateway publishes one `HistoryRequest` (MessagePack) with a reply subject; the source's ingestor
answers on that subject with one or more `HistoryChunk`s, `index` 0, 1, ... and `last` on the final
one, each holding at most `chunk` events (so no reply nears NATS' payload limit). Events are the same
structs as live data (`seq` and `ts` 0: they are not part of a stream's numbering). A source that
cannot answer sends one chunk with `code` (`UNAVAILABLE`, `INVALID_MESSAGE`) and `reason`.

Times: `start`/`end` are ISO-8601 dates (`2026-11-30`) or datetimes; without an offset they are the
symbol's market time (`zone_of`). Both are inclusive: a date as `end` means the whole day. Pure: no I/O.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, tzinfo
from typing import Literal
from zoneinfo import ZoneInfo

import msgspec

from .events import Event
from .markets import BEIJING
from .symbols import market_of

HistoryKind = Literal["kline", "tick", "trade", "quote"]
Adjust = Literal["none", "qfq", "hfq"]
HISTORY_KINDS: tuple[str, ...] = ("kline", "tick", "trade", "quote")
ADJUSTMENTS: tuple[str, ...] = ("none", "qfq", "hfq")


class HistoryRequest(msgspec.Struct, kw_only=True, omit_defaults=True):
    """What a gateway asks of a source's ingestor."""

    kind: HistoryKind  # kline (bars), tick (a day's 分时), trade, quote (newest quote of each symbol)
    symbols: list[str]  # one symbol; several only for kind "quote" (a snapshot of many)
    period: str = ""  # kline: 1m 5m 15m 30m 60m 1d
    start: str = ""  # inclusive; "" = as far back as `limit` reaches
    end: str = ""  # inclusive; "" = now
    day: str = ""  # tick: the trading day (YYYY-MM-DD); "" = the latest
    limit: int = 0  # the newest `limit` items within start..end (0: the responder's maximum)
    adjust: Adjust = "none"  # kline: 前复权 qfq, 后复权 hfq, or none
    chunk: int = 0  # at most this many events per reply message (0: the responder's)


class HistoryChunk(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One reply message; the events of all chunks, in `index` order, are the answer (oldest first)."""

    index: int
    last: bool
    source: str
    code: str = ""  # "" when answered; else an ErrorCode (UNAVAILABLE, INVALID_MESSAGE)
    reason: str = ""
    adjust: Adjust = "none"  # the adjustment applied
    adjust_source: str = ""  # whose factors: "tdx get_xdxr_info", "xtquant dividend_type=front", ...
    more: bool = False  # the upstream holds older items than the first one sent (page with `end`)
    total: int = 0  # events in the whole answer
    events: list[Event] = []


_ZONES: dict[str, str] = {"HK": "Asia/Hong_Kong", "US": "America/New_York", "IDX": "America/New_York"}


def zone_of(symbol: str) -> tzinfo:
    """The market time of a symbol: Beijing for the China markets, else the exchange's zone."""
    name = _ZONES.get(market_of(symbol))
    return ZoneInfo(name) if name else BEIJING


def parse_when(text: str, tz: tzinfo, *, end: bool = False) -> datetime:
    """An ISO date or datetime as an aware datetime; a date is its first instant (or, as `end`, its last).

    Raises ValueError with a one-line reason.
    """
    text = text.strip()
    if len(text) == 10:
        d = date.fromisoformat(text)
        start = datetime.combine(d, time(0), tz)
        return start + timedelta(days=1, microseconds=-1) if end else start
    t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return t if t.tzinfo is not None else t.replace(tzinfo=tz)


def event_time(event: Event) -> datetime:
    """When an event's bar opened, its minute began, its trade or quote happened."""
    tag = event.__struct_config__.tag
    if tag == "kline":
        text = event.kline.open_time  # type: ignore[union-attr]
    elif tag == "tick":
        text = event.tick.time  # type: ignore[union-attr]
    elif tag == "trade":
        text = event.trade.time  # type: ignore[union-attr]
    else:
        text = event.quote.timestamp  # type: ignore[union-attr]
    return datetime.fromisoformat(text)


__all__ = [
    "ADJUSTMENTS",
    "HISTORY_KINDS",
    "Adjust",
    "HistoryChunk",
    "HistoryKind",
    "HistoryRequest",
    "event_time",
    "parse_when",
    "zone_of",
]
