"""`Calendar`: one exchange's trading days and the phases of each, from `exchange_calendars`.

Holidays come from the package (it tracks each exchange's yearly notices; China's weekend
make-up working days are no sessions there, as the exchanges stay closed on them). Past the last
date the package records, weekdays are assumed to trade (`TradingDay.known` is then False) and
`extra_closed` adds closures it cannot know (a typhoon, a notice newer than the package).
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Iterable
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from .days import ACTIVE, Period, Phase, TradingDay, layout

# Argus market -> exchange calendar. SZSE and BSE keep SSE's holidays and hours.
MARKETS: dict[str, str] = {"SH": "XSHG", "SZ": "XSHG", "BJ": "XSHG", "HK": "XHKG", "US": "XNYS"}
EXCHANGES: dict[str, str] = {"XSHG": "XSHG", "XSHE": "XSHG", "XHKG": "XHKG", "XNYS": "XNYS"}
_SEARCH_DAYS = 400  # the longest run of closed days a search walks before giving up


class UnknownMarket(ValueError):
    """A market or exchange code with no calendar here."""


def _load(exchange: str) -> Any:
    import exchange_calendars as xcals

    with warnings.catch_warnings():
        # exchange_calendars 4.x still calls pandas APIs that pandas 3 deprecates; nothing for us to act on
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        return xcals.get_calendar(exchange)


def _local(ts: Any, tz: ZoneInfo) -> datetime:
    out: datetime = ts.to_pydatetime().astimezone(tz)
    return out


class Calendar:
    """Trading days, the periods of each day, and the phase at any instant, for one exchange."""

    def __init__(self, exchange: str, *, market: str | None = None, extra_closed: Iterable[date] = ()) -> None:
        code = EXCHANGES.get(exchange.upper())
        if code is None:
            raise UnknownMarket(f"no trading calendar for {exchange!r} (known: {', '.join(sorted(EXCHANGES))})")
        xc = _load(code)
        self.exchange = code
        self.market = market or code
        self.tz = ZoneInfo(str(xc.tz))
        self.extra_closed = frozenset(extra_closed)
        self._sessions = frozenset(ts.date() for ts in xc.sessions)
        self.first_known: date = xc.first_session.date()
        self.last_known: date = xc.last_session.date()
        self._schedule = xc.schedule
        self._regular = (
            xc.open_times[-1][1],
            xc.close_times[-1][1],
            xc.break_start_times[-1][1] if xc.break_start_times else None,
            xc.break_end_times[-1][1] if xc.break_end_times else None,
        )
        self._days: dict[date, TradingDay | None] = {}  # memo: each date is worked out once

    @classmethod
    def for_market(cls, market: str, extra_closed: Iterable[date] = ()) -> Calendar:
        """The calendar of an Argus market (`SH` `SZ` `BJ` `HK` `US`) or exchange code (`XSHG` ...)."""
        return _shared(market.upper(), frozenset(extra_closed))

    def __repr__(self) -> str:
        return f"Calendar({self.market}: {self.exchange}, known to {self.last_known})"

    # days ----------------------------------------------------------------------------------
    def knows(self, d: date) -> bool:
        """Whether the package records holidays for `d` (else weekdays are assumed to trade)."""
        return self.first_known <= d <= self.last_known

    def day(self, d: date) -> TradingDay | None:
        """The trading day `d`, or None when the exchange is closed all day."""
        try:
            return self._days[d]
        except KeyError:
            pass
        out = self._work_out(d)
        if len(self._days) > 4000:  # a long-running process walks forward: forget the oldest
            self._days.clear()
        self._days[d] = out
        return out

    def _work_out(self, d: date) -> TradingDay | None:
        if d in self.extra_closed:
            return None
        if self.knows(d):
            if d not in self._sessions:
                return None
            import pandas as pd

            row = self._schedule.loc[pd.Timestamp(d)]
            lunch = None
            if not pd.isna(row["break_start"]):
                lunch = (_local(row["break_start"], self.tz), _local(row["break_end"], self.tz))
            return layout(self.exchange, d, _local(row["open"], self.tz), _local(row["close"], self.tz), lunch, True)
        if d.weekday() >= 5:
            return None
        open_t, close_t, break_start, break_end = self._regular

        def at(t: time) -> datetime:
            return datetime.combine(d, t, self.tz)

        lunch = (at(break_start), at(break_end)) if break_start and break_end else None
        return layout(self.exchange, d, at(open_t), at(close_t), lunch, False)

    def is_trading_day(self, d: date) -> bool:
        return self.day(d) is not None

    def trading_days(self, start: date, end: date) -> list[date]:
        """Every trading day from `start` to `end`, both included."""
        out = []
        d = start
        while d <= end:
            if self.day(d) is not None:
                out.append(d)
            d += timedelta(days=1)
        return out

    def previous_trading_day(self, d: date) -> date:
        """The last trading day strictly before `d`."""
        return self._walk(d, -1)

    def next_trading_day(self, d: date) -> date:
        """The first trading day strictly after `d`."""
        return self._walk(d, 1)

    def _walk(self, d: date, step: int) -> date:
        for _ in range(_SEARCH_DAYS):
            d += timedelta(days=step)
            if self.day(d) is not None:
                return d
        raise ValueError(f"{self.market}: no trading day within {_SEARCH_DAYS} days of {d}")

    def sessions(self, d: date) -> tuple[Period, ...]:
        """The periods of `d` in order (auctions, pauses and lunch included); empty when closed."""
        day = self.day(d)
        return day.periods if day is not None else ()

    def trading_hours(self, d: date) -> tuple[tuple[datetime, datetime], ...]:
        """The regular sessions of `d` (09:30–11:30, 13:00–15:00 for A-shares); empty when closed."""
        day = self.day(d)
        return day.hours if day is not None else ()

    # instants ------------------------------------------------------------------------------
    def local(self, instant: datetime) -> datetime:
        if instant.tzinfo is None:
            raise ValueError("instant must be timezone-aware")
        return instant.astimezone(self.tz)

    def phase(self, instant: datetime) -> Phase:
        """`open` (continuous trading), `auction`, `pre_open` (after the opening auction, before
        the open), `lunch`, or `closed` (outside the day's periods, weekends and holidays)."""
        local = self.local(instant)
        day = self.day(local.date())
        if day is not None:
            for p in day.periods:
                if p.start <= local < p.end:
                    return p.phase
        return "closed"

    def is_open(self, instant: datetime) -> bool:
        """In continuous trading: where silence from a live upstream means trouble."""
        return self.phase(instant) == "open"

    def is_active(self, instant: datetime) -> bool:
        """Auction, pre-open or continuous trading: the exchange takes orders, quotes may change."""
        return self.phase(instant) in ACTIVE

    def trading_day_at(self, instant: datetime) -> date:
        """The trading day whose data is current at `instant`: today's from its first period (the
        opening auction) on, before that the previous trading day's."""
        local = self.local(instant)
        d = local.date()
        day = self.day(d)
        if day is not None and local >= day.first:
            return d
        return self.previous_trading_day(d)

    def day_over(self, d: date, instant: datetime) -> bool:
        """Whether trading day `d` has ended (its last period is over) at `instant`; a closed
        day is over once it has begun."""
        local = self.local(instant)
        day = self.day(d)
        if day is None:
            return d <= local.date()
        return local >= day.last

    def next_change(self, instant: datetime) -> datetime:
        """The next instant after `instant` at which the phase may change."""
        local = self.local(instant)
        day = self.day(local.date())
        if day is not None:
            for p in day.periods:
                if local < p.start:
                    return p.start
                if local < p.end:
                    return p.end
        nxt = self.day(self.next_trading_day(local.date()))
        assert nxt is not None
        return nxt.first

    def next_active(self, instant: datetime, phases: frozenset[Phase] = ACTIVE) -> datetime:
        """`instant` itself when in one of `phases`, else when the next such period begins."""
        local = self.local(instant)
        d = local.date()
        for _ in range(_SEARCH_DAYS):
            day = self.day(d)
            if day is not None:
                for p in day.periods:
                    if p.phase in phases and local < p.end:
                        return max(p.start, local)
            d += timedelta(days=1)
        raise ValueError(f"{self.market}: nothing in {sorted(phases)} within {_SEARCH_DAYS} days")


@functools.cache
def _shared(market: str, extra_closed: frozenset[date]) -> Calendar:
    # One calendar per market and process: building one reads the package's tables (~0.1 s).
    exchange = MARKETS.get(market) or EXCHANGES.get(market)
    if exchange is None:
        raise UnknownMarket(
            f"no trading calendar for {market!r} (markets: {', '.join(sorted(MARKETS))}; "
            f"exchanges: {', '.join(sorted(EXCHANGES))})"
        )
    return Calendar(exchange, market=market, extra_closed=extra_closed)
