"""Market-data events: what ingestors publish on NATS (MessagePack) and clients get inside DATA.

One struct per data type. The event's own JSON form *is* the `data` of a client `DATA` envelope
(`{"symbol","type","seq","ts","source","<type>": {...}}`), so the gateway re-encodes without
reshaping. `gc=False`: these are created per message on the hot path and never form cycles.
"""

from __future__ import annotations

from typing import Literal

import msgspec

Side = Literal["B", "S", "N"]


class Quote(msgspec.Struct, gc=False, omit_defaults=True):
    """Level-1 snapshot with a 5-level book; prices in currency, volumes in shares/contracts."""

    price: float
    open: float
    high: float
    low: float
    prev_close: float
    volume: int
    amount: float
    timestamp: str
    bid_prices: list[float] = []
    bid_volumes: list[int] = []
    ask_prices: list[float] = []
    ask_volumes: list[int] = []


class Tick(msgspec.Struct, gc=False):
    """One point of the intraday 分时 line; the forming minute is re-sent until `closed`."""

    time: str
    price: float
    avg_price: float
    volume: int
    amount: float
    closed: bool


class Kline(msgspec.Struct, gc=False):
    period: str
    open_time: str
    open: float
    high: float
    low: float
    close: float
    volume: int
    amount: float
    closed: bool


class Trade(msgspec.Struct, gc=False):
    time: str
    price: float
    volume: int
    side: Side
    trade_id: str


class _Event(msgspec.Struct, tag_field="type", gc=False, omit_defaults=True, kw_only=True):
    symbol: str
    source: str = ""
    seq: int = 0  # stamped by the ingestor runner, per stream
    ts: int = 0  # epoch microseconds at publish, stamped by the runner
    first_seq: int = 0  # tick/kline: seq of this bar or minute's first version (runner); 0 elsewhere
    snapshot: bool = False  # set by the gateway: the stream's newest value, sent on subscribe
    replay: bool = False  # set by the gateway: re-sent from retention (history or resume)


class QuoteEvent(_Event, tag="quote"):
    quote: Quote


class TickEvent(_Event, tag="tick"):
    tick: Tick


class KlineEvent(_Event, tag="kline"):
    kline: Kline


class TradeEvent(_Event, tag="trade"):
    trade: Trade


Event = QuoteEvent | TickEvent | KlineEvent | TradeEvent


def event_period(event: Event) -> str:
    """The stream's period ("" unless a kline)."""
    if isinstance(event, KlineEvent):
        return event.kline.period
    return ""


def bar_mark(event: Event) -> str:
    """What tells one bar or minute from the next ("" for quotes and trades)."""
    if isinstance(event, KlineEvent):
        return event.kline.open_time
    if isinstance(event, TickEvent):
        return event.tick.time
    return ""


def is_closed(event: Event) -> bool:
    """A bar or 分时 minute's final version (published on its `.closed` subject)."""
    if isinstance(event, KlineEvent):
        return event.kline.closed
    if isinstance(event, TickEvent):
        return event.tick.closed
    return False


def stream_key(event: Event) -> str:
    period = event_period(event)
    if period:
        return f"kline:{event.symbol}:{period}"
    return f"{event.__struct_config__.tag}:{event.symbol}"
