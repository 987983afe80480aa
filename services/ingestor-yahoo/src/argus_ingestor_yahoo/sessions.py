"""Each market's time zone and regular sessions: timestamps' offsets, and when silence means `stale`."""

from __future__ import annotations

from datetime import datetime, tzinfo
from zoneinfo import ZoneInfo

from argus_ingestor.sessions import parse_session
from argus_protocol import parse_symbol

# Regular sessions in local time (no holiday calendar: a holiday looks like a quiet session day).
DEFAULT_MARKETS: dict[str, tuple[str, list[str]]] = {
    "SH": ("Asia/Shanghai", ["09:30-11:30", "13:00-15:00"]),
    "SZ": ("Asia/Shanghai", ["09:30-11:30", "13:00-15:00"]),
    "BJ": ("Asia/Shanghai", ["09:30-11:30", "13:00-15:00"]),
    "HK": ("Asia/Hong_Kong", ["09:30-12:00", "13:00-16:00"]),
    "US": ("America/New_York", ["09:30-16:00"]),
    "IDX": ("America/New_York", ["09:30-16:00"]),  # indices: New York unless the chart says otherwise
}


class MarketHours:
    """One market: its zone and sessions; `always` makes every moment a session (tests, 24h markets)."""

    def __init__(self, tz: str, sessions: list[str], always: bool = False) -> None:
        self.tz: tzinfo = ZoneInfo(tz)
        self.sessions = sorted(parse_session(s) for s in sessions)
        self.always = always

    def in_session(self, now: datetime) -> bool:
        if self.always:
            return True
        local = now.astimezone(self.tz)
        if local.weekday() >= 5:
            return False
        t = local.time()
        return any(start <= t < end for start, end in self.sessions)

    def day_over(self, now: datetime, day: str) -> bool:
        """True once the local trading day `day` (YYYY-MM-DD) has ended."""
        local = now.astimezone(self.tz)
        today = local.date().isoformat()
        if day < today:
            return True
        if day > today or self.always:
            return False
        return local.time() >= self.sessions[-1][1]


class Calendar:
    """Market hours per canonical market; per-symbol zone overrides learned from the chart (indices)."""

    def __init__(self, markets: dict[str, tuple[str, list[str]]], always: bool = False) -> None:
        self.markets = {m: MarketHours(tz, sessions, always) for m, (tz, sessions) in markets.items()}
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
