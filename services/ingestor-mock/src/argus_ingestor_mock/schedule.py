"""When the simulated market trades: always, or A-share continuous trading on the SSE/SZSE
calendar (argus-calendar: weekends, exchange holidays and make-up working days closed, the lunch
break and the call auctions without trades)."""

from __future__ import annotations

from datetime import datetime

from argus_calendar import Calendar
from argus_protocol import BEIJING

SCHEDULES = ("always", "cn")


def is_open(schedule: str, now_s: float) -> bool:
    """In the regular sessions (09:30–11:30, 13:00–15:00 on trading days): the mock trades through
    the closing auction's minutes, as bars and 分时 count them, and not in the opening auction."""
    if schedule == "always":
        return True
    # for_market hands out one shared calendar per market, so this is a dict look-up per step
    cal = Calendar.for_market("SH")
    now = datetime.fromtimestamp(now_s, BEIJING)
    return any(start <= now < end for start, end in cal.trading_hours(now.date()))
