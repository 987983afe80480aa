"""Trading sessions and holidays (Beijing time): when to poll, and which minute a 分时 index is."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date, datetime, time, timedelta

from argus_protocol import BEIJING

Clock = Callable[[], datetime]


def beijing_now() -> datetime:
    return datetime.now(BEIJING)


class TradingCalendar:
    """Weekdays minus holidays, each with the same sessions; `always` makes every moment a session."""

    def __init__(
        self, sessions: Iterable[tuple[time, time]], holidays: Iterable[date] = (), always: bool = False
    ) -> None:
        self.sessions = sorted(sessions)
        self.holidays = frozenset(holidays)
        self.always = always
        grid: list[time] = []
        for start, end in self.sessions:
            t = datetime.combine(date.min, start)
            stop = datetime.combine(date.min, end)
            while t < stop:
                grid.append(t.time())
                t += timedelta(minutes=1)
        self.minutes = grid  # start of each session minute; 分时 index i is minutes[i]

    def is_trading_day(self, d: date) -> bool:
        return d.weekday() < 5 and d not in self.holidays

    def in_session(self, now: datetime) -> bool:
        if self.always:
            return True
        local = now.astimezone(BEIJING)
        if not self.is_trading_day(local.date()):
            return False
        t = local.time()
        return any(start <= t < end for start, end in self.sessions)

    def day_over(self, now: datetime) -> bool:
        """True once today's last session has ended (or today is no trading day)."""
        if self.always:
            return False
        local = now.astimezone(BEIJING)
        return not self.is_trading_day(local.date()) or local.time() >= self.sessions[-1][1]

    def next_open(self, now: datetime) -> datetime:
        """The next session start strictly after `now` (now itself when in session)."""
        if self.in_session(now):
            return now
        local = now.astimezone(BEIJING)
        d = local.date()
        for _ in range(400):  # a year of holidays is the worst case
            if self.is_trading_day(d):
                for start, _end in self.sessions:
                    at = datetime.combine(d, start, BEIJING)
                    if at > local:
                        return at
            d += timedelta(days=1)
        raise ValueError("no trading day within 400 days; check the holiday list")

    def minute_at(self, day: date, index: int) -> datetime | None:
        """The Beijing start time of the 分时 point at `index`, None past the session grid."""
        if not 0 <= index < len(self.minutes):
            return None
        return datetime.combine(day, self.minutes[index], BEIJING)
