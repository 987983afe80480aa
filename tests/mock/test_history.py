"""The mock seeds a symbol's past when it starts: a chart opened right away is full, and live continues it."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from itertools import pairwise
from typing import Any

import pytest
from argus_ingestor_mock.schedule import is_open
from argus_ingestor_mock.source import MockSource
from argus_ingestor_mock.timeline import DAY_MS, MINUTE_MS, Timeline, day_start_ms
from argus_protocol import PERIOD_SECONDS, PERIODS, Event, Stream
from sourceharness import Recorder, SourceHarness

MONDAY = "2026-11-23 10:17:30"  # 10:17:30 on a Monday, Beijing


def bj(text: str) -> float:
    return datetime.fromisoformat(text + "+08:00").timestamp()


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def source(when: str, **options: Any) -> tuple[MockSource, list[float]]:
    now = [bj(when)]
    opts = {"seed": 1, "universe": 0, **options}  # always-on: 000001.SZ and 600000.SH
    return MockSource(opts, clock=lambda: now[0]), now


def tag(e: Event) -> str:
    return e.__struct_config__.tag  # type: ignore[return-value]


def split(h: SourceHarness, symbol: str) -> tuple[list[Any], list[Any]]:
    """The symbol's seeded events (the first batch it appears in) and its live events after it."""
    for i, batch in enumerate(h.batches):
        mine = [e for e in batch if e.symbol == symbol]
        if mine:
            return mine, [e for later in h.batches[i + 1 :] for e in later if e.symbol == symbol]
    raise AssertionError(f"nothing for {symbol}; {h.describe()}")


def payloads(events: list[Any], kind: str, period: str | None = None) -> list[Any]:
    out = [getattr(e, kind) for e in events if tag(e) == kind]
    return out if period is None else [k for k in out if k.period == period]


def has_quote(h: SourceHarness, *symbols: str) -> bool:
    return all(h.events_of("quote", s) for s in symbols)


def ticks_of(x: float) -> int:
    return round(x * 100)


def within_limit(bar: Any, prev_close: float) -> bool:
    """Open, high, low and close (a quote's price) within the ±10% limit of prev_close."""
    c = ticks_of(prev_close)
    lo, hi = c - int(c * 0.1), c + int(c * 0.1)
    last = bar.price if hasattr(bar, "price") else bar.close
    return all(lo <= ticks_of(x) <= hi for x in (bar.open, bar.high, bar.low, last))


def consistent(bar: Any) -> bool:
    return (
        bar.low <= min(bar.open, bar.close) <= max(bar.open, bar.close) <= bar.high
        and bar.volume > 0
        and bar.low * bar.volume - 0.01 <= bar.amount <= bar.high * bar.volume + 0.01
    )


def assert_folds(fine: list[Any], coarse: list[Any], period: str) -> int:
    """Every coarse bar made only of published fine bars agrees with them; returns how many were checked."""
    first = at(fine[0].open_time)
    span = timedelta(seconds=PERIOD_SECONDS[period])
    checked = 0
    for bar in coarse:
        start = at(bar.open_time)
        if start < first:
            continue  # holds minutes older than the fine bars published
        inside = [f for f in fine if start <= at(f.open_time) < start + span]
        assert inside, bar
        assert bar.open == inside[0].open and bar.close == inside[-1].close, (bar, inside)
        assert bar.high == max(f.high for f in inside) and bar.low == min(f.low for f in inside), (bar, inside)
        assert bar.volume == sum(f.volume for f in inside), (bar, inside)
        assert bar.amount == pytest.approx(sum(f.amount for f in inside), abs=0.01 * len(inside))
        assert bar.closed or not inside[-1].closed  # a forming bar holds the forming minute
        checked += 1
    return checked


