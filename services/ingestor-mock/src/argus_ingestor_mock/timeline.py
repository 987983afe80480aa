"""The past trading calendar of the simulated market: which minutes of which days were open.

Asked of `schedule.is_open` (whatever calendar it follows) at every quarter hour of a day, and
minute by minute only inside the quarter hours where the answer changes (a session opening or
closing); older days that only need a daily bar stop at their first open quarter hour. So a session
shorter than a quarter hour that lies wholly between two closed quarter hours is not seen. Days are
Beijing days (00:00-24:00). Answers for whole past days are kept (a few numbers a day), so seeding
many symbols asks the schedule once.
"""

from __future__ import annotations

from argus_protocol import BEIJING

from .schedule import is_open

MINUTE_MS = 60_000
DAY_MS = 86_400_000
QUARTER_MS = 15 * MINUTE_MS
_OFFSET_MS = int(BEIJING.utcoffset(None).total_seconds() * 1000)  # type: ignore[union-attr]  # fixed offset


def day_start_ms(ts_ms: int) -> int:
    """00:00 Beijing of the day containing ts_ms."""
    return (ts_ms + _OFFSET_MS) // DAY_MS * DAY_MS - _OFFSET_MS


class Timeline:
    """Open minutes per day for one schedule."""

    def __init__(self, schedule: str) -> None:
        self.schedule = schedule
        self._runs: dict[int, tuple[tuple[int, int], ...]] = {}  # past day -> its open (first minute, count) runs
        self._first_open: dict[int, int | None] = {}  # past day -> first open quarter hour

    def open_minutes(self, day_ms: int, now_ms: int) -> tuple[int, ...]:
        """Starts of the day's open minutes that began at or before now_ms, ascending."""
        whole = day_ms + DAY_MS <= now_ms
        runs = self._runs.get(day_ms) if whole else None
        if runs is not None:
            return tuple(m for first, n in runs for m in range(first, first + n * MINUTE_MS, MINUTE_MS))
        minutes = self._scan(day_ms, now_ms)
        if whole:
            self._runs[day_ms] = _runs(minutes)
            self._first_open[day_ms] = minutes[0] if minutes else None
        return minutes

    def first_open(self, day_ms: int, now_ms: int) -> int | None:
        """An open instant of the day at or before now_ms (its first open quarter hour, or first
        open minute if the day was scanned), or None: a day without trading."""
        whole = day_ms + DAY_MS <= now_ms
        if whole and day_ms in self._first_open:
            return self._first_open[day_ms]
        schedule = self.schedule
        end = min(day_ms + DAY_MS, now_ms + 1)
        found = next((q for q in range(day_ms, end, QUARTER_MS) if is_open(schedule, q / 1000)), None)
        if found is None and not whole and is_open(schedule, now_ms / 1000):
            found = now_ms  # opened since the last quarter hour
        if whole:
            self._first_open[day_ms] = found
        return found

    def _scan(self, day_ms: int, now_ms: int) -> tuple[int, ...]:
        schedule = self.schedule
        end = min(day_ms + DAY_MS, now_ms + 1)
        quarters = range(day_ms, end, QUARTER_MS)
        states = [is_open(schedule, q / 1000) for q in quarters]
        minutes: list[int] = []
        for i, q in enumerate(quarters):
            q_end = q + QUARTER_MS
            if q_end > end:  # today's quarter hour in progress: minute by minute up to now
                same = None
            elif i + 1 < len(states):
                same = states[i + 1] == states[i]
            else:
                same = is_open(schedule, q_end / 1000) == states[i]
            if same:
                if states[i]:
                    minutes.extend(range(q, q_end, MINUTE_MS))
            else:
                minutes.extend(m for m in range(q, min(q_end, end), MINUTE_MS) if is_open(schedule, m / 1000))
        return tuple(minutes)


def _runs(minutes: tuple[int, ...]) -> tuple[tuple[int, int], ...]:
    """Ascending minute starts as (first, count) runs of consecutive minutes."""
    out: list[tuple[int, int]] = []
    for m in minutes:
        if out and out[-1][0] + out[-1][1] * MINUTE_MS == m:
            out[-1] = (out[-1][0], out[-1][1] + 1)
        else:
            out.append((m, 1))
    return tuple(out)
