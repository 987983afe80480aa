"""The past trading calendar of the simulated market: which minutes of which days were open.

Asked of `schedule.is_open` (whatever calendar it follows) minute by minute for the days the past
walk steps through, and at quarter hours for the older days that only need a daily bar. Days are
Beijing days (00:00-24:00). Answers for whole past days are kept, so seeding many symbols asks
the schedule once.
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
        self._first_open: dict[int, int | None] = {}  # past day start -> first open quarter hour

    def open_minutes(self, day_ms: int, now_ms: int) -> tuple[int, ...]:
        """Starts of the day's open minutes that began at or before now_ms, ascending."""
        whole = day_ms + DAY_MS <= now_ms
        runs = self._runs.get(day_ms) if whole else None
        if runs is not None:
            return tuple(m for first, n in runs for m in range(first, first + n * MINUTE_MS, MINUTE_MS))
        if self.first_open(day_ms, now_ms) is None:
            minutes: tuple[int, ...] = ()
        else:
            schedule = self.schedule
            end = min(day_ms + DAY_MS, now_ms + 1)
            minutes = tuple(m for m in range(day_ms, end, MINUTE_MS) if is_open(schedule, m / 1000))
        if whole:
            self._runs[day_ms] = _runs(minutes)  # a few pairs a day, however long the process runs
        return minutes

    def first_open(self, day_ms: int, now_ms: int) -> int | None:
        """The day's first open quarter hour (at or before now_ms), or None: a day without trading.

        Quarter hours are enough to tell trading days from the rest; the minute walk asks every
        minute of the days it steps through.
        """
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


def _runs(minutes: tuple[int, ...]) -> tuple[tuple[int, int], ...]:
    """Ascending minute starts as (first, count) runs of consecutive minutes."""
    out: list[tuple[int, int]] = []
    for m in minutes:
        if out and out[-1][0] + out[-1][1] * MINUTE_MS == m:
            out[-1] = (out[-1][0], out[-1][1] + 1)
        else:
            out.append((m, 1))
    return tuple(out)
