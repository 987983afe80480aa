"""The simulated market behaves like one: consistent books, volumes, bars, and repeatable seeds."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime

import pytest
from argus_ingestor import HistoryQuery, WantedSet
from argus_ingestor_mock.market import Instrument, base_price, local_iso
from argus_ingestor_mock.schedule import is_open
from argus_ingestor_mock.source import ALWAYS, MockSource, universe_symbols
from argus_protocol import BEIJING, PERIODS, Event, KlineEvent, QuoteEvent, Stream, TickEvent
from sourceharness import as_events

T0 = int(datetime(2026, 11, 23, 10, 0, tzinfo=BEIJING).timestamp() * 1000)  # a Monday


def bj(text: str) -> float:
    """Beijing wall-clock time to epoch seconds."""
    return datetime.fromisoformat(text).replace(tzinfo=BEIJING).timestamp()


def on_tick(x: float) -> bool:
    return abs(x * 100 - round(x * 100)) < 1e-6


def test_random_walk_quotes_books_and_totals_are_consistent_over_many_steps() -> None:
    inst = Instrument("000001.SZ", seed=7)
    last_volume, last_amount = 0, 0.0
    last_id = 0
    for i in range(3000):
        now = T0 + i * 1000
        p = inst.step(now)
        q = inst.quote(local_iso(now, BEIJING))
        assert q.low <= q.price <= q.high and q.low <= q.open <= q.high
        lo, hi = round(q.prev_close * 0.9, 2), round(q.prev_close * 1.1, 2)
        assert lo <= q.low and q.high <= hi  # the daily limit
        assert all(on_tick(x) for x in (q.price, q.open, q.high, q.low, *q.bid_prices, *q.ask_prices))
        # cumulative volume only grows, by exactly the trades; turnover by price × volume
        assert q.volume == last_volume + sum(t.volume for t in p.trades) > last_volume
        assert q.amount == pytest.approx(last_amount + sum(t.price * t.volume for t in p.trades), abs=1e-6)
        assert all(t.volume > 0 and t.volume % 100 == 0 and t.side in ("B", "S") for t in p.trades)
        assert all(t.time == q.timestamp and t.time.endswith("+08:00") for t in p.trades)
        ids = [int(t.trade_id) for t in p.trades]
        assert ids == list(range(last_id + 1, last_id + 1 + len(ids)))
        last_id = ids[-1]
        # the book: five levels each side, bids below asks, a one-tick spread at the last price
        assert len(q.bid_prices) == len(q.ask_prices) == len(q.bid_volumes) == len(q.ask_volumes) == 5
        assert q.bid_prices == sorted(q.bid_prices, reverse=True) and q.ask_prices == sorted(q.ask_prices)
        assert len(set(q.bid_prices)) == len(set(q.ask_prices)) == 5
        assert q.bid_prices[0] < q.ask_prices[0] and round(q.ask_prices[0] - q.bid_prices[0], 2) == 0.01
        assert q.bid_prices[0] <= q.price <= q.ask_prices[0]
        assert min(q.bid_volumes + q.ask_volumes) > 0 and all(v % 100 == 0 for v in q.bid_volumes + q.ask_volumes)
        last_volume, last_amount = q.volume, q.amount
    # the book moves with the market (a new one each update); looking at it again draws nothing
    assert len({(inst.step(T0), inst.quote("x").bid_volumes[0])[1] for _ in range(50)}) > 10
    assert inst.quote("x") == inst.quote("x")


def test_at_the_daily_limits_the_book_keeps_its_bids_down_and_loses_its_asks_up() -> None:
    inst = Instrument("000001.SZ", seed=7)
    prev = inst.prev_close_t
    lo, hi = prev - int(prev * 0.1), prev + int(prev * 0.1)
    for _ in range(20):  # both draws of the touch (bid1 at the last price or a tick below)
        inst.last_t = inst.low_t = lo  # 跌停: buyers still bid the limit price
        q = inst.quote("x")
        assert q.bid_prices and q.bid_prices[0] == lo / 100 and min(q.bid_prices) >= lo / 100
        assert q.ask_prices[0] > q.bid_prices[0]
        inst.last_t = inst.high_t = hi  # 涨停: nobody sells above the limit
        q = inst.quote("x")
        assert max(q.ask_prices, default=0) <= hi / 100 and q.bid_prices[0] <= hi / 100


def test_bars_and_minute_line_agree_with_the_quote_over_a_day() -> None:
    inst = Instrument("600000.SH", seed=11)
    closed_1m = 0
    for i in range(3000):
        now = T0 + i * 700
        printed = inst.step(now)
        klines, ticks = inst.feed(now, printed, PERIODS, tick=True)
        q = inst.quote("x")
        day = next(k for k in klines if k.period == "1d" and not k.closed)
        # the forming day bar is the quote's day
        assert (day.open, day.high, day.low, day.close) == (q.open, q.high, q.low, q.price)
        assert (day.volume, day.amount) == (q.volume, pytest.approx(q.amount, abs=0.011))
        forming = {k.period: k for k in klines if not k.closed}
        assert set(forming) == set(PERIODS)
        for k in forming.values():
            assert k.low <= min(k.open, k.close) and k.high >= max(k.open, k.close) and k.close == q.price
        assert forming["1m"].volume <= forming["5m"].volume <= forming["60m"].volume <= day.volume
        (tick,) = [t for t in ticks if not t.closed]
        assert tick.price == q.price and tick.avg_price == round(q.amount / q.volume, 4)
        assert tick.volume == forming["1m"].volume
        closed_1m += sum(1 for k in klines if k.period == "1m" and k.closed)
    assert closed_1m == 34  # 3000 × 0.7 s = 35 minutes: 34 closed, one forming


def test_the_trading_day_rolls_over_at_beijing_midnight() -> None:
    inst = Instrument("000002.SZ", seed=1)
    before = int(bj("2026-11-23 23:59:58") * 1000)
    inst.step(before)
    inst.step(before + 1000)
    q = inst.quote("x")
    close, volume = q.price, q.volume
    printed = inst.step(before + 3000)  # 00:00:01 on the 24th
    klines, _ = inst.feed(before + 3000, printed, ("1d",))
    q = inst.quote("x")
    assert q.prev_close == close
    assert q.volume == printed.volume < volume + printed.volume
    assert q.open == printed.open and (q.high, q.low) == (printed.high, printed.low)
    assert round(q.prev_close * 0.9, 2) <= q.low <= q.high <= round(q.prev_close * 1.1, 2)
    (day,) = klines
    assert day.open_time == "2026-11-24T00:00:00+08:00" and day.volume == q.volume


def test_same_seed_same_prices_whatever_is_published() -> None:
    def path(seed: int, quotes: bool, trades: bool) -> list[tuple[float, int]]:
        inst = Instrument("600000.SH", seed=seed)
        out = []
        for i in range(200):
            p = inst.step(T0 + i * 1000, "x", trades)
            if quotes:
                inst.quote("x")
            out.append((p.close, p.volume))
        return out

    assert path(1, False, True) == path(1, True, False) == path(1, True, True)
    assert path(1, True, True) != path(2, True, True)
    assert base_price("300750.SZ") == base_price("300750.SZ") > 0
    assert len({base_price(f"{i:06d}.SZ") for i in range(1, 200)}) > 150  # symbols differ
    # books repeat with the seed too
    a, b = Instrument("000001.SZ", seed=5), Instrument("000001.SZ", seed=5)
    for inst in (a, b):
        inst.step(T0)
    assert a.quote("x") == b.quote("x")


def test_schedule_cn_follows_the_a_share_sessions() -> None:
    assert is_open("always", bj("2026-11-22 03:00:00"))  # Sunday night: still trading by default
    assert not is_open("cn", bj("2026-11-23 09:29:59"))
    assert is_open("cn", bj("2026-11-23 09:30:00"))
    assert is_open("cn", bj("2026-11-23 11:29:59"))
    assert not is_open("cn", bj("2026-11-23 11:30:00"))
    assert not is_open("cn", bj("2026-11-23 12:00:00"))  # lunch
    assert is_open("cn", bj("2026-11-23 13:00:00"))
    assert is_open("cn", bj("2026-11-23 14:59:59"))
    assert not is_open("cn", bj("2026-11-23 15:00:00"))
    assert not is_open("cn", bj("2026-11-22 10:00:00"))  # Sunday
    assert not is_open("cn", bj("2026-11-21 10:00:00"))  # Saturday
    assert is_open("cn", bj("2026-11-27 10:00:00"))  # Friday
    # 01:30 UTC is 09:30 in Beijing
    assert is_open("cn", datetime.fromisoformat("2026-11-23T01:30:00+00:00").timestamp())


def test_universe_always_holds_the_two_demo_symbols() -> None:
    assert universe_symbols(3) == ["000001.SZ", "000002.SZ", "000003.SZ"]
    assert MockSource({"universe": 0}).always == ["000001.SZ", "600000.SH"]
    assert MockSource({"universe": 3}).always == ["000001.SZ", "000002.SZ", "000003.SZ", "600000.SH"]
    assert set(ALWAYS) <= set(MockSource({"universe": 1000}).always)


class Ctx:
    name = "mock"

    def __init__(self) -> None:
        self.statuses: list[tuple[str, str | None]] = []

    def status(self, state: str, *, symbol=None, reason=None, unsupported=None) -> None:  # type: ignore[no-untyped-def]
        self.statuses.append((state, reason))

    def count_error(self, kind: str) -> None:
        pass


async def collect(src: MockSource, seconds: float) -> list:  # type: ignore[type-arg]
    out = []

    async def run() -> None:
        async for batch in src.events():
            out.extend(as_events(batch))

    task = asyncio.create_task(run())
    await asyncio.sleep(seconds)
    await src.stop()
    await asyncio.wait_for(task, 1)  # events() ends promptly after stop()
    return out


def kinds(events: list) -> set[tuple[str, str]]:  # type: ignore[type-arg]
    return {(e.__struct_config__.tag, e.symbol) for e in events}


async def test_source_publishes_quotes_for_the_universe_and_wanted_streams_only() -> None:
    src = MockSource({"rate": 20, "universe": 3, "seed": 1, "history": 0})
    ctx = Ctx()
    await src.start(ctx)
    src.want(WantedSet([Stream("trade", "300750.SZ"), Stream("kline", "000001.SZ", "5m"), Stream("tick", "000002.SZ")]))
    events = await collect(src, 0.6)
    got = kinds(events)
    for s in ("000001.SZ", "000002.SZ", "000003.SZ", "600000.SH"):
        assert ("quote", s) in got  # always-on
    assert ("trade", "300750.SZ") in got and ("quote", "300750.SZ") not in got
    assert ("tick", "000002.SZ") in got and ("trade", "000002.SZ") not in got
    assert {e.kline.period for e in events if e.__struct_config__.tag == "kline"} == {"5m"}
    assert ("quote", "000004.SZ") not in got
    assert ctx.statuses == [("live", None)]
    assert all(e.source == "mock" and e.seq == 0 and e.ts == 0 for e in events)  # the runner stamps them
    # ~20 updates/s for 0.6 s, per always-on symbol
    n = sum(1 for e in events if e.__struct_config__.tag == "quote" and e.symbol == "000003.SZ")
    assert 6 <= n <= 16


async def test_updates_spread_over_the_second_in_small_batches() -> None:
    # the second crosses a minute, as one in sixty does: the minute's closed bars and 分时 points ride along
    offset = (60 - time.time() % 60) - 0.5
    src = MockSource({"rate": 1, "universe": 500, "seed": 1, "history": 0}, clock=lambda: time.time() + offset)
    await src.start(Ctx())
    sizes: list[int] = []  # quotes per batch
    closed: list[Event] = []

    async def run() -> None:
        async for batch in src.events():
            events = as_events(batch)
            sizes.append(sum(1 for e in events if isinstance(e, QuoteEvent)))
            closed.extend(e for e in events if isinstance(e, KlineEvent | TickEvent))

    task = asyncio.create_task(run())
    await asyncio.sleep(1.05)
    await src.stop()
    await asyncio.wait_for(task, 1)
    assert sum(sizes) >= 480 and max(sizes) <= 21  # 501 symbols over 25 steps, not one burst
    assert closed, "the window crossed a minute: its closed bars and 分时 minutes came too"


async def test_any_market_can_be_wanted_and_a_late_joiner_sees_the_whole_day() -> None:
    now = [bj("2026-11-23 10:00:00")]
    src = MockSource({"rate": 1, "universe": 0, "seed": 3, "history": 0}, clock=lambda: now[0])
    await src.start(Ctx())
    syms = ["AAPL.US", "00700.HK", "IF2412.IF", "430047.BJ"]
    src.want(WantedSet(Stream("quote", s) for s in syms))
    for _ in range(30):
        now[0] += 1.3
        as_events(src._update(list(src._order)))
    vols = {
        e.symbol: e.quote.volume for e in as_events(src._update(list(src._order))) if e.__struct_config__.tag == "quote"
    }
    assert set(vols) == {*syms, "000001.SZ", "600000.SH"} and min(vols.values()) > 0
    # a 1d and a 5m kline stream joined now carry everything traded before the join
    src.want(WantedSet([*(Stream("quote", s) for s in syms), Stream("kline", "AAPL.US", "1d")]))
    now[0] += 1.3
    events = as_events(src._update(["AAPL.US"]))
    q = next(e.quote for e in events if e.__struct_config__.tag == "quote")
    day = next(e.kline for e in events if e.__struct_config__.tag == "kline")
    assert (day.volume, day.open, day.high, day.low) == (q.volume, q.open, q.high, q.low) and q.volume > vols["AAPL.US"]


async def test_a_symbol_wanted_again_resumes_its_day() -> None:
    now = [bj("2026-11-23 10:00:00")]
    src = MockSource({"rate": 1, "universe": 0, "seed": 3, "history": 0}, clock=lambda: now[0])
    await src.start(Ctx())
    want = WantedSet([Stream("quote", "300750.SZ")])
    src.want(want)
    for _ in range(10):
        now[0] += 1
        before = [e.quote.volume for e in as_events(src._update(["300750.SZ"]))][-1]
    src.want(WantedSet())
    assert "300750.SZ" not in src._order and as_events(src._update(["300750.SZ"])) == []
    now[0] += 600
    src.want(want)
    assert src._urgent == ["300750.SZ"]  # updated on the very next step
    now[0] += 1
    after = [e.quote.volume for e in as_events(src._update(["300750.SZ"]))][-1]
    assert after > before  # volume never goes backwards


async def test_schedule_cn_reports_closed_and_publishes_nothing_outside_sessions() -> None:
    sunday = bj("2026-11-22 10:00:00")
    src = MockSource({"rate": 20, "universe": 2, "schedule": "cn", "history": 0}, clock=lambda: sunday)
    ctx = Ctx()
    await src.start(ctx)
    src.want(WantedSet([Stream("quote", "300750.SZ"), Stream("trade", "300750.SZ"), Stream("tick", "000001.SZ")]))
    events = await collect(src, 0.3)
    assert ctx.statuses == [("closed", ctx.statuses[0][1])] and "session" in (ctx.statuses[0][1] or "")
    # one quote per symbol as of the last close (so a snapshot exists), then nothing: no trading
    assert sorted((e.__struct_config__.tag, e.symbol) for e in events) == [
        ("quote", "000001.SZ"),
        ("quote", "000002.SZ"),
        ("quote", "300750.SZ"),
        ("quote", "600000.SH"),
    ]
    assert all(e.quote.volume == 0 and e.quote.price == e.quote.prev_close for e in events)


async def test_schedule_cn_closes_bars_at_the_break_and_goes_live_again() -> None:
    now = [bj("2026-11-23 11:29:58")]
    src = MockSource({"rate": 20, "universe": 0, "schedule": "cn", "seed": 2, "history": 0}, clock=lambda: now[0])
    ctx = Ctx()
    await src.start(ctx)
    src.want(WantedSet([Stream("kline", "000001.SZ", "1m"), Stream("tick", "000001.SZ")]))
    events: list = []  # type: ignore[type-arg]

    async def run() -> None:
        async for batch in src.events():
            events.extend(as_events(batch))

    task = asyncio.create_task(run())
    await asyncio.sleep(0.3)
    assert ctx.statuses == [("live", None)] and events
    assert all(not getattr(e, "kline", None) or not e.kline.closed for e in events)
    now[0] = bj("2026-11-23 11:30:00.200")
    await asyncio.sleep(0.3)
    assert ctx.statuses[-1][0] == "closed"
    closed = [e for e in events if (e.__struct_config__.tag == "kline" and e.kline.closed)]
    assert [e.kline.open_time for e in closed if e.kline.period == "1m" and e.symbol == "000001.SZ"] == [
        "2026-11-23T11:29:00+08:00"
    ]
    # 000001.SZ is always on: its finished bars of every period go out (retention keeps the day)
    assert {(e.kline.period, e.kline.open_time[11:16]) for e in closed if e.kline.period != "1m"} >= {
        ("5m", "11:25"),
        ("30m", "11:00"),
    }
    closed_ticks = [e for e in events if e.__struct_config__.tag == "tick" and e.tick.closed]
    assert [e.tick.time for e in closed_ticks if e.symbol == "000001.SZ"] == ["2026-11-23T11:29:00+08:00"]
    n = len(events)
    await asyncio.sleep(0.2)
    assert len(events) == n  # nothing while closed
    now[0] = bj("2026-11-23 13:00:00.100")
    await asyncio.sleep(0.3)
    assert ctx.statuses[-1] == ("live", None) and len(events) > n
    assert events[-1].symbol in ("000001.SZ", "600000.SH")
    await src.stop()
    await asyncio.wait_for(task, 1)


async def test_without_the_book_quotes_carry_no_levels_and_a_name_is_the_events_source() -> None:
    src = MockSource({"rate": 20, "universe": 2, "seed": 1, "history": 0, "book": "false", "name": "mock-b"})
    await src.start(Ctx())
    quotes = [e for e in await collect(src, 0.3) if e.__struct_config__.tag == "quote"]
    assert quotes and all(not e.quote.bid_prices and not e.quote.ask_volumes for e in quotes)
    assert all(e.quote.price > 0 and e.source == "mock-b" for e in quotes)
    with_book = MockSource({"rate": 20, "universe": 2, "seed": 1, "history": 0})
    await with_book.start(Ctx())
    assert all(
        len(e.quote.bid_prices) == 5 for e in await collect(with_book, 0.3) if e.__struct_config__.tag == "quote"
    )


def test_bad_options_are_refused() -> None:
    for bad in (
        {"rate": 0}, {"universe": -1}, {"schedule": "weekends"}, {"rate": "fast"}, {"seed": "x"},
        {"book": "maybe"}, {"name": "Mock B"}, {"name": "9lives"}, {"steps": 0},
    ):  # fmt: skip
        with pytest.raises(ValueError):
            MockSource(bad)


def test_rate_defaults_to_one_over_the_update_interval() -> None:
    assert MockSource({}).opts.rate == 1.0
    assert MockSource({"update_interval": 0.25}).opts.rate == 4.0
    assert MockSource({"update_interval": 0.25, "rate": "2"}).opts.rate == 2.0
    assert MockSource({"seed": "42", "universe": "5"}).opts.seed == 42


async def test_quotes_of_hundreds_of_cold_symbols_do_not_stall_the_mock() -> None:
    """Each walks its day's past (seconds for 200 after the close); the loop, and with it the
    heartbeats and live steps, keeps running meanwhile."""
    src = MockSource({"rate": 1, "universe": 10, "seed": 1, "history": 0}, clock=lambda: bj("2026-11-23 15:30:00"))
    cold = tuple(f"{i:06d}.SZ" for i in range(300001, 300201))
    query = HistoryQuery("quote", (*cold, "000001.SZ"), "", None, None, None, 1, "none", BEIJING)
    src.instruments["000001.SZ"] = Instrument("000001.SZ", 1)  # a running one is answered from its state
    gaps: list[float] = []

    async def tick() -> None:
        last = time.perf_counter()
        while True:
            await asyncio.sleep(0.01)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    ticker = asyncio.create_task(tick())
    started = time.perf_counter()
    answer = await src.history(query)
    took = time.perf_counter() - started
    ticker.cancel()
    assert [q.symbol for q in answer.events] == [*cold, "000001.SZ"]
    assert all(isinstance(q, QuoteEvent) and q.quote.price > 0 for q in answer.events)
    stood = max(gaps, default=took)  # no gap at all: the loop never ran while they were walked
    assert stood < 0.25, f"the loop stood still {stood:.2f} s while {took:.2f} s of quotes were walked"
