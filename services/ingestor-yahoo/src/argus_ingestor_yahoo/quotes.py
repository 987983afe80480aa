"""Pricing messages → Argus quotes and derived trades, per symbol.

Yahoo omits zero fields, and a message may carry only what changed: day fields (open, high, low,
volume, previous close) carry forward within the local day; the book does not (no bid means no
bid level). Day fields a message lacks are seeded from the chart (`seed`). Yahoo sends no
turnover, so `amount` is 0.

Trades are *derived* (Yahoo streams no trade prints) and published with source `yahoo-derived`:
- the day volume grew by Δ since the previous message: one trade of Δ shares at the message's
  price and time (several prints between two messages fold into one);
- a symbol whose messages never carry a day volume: `last_size` shares when the time advanced;
- the first message of a day (or after subscribing) only sets the baseline: no trade;
- the first message after the stream was down folds every print of the outage: no trade, but
  `missed` (the source reports a lost event, so clients get a GAP instead of one fake trade);
- side by the quote rule against the previous message's book: at/above the ask `B`, at/below the
  bid `S`, else `N`; `trade_id` = local date + "-" + cumulative day volume (or "-t" + time ms).
"""

from __future__ import annotations

from datetime import datetime, tzinfo

import msgspec
from argus_protocol import Quote, Trade

from .decode import Pricing

DERIVED_SOURCE = "yahoo-derived"


def iso_ms(ts_ms: int, tz: tzinfo) -> str:
    return datetime.fromtimestamp(ts_ms / 1000, tz).isoformat(timespec="milliseconds")


class SymbolTape:
    """The running state of one symbol's stream: day fields, last volume, last book."""

    __slots__ = (
        "ask",
        "bid",
        "day",
        "high",
        "last",
        "last_time",
        "low",
        "open",
        "prev_close",
        "resync",
        "saw_volume",
        "seeded",
        "volume",
    )

    def __init__(self) -> None:
        self.day = ""
        self.open = self.high = self.low = self.prev_close = 0.0
        self.volume: int | None = None
        self.saw_volume = False
        self.last_time = 0
        self.bid: float | None = None
        self.ask: float | None = None
        self.resync = False  # the stream was down since the last message: the next delta folds an outage
        self.seeded: tuple[str, float, float, float, float, float] | None = None  # day, o, h, l, prev, close
        self.last: Quote | None = None

    def complete(self) -> bool:
        """Whether every day field is known (Yahoo's messages or the chart said so)."""
        return bool(self.open and self.high and self.low and self.prev_close)

    def seed(self, day: str, open: float, high: float, low: float, prev_close: float, close: float) -> Quote | None:
        """Day fields from the chart of trading day `day` (its close too, the next day's previous
        close); fills what the stream has not said. Returns the last quote with them, if any."""
        self.seeded = (day, open, high, low, prev_close, close)
        self._fill()
        if self.last is None:
            return None
        self.last = msgspec.structs.replace(
            self.last, open=self.open, high=self.high, low=self.low, prev_close=self.prev_close
        )
        return self.last

    def _fill(self) -> None:
        if self.seeded is None or not self.day:
            return
        day, open_, high, low, prev_close, close = self.seeded
        if day == self.day:
            self.open = self.open or open_
            self.high = max(self.high, high) if self.high else high
            self.low = min(self.low, low) if self.low and low else self.low or low
            self.prev_close = self.prev_close or prev_close
        elif day < self.day:  # the chart's day is over: its close is today's previous close
            self.prev_close = self.prev_close or close

    def apply(self, p: Pricing, tz: tzinfo, now_ms: int) -> tuple[Quote, Trade | None, bool] | None:
        """The quote, derived trade and whether prints were missed, for one message; None without a price."""
        if p.price is None:
            return None
        ts = p.time_ms or now_ms
        local = datetime.fromtimestamp(ts / 1000, tz)
        day = local.date().isoformat()
        if day != self.day:  # a new local day: nothing carries over
            self.day = day
            self.open = self.high = self.low = self.prev_close = 0.0
            self.volume = None
            self.bid = self.ask = None
            self._fill()
        self.open = p.open_price or self.open
        self.high = p.day_high or self.high
        self.low = p.day_low or self.low
        self.prev_close = p.previous_close or self.prev_close
        missed = False
        if self.resync:
            self.resync = False
            missed = self._folds_outage(p, ts)
        trade = None if missed else self._derive(p, ts, day, tz)
        if p.day_volume is not None:
            self.saw_volume = True
            self.volume = max(p.day_volume, self.volume or 0)
        self.last_time = max(self.last_time, ts)
        self.bid, self.ask = p.bid, p.ask
        quote = Quote(
            price=p.price,
            open=self.open,
            high=self.high,
            low=self.low,
            prev_close=self.prev_close,
            volume=self.volume or 0,
            amount=0.0,
            timestamp=local.isoformat(timespec="milliseconds"),
            bid_prices=[p.bid] if p.bid else [],
            bid_volumes=[p.bid_size or 0] if p.bid else [],
            ask_prices=[p.ask] if p.ask else [],
            ask_volumes=[p.ask_size or 0] if p.ask else [],
        )
        self.last = quote
        return quote, trade, missed

    def _folds_outage(self, p: Pricing, ts: int) -> bool:
        """The first message after an outage: did prints happen that we never saw one by one?"""
        if p.day_volume is not None:
            return self.volume is not None and p.day_volume > self.volume
        return not self.saw_volume and bool(p.last_size) and bool(self.last_time) and ts > self.last_time

    def _derive(self, p: Pricing, ts: int, day: str, tz: tzinfo) -> Trade | None:
        assert p.price is not None
        if p.day_volume is not None:
            if self.volume is None or p.day_volume <= self.volume:
                return None  # first message of the day (no baseline), or nothing traded
            size, trade_id = p.day_volume - self.volume, f"{day.replace('-', '')}-{p.day_volume}"
        elif not self.saw_volume and p.last_size and self.last_time and ts > self.last_time:
            size, trade_id = p.last_size, f"{day.replace('-', '')}-t{ts}"
        else:
            return None
        side = "N"
        if self.ask is not None and p.price >= self.ask:
            side = "B"
        elif self.bid is not None and p.price <= self.bid:
            side = "S"
        return Trade(time=iso_ms(ts, tz), price=p.price, volume=size, side=side, trade_id=trade_id)  # type: ignore[arg-type]