async def test_seeded_minute_line_is_the_session_so_far_with_the_forming_minute_last() -> None:
    for schedule, first_minute in (("always", "2026-11-23T00:00:00+08:00"), ("cn", "2026-11-23T09:30:00+08:00")):
        src, _ = source(MONDAY, schedule=schedule)
        async with SourceHarness(src, Recorder("mock")) as h:
            await h.until(lambda h=h: has_quote(h, "000001.SZ", "600000.SH"))
        seeded, _ = split(h, "000001.SZ")
        ticks = payloads(seeded, "tick")
        expected, t = [], at(first_minute)
        while t <= at("2026-11-23T10:17:00+08:00"):
            expected.append(t.isoformat())
            t += timedelta(minutes=1)
        assert [k.time for k in ticks] == expected, schedule
        assert [k.closed for k in ticks] == [True] * (len(ticks) - 1) + [False]  # the forming minute last
        volume, amount = 0, 0.0
        for k in ticks:  # the running VWAP of the day
            volume += k.volume
            amount += k.amount
            assert k.volume > 0 and k.avg_price == pytest.approx(amount / volume, abs=0.001)


@pytest.mark.parametrize("schedule", ["always", "cn"])
async def test_each_period_seeds_its_newest_bars_and_the_longer_ones_fold_the_shorter(schedule: str) -> None:
    src, _ = source(MONDAY, schedule=schedule)
    async with SourceHarness(src, Recorder("mock")) as h:
        await h.until(lambda: has_quote(h, "000001.SZ", "600000.SH"))
    seeded, _ = split(h, "000001.SZ")
    bars = {p: payloads(seeded, "kline", p) for p in PERIODS}
    now = at("2026-11-23T10:17:30+08:00")
    for p, ks in bars.items():
        assert len(ks) == 301 and [k.closed for k in ks] == [True] * 300 + [False], p  # the default 300 + forming
        times = [at(k.open_time) for k in ks]
        assert times == sorted(set(times)), p  # strictly increasing
        span = timedelta(seconds=PERIOD_SECONDS[p])
        assert times[-1] <= now < times[-1] + span, p  # the forming bar is the one now falls in
        assert all(consistent(k) for k in ks), p
        if schedule == "always" and p != "1d":
            assert all(b - a == span for a, b in pairwise(times)), p  # none missing: the newest
    minutes = [at(k.open_time) for k in bars["1m"]]
    if schedule == "cn":  # 47 closed minutes today, Friday's 240, Thursday's last 13
        assert minutes[0] == at("2026-11-19T14:47:00+08:00") and all(is_open("cn", m.timestamp()) for m in minutes)
    for fine, coarse in (("1m", "5m"), ("5m", "15m"), ("15m", "30m"), ("30m", "60m"), ("1m", "60m")):
        assert assert_folds(bars[fine], bars[coarse], coarse) >= 3, (fine, coarse)
    # today's daily bar is today's 分时
    day, ticks = bars["1d"][-1], payloads(seeded, "tick")
    assert day.volume == sum(t.volume for t in ticks) and day.close == ticks[-1].price
    assert day.amount == pytest.approx(sum(t.amount for t in ticks), abs=0.01 * len(ticks))
    # daily bars: each within the ±10% limit of the close before, chained
    days = bars["1d"]
    assert all(within_limit(b, a.close) for a, b in pairwise(days))
    if schedule == "cn":
        assert all(at(k.open_time).weekday() < 5 for k in days)
    assert len({k.close for k in days}) > 100  # a walk, not a flat line


