"""A self-playing fake MiniQMT, importable in place of `xtquant.xtdata`.

For end-to-end tests of the real `argus-ingestor-qmt` process: run it with this directory on
PYTHONPATH and `QMT_XTDATA_MODULE=qmt_fake_autoplay`. Whatever the ingestor subscribes, a feed
thread answers every 0.2 s at the current time: ticks (whole-quote and per-code), the forming
1m/5m/1d bar re-sent with the same time, and l2 transactions including Shenzhen cancels.
`600001.SH` is suspended (stockStatus 17).
"""

from __future__ import annotations

import itertools
import threading
import time
from typing import Any

from qmt_fake_xtdata import FakeXtData, bar, l2, tick

FAKE = FakeXtData()
SUSPENDED = "600001.SH"
PERIOD_MS = {"1m": 60_000, "5m": 300_000}
_index = itertools.count(1)


def __getattr__(name: str) -> Any:  # the module *is* the fake: xtdata.connect(...) etc.
    return getattr(FAKE, name)


def _label(period: str, now_ms: int) -> int:
    if period == "1d":
        day = 86_400_000
        return (now_ms + 8 * 3_600_000) // day * day - 8 * 3_600_000  # Beijing midnight
    span = PERIOD_MS[period]
    return (now_ms // span + 1) * span  # QMT labels intraday bars by their end


def _price(code: str, step: int) -> float:
    base = 8.0 + (sum(map(ord, code)) % 50) / 10
    return round(base + 0.01 * (step % 7), 2)


def _play() -> None:
    for step in itertools.count():
        time.sleep(0.2)
        with FAKE.lock:
            if not FAKE.connected:
                continue
            subs = list(FAKE.subs.values())
        now = int(time.time() * 1000)
        ticks: dict[str, dict[str, Any]] = {}
        for period, target, _ in subs:
            codes = [target] if isinstance(target, str) else [c for c in FAKE.full_tick if c.split(".")[1] in target]
            for code in codes:
                p = _price(code, step)
                if period in ("tick", "whole"):
                    ticks[code] = tick(now, p, status=17 if code == SUSPENDED else 13, volume=10_000 + step)
                elif period in ("1m", "5m", "1d"):
                    FAKE.push_bars(code, period, [bar(_label(period, now), p, p + 0.02, p - 0.02, p, 100 + step)])
                elif period == "l2transaction":
                    n = next(_index)
                    FAKE.push_l2(code, [l2(now, p, 100 * (1 + n % 5), 1 + n % 2, n), l2(now, 0.0, 300, 3, n + 10**6)])
        if ticks:
            FAKE.push_ticks(ticks)


for _code in ("000001.SZ", "000002.SZ", "600000.SH", SUSPENDED):
    FAKE.full_tick[_code] = tick(int(time.time() * 1000), _price(_code, 0), status=17 if _code == SUSPENDED else 13)
threading.Thread(target=_play, name="fake-qmt-feed", daemon=True).start()


def _seed_history() -> None:
    """What MiniQMT has downloaded for 000333.SZ (a code no other test streams): 300 daily bars to yesterday, MiniQMT's dividend factors,
    one past day's 1m bars (labelled by their end) and that day's Level-2 transactions."""
    from datetime import datetime, timedelta

    from argus_protocol import BEIJING

    today = datetime.now(BEIJING).replace(hour=0, minute=0, second=0, microsecond=0)
    days = [today - timedelta(days=300 - i) for i in range(300)]
    FAKE.history[(HISTORIC, "1d")] = [
        bar(int(d.timestamp() * 1000), 20 + i * 0.01, 20.2 + i * 0.01, 19.9 + i * 0.01, 20.1 + i * 0.01, 1000 + i)
        for i, d in enumerate(days)
    ]
    FAKE.dividends[HISTORIC] = list(DIVIDENDS)
    morning = datetime(2025, 11, 10, 9, 30, tzinfo=BEIJING)
    minutes = [morning + timedelta(minutes=i) for i in range(120)] + [
        morning.replace(hour=13, minute=0) + timedelta(minutes=i) for i in range(120)
    ]
    FAKE.history[(HISTORIC, "1m")] = [
        bar(int((t + timedelta(minutes=1)).timestamp() * 1000), 11.0, 11.02, 10.98, 11.0 + (i % 5) * 0.01, 10 + i)
        for i, t in enumerate(minutes)
    ]
    FAKE.history[(HISTORIC, "l2transaction")] = [
        l2(int((morning + timedelta(seconds=3 * i)).timestamp() * 1000), 11.0, 100 * (1 + i % 3), 1 + i % 2, i + 1)
        for i in range(500)
    ]


HISTORIC = "000333.SZ"
DIVIDENDS = [("20260615", 1.25)]  # ex-date, dr (prev close / ex-rights price)
_seed_history()
