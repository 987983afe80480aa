"""One trading day as periods: call auctions, continuous trading, the lunch break.

The exchange calendar package knows each day's open, close and midday break; the auctions around
them are exchange rules, laid out here per exchange:

- SSE / SZSE / BSE (XSHG): opening call auction 09:15–09:25, a pause until 09:30 (orders taken,
  nothing matched), continuous trading 09:30–11:30 and 13:00–14:57, closing call auction 14:57–15:00.
- HKEX (XHKG): pre-opening session 09:00–09:20 (auction), a pause until 09:30, continuous trading
  with the 12:00–13:00 lunch, closing auction session for 10 minutes after the close (16:00–16:10,
  or 12:00–12:10 on half days).
- NYSE (XNYS): continuous trading from open to close (its opening and closing crosses are instants).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Literal

Phase = Literal["closed", "auction", "pre_open", "open", "lunch"]
PHASES: tuple[Phase, ...] = ("closed", "auction", "pre_open", "open", "lunch")
ACTIVE: frozenset[Phase] = frozenset({"auction", "pre_open", "open"})  # the exchange takes orders

_MIN = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class Period:
    """A span of one trading day in one phase; `start` inclusive, `end` exclusive, market time."""

    phase: Phase
    start: datetime
    end: datetime

    def __contains__(self, instant: datetime) -> bool:
        return self.start <= instant < self.end


@dataclass(frozen=True, slots=True)
class TradingDay:
    """A day the exchange trades.

    `periods`: every phase of the day in order (auctions, pauses, lunch included).
    `hours`: the regular trading sessions as the exchange lists them (09:30–11:30 and 13:00–15:00
    for A-shares), where bars and 分时 minutes form; the A-share closing auction lies inside them.
    `known`: False when the date is past what the calendar package records (weekday assumed).
    """

    date: date
    periods: tuple[Period, ...]
    hours: tuple[tuple[datetime, datetime], ...]
    known: bool = True

    @property
    def first(self) -> datetime:
        """When the day's first period (usually the opening auction) begins."""
        return self.periods[0].start

    @property
    def last(self) -> datetime:
        """When the day's last period ends (after a closing auction that follows the close)."""
        return self.periods[-1].end

    @property
    def open(self) -> datetime:
        return self.hours[0][0]

    @property
    def close(self) -> datetime:
        return self.hours[-1][1]


def layout(
    exchange: str, d: date, open_: datetime, close: datetime, lunch: tuple[datetime, datetime] | None, known: bool
) -> TradingDay:
    """The periods of one day from the exchange's open, close and midday break."""
    hours = ((open_, lunch[0]), (lunch[1], close)) if lunch else ((open_, close),)
    periods: list[Period] = []
    if exchange == "XSHG":
        periods += [Period("auction", open_ - 15 * _MIN, open_ - 5 * _MIN), Period("pre_open", open_ - 5 * _MIN, open_)]
        periods += _continuous(hours, closing_auction_inside=3 * _MIN)
    elif exchange == "XHKG":
        periods += [
            Period("auction", open_ - 30 * _MIN, open_ - 10 * _MIN),
            Period("pre_open", open_ - 10 * _MIN, open_),
        ]
        periods += _continuous(hours)
        periods.append(Period("auction", close, close + 10 * _MIN))
    else:
        periods += _continuous(hours)
    return TradingDay(d, tuple(periods), hours, known)


def _continuous(
    hours: tuple[tuple[datetime, datetime], ...], closing_auction_inside: timedelta = _MIN * 0
) -> list[Period]:
    out: list[Period] = []
    for i, (start, end) in enumerate(hours):
        if i:
            out.append(Period("lunch", hours[i - 1][1], start))
        last = i == len(hours) - 1
        if last and closing_auction_inside:
            out.append(Period("open", start, end - closing_auction_inside))
            out.append(Period("auction", end - closing_auction_inside, end))
        else:
            out.append(Period("open", start, end))
    return out