async def test_the_first_live_quote_continues_the_seeded_day() -> None:
    src, now = source(MONDAY)
    wanted = [("quote", "300750.SZ"), ("trade", "300750.SZ"), ("tick", "300750.SZ"), ("kline", "300750.SZ", "1m")]
    async with SourceHarness(src, Recorder("mock")) as h:
        h.want(*wanted, ("kline", "300750.SZ", "1d"))
        await h.until(lambda: len(h.events_of("quote", "300750.SZ")) >= 1)
        now[0] += 0.5
        await h.until(lambda: len(h.events_of("quote", "300750.SZ")) >= 3)
    seeded, live = split(h, "300750.SZ")
    (q0,) = payloads(seeded, "quote")
    trades = payloads(seeded, "trade")
    day = payloads(seeded, "kline", "1d")[-1]
    minute = payloads(seeded, "kline", "1m")[-1]
    ticks = payloads(seeded, "tick")
    # the seeded quote is the seeded day
    assert q0.price == trades[-1].price == minute.close == ticks[-1].price == day.close
    assert (q0.open, q0.high, q0.low, q0.volume) == (day.open, day.high, day.low, day.volume)
    assert q0.volume == sum(t.volume for t in ticks) and q0.amount == pytest.approx(day.amount, abs=0.01)
    assert within_limit(day, q0.prev_close)
    # the first live update trades on from there
    first, second = [i for i, e in enumerate(live) if tag(e) == "quote"][:2]
    q1 = live[first].quote
    live_trades = [e.trade for e in live[first:second] if tag(e) == "trade"]  # an update: its quote, its trades
    assert live_trades and int(live_trades[0].trade_id) == int(trades[-1].trade_id) + 1
    assert abs(live_trades[0].price - q0.price) <= 0.01 * q0.price
    assert q1.volume == q0.volume + sum(t.volume for t in live_trades)
    assert q1.amount == pytest.approx(q0.amount + sum(t.price * t.volume for t in live_trades), abs=0.01)
    assert (q1.open, q1.prev_close) == (q0.open, q0.prev_close)
    assert q1.high == max(q0.high, *(t.price for t in live_trades))
    assert q1.low == min(q0.low, *(t.price for t in live_trades))
    assert within_limit(q1, q1.prev_close) and q1.timestamp >= q0.timestamp


async def test_live_bars_continue_the_seeded_forming_bar() -> None:
    src, now = source(MONDAY)
    symbol = "300750.SZ"
    async with SourceHarness(src, Recorder("mock")) as h:
        h.want(("kline", symbol, "1m"), ("kline", symbol, "1d"), ("tick", symbol))
        await h.until(lambda: len(h.of("kline", symbol, "1m")) > 305)
        now[0] = bj("2026-11-23 10:18:02")  # the seeded forming minute ends
        await h.until(lambda: h.of("kline", symbol, "1m")[-1].open_time.startswith("2026-11-23T10:18"))
    seeded, live = split(h, symbol)
    for period, ended in (("1m", True), ("1d", False)):
        forming = payloads(seeded, "kline", period)[-1]
        after = payloads(live, "kline", period)
        same = [k for k in after if k.open_time == forming.open_time]
        assert same and after[: len(same)] == same, period  # nothing else before it closes
        volumes = [forming.volume, *(k.volume for k in same)]
        assert volumes == sorted(volumes) and volumes[-1] > volumes[0], period  # never backwards
        assert all(k.open == forming.open and k.high >= forming.high and k.low <= forming.low for k in same)
        assert [k.closed for k in same] == [False] * (len(same) - 1) + [ended], period
    assert payloads(live, "kline", "1m")[len(same) :][0].open_time == "2026-11-23T10:18:00+08:00"
    seeded_ticks = payloads(seeded, "tick")
    live_ticks = payloads(live, "tick")
    assert live_ticks[0].time == seeded_ticks[-1].time and live_ticks[0].volume > seeded_ticks[-1].volume


