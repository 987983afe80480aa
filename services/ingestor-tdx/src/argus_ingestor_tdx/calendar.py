"""The A-share trading calendar as the TDX source asks it: when to poll, which trading day data
belongs to, and which minute a 分时 index is. Days, auctions and holidays come from argus-calendar."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date, datetime, timedelta

from argus_calendar import Calendar, Phase
from argus_protocol import BEIJING

Clock = Callable[[], datetime]

CLOSED_REASONS: dict[Phase, str] = {
    "lunch": "lunch break",
    "closed": "outside trading sessions",
}


def beijing_now() -> datetime:
    return datetime.now(BEIJING)


class TradingSchedule:
    """SSE/SZSE/BSE days and phases; `always` makes every moment a trading moment (tests, drills)."""

    def __init__(self, extra_closed: Iterable[date] = (), always: bool = False) -> None:
        self.calendar = Calendar.for_market("SH", extra_closed)
        self.always = always

    def phase(self, now: datetime) -> Phase:
        return "open" if self.always else self.calendar.phase(now)

    def active(self, now: datetime) -> bool:
        """Polled: the call auctions (quotes show the indicative price), the pause after the
        opening auction (its result) and continuous trading; not the lunch break, nights or holidays."""
        return self.always or self.calendar.is_active(now)

    def closed_reason(self, now: datetime) -> str:
        local = now.astimezone(BEIJING)
        if not self.calendar.is_trading_day(local.date()):
            return "not a trading day (weekend or exchange holiday)"
        return CLOSED_REASONS.get(self.phase(now), "outside trading sessions")

    def next_active(self, now: datetime) -> datetime:
        return now if self.always else self.calendar.next_active(now)

    def session_day(self, now: datetime) -> date:
        """The trading day TDX's intraday data belongs to: today's from the opening auction on,
        before that (and on holidays) the previous trading day's."""
        if self.always:
            return now.astimezone(BEIJING).date()
        return self.calendar.trading_day_at(now)

    def day_over(self, day: date, now: datetime) -> bool:
        """True once trading day `day` has closed (a day without trading is over once it began)."""
        if self.always:
            return day < now.astimezone(BEIJING).date()
        return self.calendar.day_over(day, now)

    def minute_at(self, day: date, index: int) -> datetime | None:
        """The Beijing start time of the 分时 point at `index` on `day`, None past the session grid."""
        if index < 0:
            return None
        hours = self.calendar.trading_hours(day)
        if not hours:  # `always` on a closed day: the grid of a regular trading day
            regular = self.calendar.trading_hours(self.calendar.previous_trading_day(day))
            hours = tuple((_on(day, a), _on(day, b)) for a, b in regular)
        for start, end in hours:
            span = int((end - start) / timedelta(minutes=1))
            if index < span:
                return start + timedelta(minutes=index)
            index -= span
        return None


def _on(day: date, t: datetime) -> datetime:
    return datetime.combine(day, t.timetz())
