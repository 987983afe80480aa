"""What a source is asked for history, and what it answers: `HistoryQuery` in, `HistoryAnswer` out.

The runner's history service (history.py) validates each `argus.history.<source>` request into a
`HistoryQuery` (symbols checked, times parsed in the market's zone, `limit` bounded) before a
source sees it, so `Source.history` works on trusted values. A source that cannot answer raises
`HistoryUnavailable` with a one-line reason; the caller gets `UNAVAILABLE` with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, tzinfo

from argus_protocol import (
    ADJUSTMENTS,
    PERIODS,
    Event,
    HistoryRequest,
    InvalidSymbol,
    event_time,
    parse_symbol,
    parse_when,
    zone_of,
)

MAX_QUOTE_SYMBOLS = 1000  # symbols per quote-snapshot request


class HistoryUnavailable(Exception):
    """The source cannot answer this request; `reason` is what the client is told."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class InvalidHistoryRequest(ValueError):
    """A request no source could answer as asked (bad symbol, period, time or adjustment)."""


@dataclass(frozen=True, slots=True)
class HistoryQuery:
    kind: str  # kline, tick, trade, quote
    symbols: tuple[str, ...]
    period: str  # kline only
    start: datetime | None  # inclusive, aware
    end: datetime | None  # inclusive, aware
    day: date | None  # tick: the trading day; None = the latest
    limit: int  # the newest `limit` items within start..end, at most the service's maximum
    adjust: str  # none, qfq, hfq
    tz: tzinfo  # the first symbol's market time

    @property
    def symbol(self) -> str:
        return self.symbols[0]

    def within(self, when: datetime) -> bool:
        return (self.start is None or when >= self.start) and (self.end is None or when <= self.end)

    def select(self, events: Sequence[Event]) -> tuple[list[Event], bool]:
        """Events (oldest first) within start..end, the newest `limit` of them; and whether older
        ones within the range were left out."""
        inside = [e for e in events if self.within(event_time(e))]
        if self.limit and len(inside) > self.limit:
            return inside[-self.limit :], True
        return inside, False


@dataclass(frozen=True, slots=True)
class HistoryAnswer:
    events: list[Event]  # oldest first; seq and ts are left 0
    adjust: str = "none"  # the adjustment applied
    adjust_source: str = ""  # whose factors ("tdx get_xdxr_info", "yahoo adjclose", ...)
    more: bool = False  # the upstream holds older items than the first one given


def parse_query(req: HistoryRequest, max_items: int) -> HistoryQuery:
    """Validate a request; raises InvalidHistoryRequest naming what is wrong."""
    if not req.symbols:
        raise InvalidHistoryRequest("no symbol")
    if req.kind != "quote" and len(req.symbols) != 1:
        raise InvalidHistoryRequest(f"{req.kind} history is asked one symbol at a time")
    if len(req.symbols) > MAX_QUOTE_SYMBOLS:
        raise InvalidHistoryRequest(f"at most {MAX_QUOTE_SYMBOLS} symbols per request")
    for s in req.symbols:
        try:
            parse_symbol(s)
        except InvalidSymbol as e:
            raise InvalidHistoryRequest(str(e)) from None
    if req.kind == "kline":
        if req.period not in PERIODS:
            raise InvalidHistoryRequest(f"unknown kline period {req.period!r}; one of {', '.join(PERIODS)}")
    elif req.period:
        raise InvalidHistoryRequest(f"{req.kind} has no period")
    if req.adjust not in ADJUSTMENTS:
        raise InvalidHistoryRequest(f"adjust must be one of {', '.join(ADJUSTMENTS)}")
    if req.adjust != "none" and req.kind != "kline":
        raise InvalidHistoryRequest("only bars are adjusted")
    if req.limit < 0:
        raise InvalidHistoryRequest("limit must be >= 0")
    tz = zone_of(req.symbols[0])
    try:
        start = parse_when(req.start, tz) if req.start else None
        end = parse_when(req.end, tz, end=True) if req.end else None
        day = date.fromisoformat(req.day) if req.day else None
    except ValueError as e:
        raise InvalidHistoryRequest(f"bad time: {e}") from None
    if start is not None and end is not None and start > end:
        raise InvalidHistoryRequest("start is after end")
    limit = min(req.limit, max_items) if req.limit else max_items
    return HistoryQuery(req.kind, tuple(req.symbols), req.period, start, end, day, limit, req.adjust, tz)