@pytest.mark.parametrize(
    ("when", "last_minute"),
    [("2026-11-23 12:10:00", "2026-11-23T11:29:00+08:00"), ("2026-11-22 10:00:00", "2026-11-20T14:59:00+08:00")],
    ids=["lunch", "sunday"],
)
async def test_cn_seeds_nothing_in_the_lunch_break_or_on_a_weekend(when: str, last_minute: str) -> None:
    src, _ = source(when, schedule="cn")
    rec = Recorder("mock")
    async with SourceHarness(src, rec) as h:
        await h.until(lambda: has_quote(h, "000001.SZ", "600000.SH"))
        n = len(h.events)
        await h.until(lambda: len(h.batches) >= 2)
        await asyncio.sleep(0.3)
        assert len(h.events) == n  # closed: no live updates, and no second quote
    assert rec.states() == ["closed"]
    seeded, live = split(h, "000001.SZ")
    assert live == []
    minutes = [at(k.open_time) for k in payloads(seeded, "kline", "1m")] + [
        at(t.time) for t in payloads(seeded, "tick")
    ]
    instants = minutes + [at(t.time) for t in payloads(seeded, "trade")]
    for t in instants:
        assert t.weekday() < 5 and not ((t.hour == 11 and t.minute >= 30) or t.hour == 12), t
        assert is_open("cn", t.timestamp()), t
    ticks = payloads(seeded, "tick")
    assert len(ticks) == (120 if "12:10" in when else 240) and ticks[-1].time == last_minute
    assert all(t.closed for t in ticks)  # the last minute closed when the session did
    assert all(k.closed for k in payloads(seeded, "kline", "1m")) and len(payloads(seeded, "kline", "1m")) == 300
    days = payloads(seeded, "kline", "1d")
    assert all(at(k.open_time).weekday() < 5 for k in days)
    assert [k.closed for k in days][-1] == ("12:10" not in when)  # Friday's bar closed at midnight
    (quote,) = payloads(seeded, "quote")
    assert quote.volume == days[-1].volume and quote.price == ticks[-1].price


async def test_streams_with_retained_history_are_not_seeded() -> None:
    src, _ = source(MONDAY)
    rec = Recorder("mock")
    rec.retained[Stream("kline", "000001.SZ", "1m")] = 7
    rec.retained[Stream("tick", "000001.SZ")] = 3
    everything = [Stream("quote", "600000.SH"), Stream("tick", "600000.SH"), Stream("trade", "600000.SH")]
    for s in [*everything, *(Stream("kline", "600000.SH", p) for p in PERIODS)]:
        rec.retained[s] = 12
    async with SourceHarness(src, rec) as h:
        await h.until(lambda: has_quote(h, "000001.SZ") and len(h.events_of("quote", "600000.SH")) >= 2)
    seeded, _ = split(h, "000001.SZ")
    assert payloads(seeded, "kline", "1m") == [] and payloads(seeded, "tick") == []
    assert {k.period for k in payloads(seeded, "kline")} == {"5m", "15m", "30m", "60m", "1d"}
    assert len(payloads(seeded, "trade")) == 200 and len(payloads(seeded, "quote")) == 1
    # all of 600000.SH is retained: nothing seeded, its live walk just starts
    assert {tag(e) for e in h.events if e.symbol == "600000.SH"} == {"quote"}
    first = h.of("quote", "600000.SH")[0]
    assert first.volume <= 3 * 50 * 100  # one update's trades, not a seeded day


async def test_history_options_choose_what_is_seeded() -> None:
    src, _ = source(MONDAY, history=10, history_periods="5m, 1d", history_trades=20)
    async with SourceHarness(src, Recorder("mock")) as h:
        await h.until(lambda: has_quote(h, "000001.SZ"))
    seeded, _ = split(h, "000001.SZ")
    assert {k.period for k in payloads(seeded, "kline")} == {"5m", "1d"}
    assert len(payloads(seeded, "kline", "5m")) == len(payloads(seeded, "kline", "1d")) == 11
    trades = payloads(seeded, "trade")
    assert len(trades) == 20 and [int(t.trade_id) for t in trades] == sorted(int(t.trade_id) for t in trades)
    assert [t.time for t in trades] == sorted(t.time for t in trades) and trades[
        -1
    ].time <= "2026-11-23T10:17:30.000+08:00"
    assert all(e.seq == 0 and e.ts == 0 and e.source == "mock" for e in seeded)  # the runner stamps them

    src, _ = source(MONDAY, history=0)
    async with SourceHarness(src, Recorder("mock")) as h:
        await h.until(lambda: has_quote(h, "000001.SZ"))
    seeded, _ = split(h, "000001.SZ")
    assert [tag(e) for e in seeded] == ["quote"] and seeded[0].quote.volume <= 3 * 50 * 100  # off: live only


