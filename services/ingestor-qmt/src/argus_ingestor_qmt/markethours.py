"""When QMT's markets trade, from argus-calendar: the source's `closed` STATUS, when a daily bar
is final, and the A-share session minutes bars are bucketed by. Markets without an exchange
calendar here (the futures exchanges) are taken as possibly trading at any time."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from argus_calendar import Calendar
from argus_protocol import BEIJING

CALENDAR_MARKETS = ("SH", "SZ", "BJ", "HK")


class MarketHours:
    def __init__(self) -> None:
        self.calendars = {m: Calendar.for_market(m) for m in CALENDAR_MARKETS}

    def state(self, markets: Iterable[str], now: datetime) -> tuple[str, str | None]:
        """`live` while any of `markets` (A-shares when none) takes orders, else `closed` and why."""
        cals = []
        for m in set(markets) or {"SH"}:
            cal = self.calendars.get(m)
            if cal is None or cal.is_active(now):
                return "live", None
            cals.append(cal)
        if all(not c.is_trading_day(c.local(now).date()) for c in cals):
            return "closed", "not a trading day (weekend or exchange holiday)"
        if all(c.phase(now) == "lunch" for c in cals):
            return "closed", "lunch break"
        return "closed", "outside trading sessions"

    def day_end_ms(self, market: str, day_ms: int) -> int | None:
        """When the daily bar of the local day starting at `day_ms` is final: after that day's last
        period (the closing auction); at once for a day without trading; None without a calendar."""
        cal = self.calendars.get(market)
        if cal is None:
            return None
        d = datetime.fromtimestamp(day_ms / 1000, cal.tz).date()
        day = cal.day(d)
        return day_ms if day is None else int(day.last.timestamp() * 1000)

    def a_share_minutes(self, now: datetime) -> list[tuple[int, int]]:
        """The A-share sessions as (start, end) minutes after midnight, from the exchange calendar."""
        cal = self.calendars["SH"]
        d = cal.trading_day_at(now)
        out = []
        for start, end in cal.trading_hours(d):
            s, e = start.astimezone(BEIJING), end.astimezone(BEIJING)
            out.append((s.hour * 60 + s.minute, e.hour * 60 + e.minute + (1440 if e.date() > s.date() else 0)))
        return out
