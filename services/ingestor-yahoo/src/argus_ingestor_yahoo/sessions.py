"""Each market's time zone and trading calendar: timestamps' offsets, when silence means `stale`,
when the source is `closed`, and when a daily bar is final.

Markets with an exchange calendar (argus-calendar: SH/SZ/BJ on SSE's, HK on HKEX's, US and IDX on
NYSE's) get its holidays, lunch breaks and early closes. A `markets` override in the options
replaces that with fixed weekday sessions in the given zone (no holidays).
"""

from __future__ import annotations

from datetime import date, datetime, time, tzinfo
from zoneinfo import ZoneInfo

from argus_calendar import ACTIVE, Calendar, Phase
from argus_ingestor.sessions import parse_session
from argus_protocol import parse_symbol

YAHOO_MARKETS = ("SH", "SZ", "BJ", "HK", "US", "IDX")
CALENDAR_OF = {"SH": "SH", "SZ": "SZ", "BJ": "BJ", "HK": "HK", "US": "US", "IDX": "US"}  # indices: New York's


class MarketHours:
    """One market's zone and calendar; `always` makes every moment continuous trading (tests, drills)."""

    def __init__(
        self,
        calendar: Calendar | None,
        tz: str | None = None,
        sessions: list[str] | None = None,
        always: bool = False,
    ) -> None:
        self.calendar = calendar
        self.tz: tzinfo = ZoneInfo(tz) if tz else calendar.tz if calendar is not None else ZoneInfo("UTC")
        self.sessions: list[tuple[time, time]] = sorted(parse_session(s) for s in sessions or [])
        self.always = always

    def phase(self, now: datetime) -> Phase:
        if self.always:
            return "open"
        if self.calendar is not None and not self.sessions:
            return self.calendar.phase(now)
        local = now.astimezone(self.tz)
        if local.weekday() < 5 and any(s <= local.time() < e for s, e in self.sessions):
            return "open"
        return "closed"

    def in_session(self, now: datetime) -> bool:
        """In continuous trading: where a quiet symbol is `stale`."""
        return self.phase(now) == "open"

    def trading_day(self, d: date) -> bool:
        if self.calendar is not None and not self.sessions:
            return self.calendar.is_trading_day(d)
        return d.weekday() < 5

    def day_over(self, now: datetime, day: str) -> bool:
        """True once the local trading day `day` (YYYY-MM-DD) has ended."""
        if self.always:
            return day < now.astimezone(self.tz).date().isoformat()
        d = date.fromisoformat(day)
        if self.calendar is not None and not self.sessions:
            return self.calendar.day_over(d, now)
        local = now.astimezone(self.tz)
        today = local.date()
        if d != today:
            return d < today
        return not self.trading_day(d) or local.time() >= self.sessions[-1][1]


class MarketClock:
    """Market hours per canonical market; per-symbol zone overrides learned from the chart (indices)."""

    def __init__(self, overrides: dict[str, tuple[str, list[str]]], always: bool = False) -> None:
        self.markets: dict[str, MarketHours] = {}
        for market in YAHOO_MARKETS:
            if market in overrides:
                tz, sessions = overrides[market]
                self.markets[market] = MarketHours(None, tz, sessions, always)
            else:
                self.markets[market] = MarketHours(Calendar.for_market(CALENDAR_OF[market]), always=always)
        self._symbol_tz: dict[str, tzinfo] = {}

    def hours(self, symbol: str) -> MarketHours:
        return self.markets[parse_symbol(symbol)[1]]

    def tz(self, symbol: str) -> tzinfo:
        return self._symbol_tz.get(symbol) or self.hours(symbol).tz

    def learn_tz(self, symbol: str, name: str) -> None:
        """An index's exchange zone from the chart meta (^N225 trades in Tokyo, not New York)."""
        if parse_symbol(symbol)[1] == "IDX" and name:
            try:
                self._symbol_tz[symbol] = ZoneInfo(name)
            except (KeyError, ValueError):
                pass

    def in_session(self, symbol: str, now: datetime) -> bool:
        return self.hours(symbol).in_session(now)

    def closed_reason(self, symbols: set[str], now: datetime) -> str | None:
        """None while any of `symbols`' markets takes orders (auctions too), else why none does."""
        if not symbols:
            return None
        phases = []
        for s in symbols:
            hours = self.hours(s)
            phase = hours.phase(now)
            if phase in ACTIVE:
                return None
            phases.append((phase, hours.trading_day(now.astimezone(hours.tz).date())))
        if not any(trading for _, trading in phases):
            return "not a trading day (weekend or exchange holiday)"
        if all(phase == "lunch" for phase, _ in phases):
            return "lunch break"
        return "outside trading sessions"
