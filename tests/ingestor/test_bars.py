"""Klines and 分时 built from trades, checked against hand-computed bars."""

from __future__ import annotations

from datetime import datetime

from argus_ingestor.bars import KlineBuilder, MinuteLine, bucket_start_ms
from argus_protocol import BEIJING


def ms(text: str) -> int:
    """Beijing wall-clock time to epoch ms."""
    return int(datetime.fromisoformat(text).replace(tzinfo=BEIJING).timestamp() * 1000)


def test_one_minute_bars_form_then_close_exactly_once() -> None:
    b = KlineBuilder(["1m"])
    k1 = b.add(ms("2026-11-23 09:30:05"), 10.0, 100, 1000.0)
    assert [(k.open_time, k.open, k.close, k.volume, k.closed) for k in k1] == [
        ("2026-11-23T09:30:00+08:00", 10.0, 10.0, 100, False)
    ]
    k2 = b.add(ms("2026-11-23 09:30:40"), 10.5, 200, 2100.0)
    assert (k2[0].high, k2[0].low, k2[0].close, k2[0].volume, k2[0].amount) == (10.5, 10.0, 10.5, 300, 3100.0)
    k3 = b.add(ms("2026-11-23 09:31:01"), 9.8, 100, 980.0)
    closed = [k for k in k3 if k.closed]
    forming = [k for k in k3 if not k.closed]
    assert len(closed) == 1 and closed[0].open_time == "2026-11-23T09:30:00+08:00" and closed[0].volume == 300
    assert (closed[0].open, closed[0].high, closed[0].low, closed[0].close) == (10.0, 10.5, 10.0, 10.5)
    assert forming[0].open_time == "2026-11-23T09:31:00+08:00" and forming[0].open == 9.8
    # a late print for the closed minute does not reopen it
    assert b.add(ms("2026-11-23 09:30:59"), 50.0, 100, 5000.0) == []


def test_periods_align_on_the_beijing_clock_and_day_at_midnight() -> None:
    b = KlineBuilder(["5m", "15m", "30m", "60m", "1d"])
    got = {k.period: k.open_time for k in b.add(ms("2026-11-23 10:47:12"), 10.0, 100, 1000.0)}
    assert got == {
        "5m": "2026-11-23T10:45:00+08:00",
        "15m": "2026-11-23T10:45:00+08:00",
        "30m": "2026-11-23T10:30:00+08:00",
        "60m": "2026-11-23T10:00:00+08:00",
        "1d": "2026-11-23T00:00:00+08:00",
    }
    # 23:59 Beijing and 00:01 next day are different days even though UTC says otherwise
    d = KlineBuilder(["1d"])
    d.add(ms("2026-11-23 23:59:00"), 10.0, 100, 1000.0)
    rolled = d.add(ms("2026-11-24 00:01:00"), 11.0, 100, 1100.0)
    assert [(k.open_time, k.closed) for k in rolled] == [
        ("2026-11-23T00:00:00+08:00", True),
        ("2026-11-24T00:00:00+08:00", False),
    ]
    assert bucket_start_ms(ms("2026-11-24 07:59:00"), 86400, BEIJING) == ms("2026-11-24 00:00:00")


def test_roll_closes_quiet_bars() -> None:
    b = KlineBuilder(["1m", "1d"])
    b.add(ms("2026-11-23 09:30:05"), 10.0, 100, 1000.0)
    assert b.roll(ms("2026-11-23 09:30:59")) == []
    rolled = b.roll(ms("2026-11-23 09:31:00"))
    assert [(k.period, k.closed) for k in rolled] == [("1m", True)]
    assert b.roll(ms("2026-11-23 09:32:00")) == []


def test_minute_line_vwap_since_the_day_start() -> None:
    line = MinuteLine()
    t1 = line.add(ms("2026-11-23 09:30:10"), 10.0, 100, 1000.0)
    assert (t1[0].time, t1[0].price, t1[0].avg_price, t1[0].volume, t1[0].closed) == (
        "2026-11-23T09:30:00+08:00",
        10.0,
        10.0,
        100,
        False,
    )
    t2 = line.add(ms("2026-11-23 09:30:50"), 12.0, 300, 3600.0)
    assert t2[0].avg_price == 11.5 and t2[0].volume == 400 and t2[0].amount == 4600.0
    t3 = line.add(ms("2026-11-23 09:31:00"), 11.0, 100, 1100.0)
    assert [t.closed for t in t3] == [True, False]
    assert t3[0].volume == 400 and t3[1].volume == 100
    assert t3[1].avg_price == round(5700.0 / 500, 4)  # running VWAP keeps the earlier minute
    nxt = line.add(ms("2026-11-24 09:30:00"), 20.0, 100, 2000.0)
    assert nxt[-1].avg_price == 20.0  # a new day starts a new VWAP