async def test_a_symbol_wanted_later_seeds_what_is_wanted_and_every_period() -> None:
    src, _ = source(MONDAY)
    async with SourceHarness(src, Recorder("mock")) as h:
        await h.until(lambda: has_quote(h, "000001.SZ", "600000.SH"))
        h.want(("trade", "300750.SZ"), ("kline", "300750.SZ", "5m"))
        await h.until(lambda: len(h.of("trade", "300750.SZ")) > 200 and len(h.of("kline", "300750.SZ", "5m")) > 301)
    seeded, live = split(h, "300750.SZ")
    assert {tag(e) for e in seeded} == {"trade", "kline"}  # no quote or 分时: not wanted
    assert {k.period for k in payloads(seeded, "kline")} == set(PERIODS)  # a chart may switch periods
    assert all(len(payloads(seeded, "kline", p)) == 301 for p in PERIODS)
    assert len(payloads(seeded, "trade")) == 200
    assert {tag(e) for e in live} == {"trade", "kline"} and {k.period for k in payloads(live, "kline")} == {"5m"}


async def test_the_same_seed_seeds_the_same_past() -> None:
    pasts = []
    for _ in range(2):
        src, _ = source(MONDAY, seed=5, schedule="cn")
        async with SourceHarness(src, Recorder("mock")) as h:
            await h.until(lambda h=h: has_quote(h, "000001.SZ"))
        pasts.append(split(h, "000001.SZ")[0])
    assert pasts[0] == pasts[1] and len(pasts[0]) > 2000


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"history": -1}, "history: must be within 0..1000"),
        ({"history": 1001}, "history: must be within 0..1000"),
        ({"history": "lots"}, "history: must be a whole number, got 'lots'"),
        ({"history": 2.5}, "history: must be a whole number"),
        ({"history_trades": 2001}, "history_trades: must be within 0..2000"),
        ({"history_periods": ["1m", "2m"]}, "history_periods: '2m' is not one of 1m, 5m"),
        ({"history_periods": "1m,7m"}, "history_periods: '7m' is not one of"),
        ({"history_periods": 5}, "history_periods: must be a list of periods"),
    ],
)
def test_bad_history_options_are_one_clear_line(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError) as e:
        MockSource(options)
    assert str(e.value).startswith(message) and "\n" not in str(e.value)


def test_history_option_defaults_and_forms() -> None:
    o = MockSource({}).opts
    assert (o.history, o.history_periods, o.history_trades) == (300, PERIODS, 200)
    o = MockSource({"history": "50", "history_periods": ["1d", "1m", "1m"], "history_trades": "0"}).opts
    assert (o.history, o.history_periods, o.history_trades) == (50, ("1m", "1d"), 0)
    assert MockSource({"history_periods": ""}).opts.history_periods == ()


def test_the_past_calendar_is_the_schedule_minute_by_minute() -> None:
    for schedule in ("cn", "always"):
        timeline = Timeline(schedule)
        for when in ("2026-11-23 10:17:30", "2026-11-23 11:30:00", "2026-11-23 09:30:00", "2026-11-22 10:00:00"):
            now = int(bj(when) * 1000)
            for back in range(10):  # today so far, then whole days (twice: the second from the cache)
                day = day_start_ms(now) - back * DAY_MS
                minutes = range(day, min(day + DAY_MS, now + 1), MINUTE_MS)
                expected = tuple(m for m in minutes if is_open(schedule, m / 1000))
                assert timeline.open_minutes(day, now) == expected == timeline.open_minutes(day, now), (when, back)
