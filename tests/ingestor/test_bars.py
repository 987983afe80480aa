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


def test_minutes_fold_into_a_five_minute_bar_by_hand() -> None:
    b = KlineBuilder(["1m", "5m"])
    trades = [
        ("2026-11-23 09:30:01", 10.00, 100),
        ("2026-11-23 09:31:30", 10.20, 200),
        ("2026-11-23 09:31:45", 9.90, 100),
        ("2026-11-23 09:34:59", 10.10, 300),
    ]
    for t, p, v in trades:
        b.add(ms(t), p, v, p * v)
    rolled = b.add(ms("2026-11-23 09:35:00"), 10.05, 100, 1005.0)
    closed = {k.period: k for k in rolled if k.closed}
    assert set(closed) == {"1m", "5m"}
    five = closed["5m"]
    assert five.open_time == "2026-11-23T09:30:00+08:00"
    assert (five.open, five.high, five.low, five.close) == (10.00, 10.20, 9.90, 10.10)
    assert (five.volume, five.amount) == (700, 1000.0 + 2040.0 + 990.0 + 3030.0)
    assert closed["1m"].open_time == "2026-11-23T09:34:00+08:00" and closed["1m"].volume == 300
    forming = {k.period: k for k in rolled if not k.closed}
    assert forming["5m"].open_time == "2026-11-23T09:35:00+08:00" and forming["5m"].volume == 100


def test_emit_builds_only_the_asked_periods_and_a_late_joiner_gets_the_whole_bar() -> None:
    b = KlineBuilder(["1m", "5m", "1d"])
    assert b.add(ms("2026-11-23 10:00:10"), 10.0, 100, 1000.0, emit=()) == []
    assert b.add(ms("2026-11-23 10:01:10"), 11.0, 100, 1100.0, emit=()) == []
    got = b.add(ms("2026-11-23 10:02:10"), 10.5, 200, 2100.0, emit=("5m",))
    assert [(k.period, k.open, k.high, k.low, k.close, k.volume, k.amount, k.closed) for k in got] == [
        ("5m", 10.0, 11.0, 10.0, 10.5, 400, 4200.0, False)
    ]
    # 5m closes at 10:05 and is returned because it is asked for then; 1m and 1d stay silent
    got = b.add(ms("2026-11-23 10:05:00"), 10.0, 100, 1000.0, emit=("5m",))
    assert [(k.period, k.closed, k.volume) for k in got] == [("5m", True, 400), ("5m", False, 100)]
    assert {k.period: k.volume for k in b.forming()} == {"1m": 100, "5m": 100, "1d": 500}


def test_add_print_carries_the_high_and_low_between_open_and_close() -> None:
    b = KlineBuilder(["1m"])
    (k,) = b.add_print(ms("2026-11-23 10:00:10"), 10.0, 10.3, 9.8, 10.1, 300, 3030.0)
    assert (k.open, k.high, k.low, k.close, k.volume) == (10.0, 10.3, 9.8, 10.1, 300)


def test_every_bar_closes_exactly_once_and_closed_bars_add_up() -> None:
    import random

    rng = random.Random(3)
    periods = ["1m", "5m", "15m", "30m", "60m", "1d"]
    b = KlineBuilder(periods)
    t = ms("2026-11-23 22:50:00")  # runs across Beijing midnight
    closed: dict[tuple[str, str], int] = {}
    closed_volume = dict.fromkeys(periods, 0)
    forming_after_close: list[tuple[str, str]] = []
    accepted = 0

    def take(out: list) -> None:  # type: ignore[type-arg]
        for k in out:
            key = (k.period, k.open_time)
            if k.closed:
                closed[key] = closed.get(key, 0) + 1
                closed_volume[k.period] += k.volume
            elif key in closed:
                forming_after_close.append(key)

    for _ in range(5000):
        t += rng.randint(0, 4000)
        if rng.random() < 0.02:
            take(b.roll(t))
            continue
        late = rng.random() < 0.05
        out = b.add(t - 90_000 if late else t, 10.0, 100, 1000.0)
        accepted += 100 if out else 0  # an accepted trade always returns its forming bars
        take(out)
    take(b.roll(t + 2 * 86_400_000))
    assert all(n == 1 for n in closed.values()), [k for k, n in closed.items() if n > 1]
    assert forming_after_close == []
    assert closed_volume == dict.fromkeys(periods, accepted)


def test_roll_then_a_late_trade_does_not_reopen_the_bar() -> None:
    b = KlineBuilder(["1m"])
    b.add(ms("2026-11-23 11:29:30"), 10.0, 100, 1000.0)
    assert [k.closed for k in b.roll(ms("2026-11-23 11:30:00.5"))] == [True]
    assert b.add(ms("2026-11-23 11:29:59"), 10.0, 100, 1000.0) == []
    assert b.roll(ms("2026-11-23 13:00:00")) == []


def test_minute_line_keeps_vwap_while_silent_and_rolls_once() -> None:
    line = MinuteLine()
    assert line.add(ms("2026-11-23 09:30:10"), 10.0, 100, 1000.0, emit=False) == []
    (t,) = line.add(ms("2026-11-23 09:30:20"), 12.0, 100, 1200.0)
    assert (t.avg_price, t.volume, t.amount) == (11.0, 200, 2200.0)
    assert [x.closed for x in line.roll(ms("2026-11-23 09:31:00"))] == [True]
    assert line.roll(ms("2026-11-23 09:32:00")) == []
    assert line.add(ms("2026-11-23 09:30:59"), 99.0, 100, 9900.0) == []  # late: the minute is closed
    (t,) = line.add(ms("2026-11-23 09:32:05"), 13.0, 200, 2600.0)
    assert t.time == "2026-11-23T09:32:00+08:00" and t.avg_price == round(4800.0 / 400, 4)
