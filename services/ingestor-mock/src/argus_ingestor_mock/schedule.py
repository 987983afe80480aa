"""When the simulated market trades: always, or the real A-share sessions (Beijing time)."""

from __future__ import annotations

from datetime import datetime, time

from argus_protocol import BEIJING

CN_SESSIONS = ((time(9, 30), time(11, 30)), (time(13, 0), time(15, 0)))
SCHEDULES = ("always", "cn")


def is_open(schedule: str, now_s: float) -> bool:
    if schedule == "always":
        return True
    local = datetime.fromtimestamp(now_s, BEIJING)
    if local.weekday() >= 5:
        return False
    t = local.time()
    return any(start <= t < end for start, end in CN_SESSIONS)
