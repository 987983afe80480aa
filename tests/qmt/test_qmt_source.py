"""QmtSource on the fake xtdata: subscriptions follow demand, callbacks from QMT's thread, resilience."""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from typing import Any

import pytest
from qmt_fake_xtdata import FakeXtData, bar, l2, ms, tick, timetag_tick
from qmt_kit import DAY, Harness

T0 = ms(DAY, "10:00:03")


def market(fake: FakeXtData) -> None:
    fake.full_tick.update(
        {
            "000001.SZ": tick(T0, 10.5),
            "000002.SZ": tick(T0, 7.1),
            "600000.SH": tick(T0, 8.2),
            "600519.SH": tick(T0, 1450.0, step=0.1),
            "600001.SH": tick(T0, 0.0, last_close=5.0, volume=0),  # suspended all day
        }
    )


async def test_whole_quote_above_threshold_snapshot_then_incremental(fake_xt: FakeXtData) -> None:
    market(fake_xt)
    async with Harness(fake_xt, whole_quote_threshold=2) as h:
        h.want(("quote", "000001.SZ"), ("quote", "000002.SZ"), ("quote", "600000.SH"))
        await h.connected()
        assert sorted(fake_xt.subscribed("whole")) == [["SH"], ["SZ"]]  # one per market, not per code
        await h.until(lambda: len(h.of("quote")) == 3)
        assert {e.symbol for e in h.events} == {"000001.SZ", "000002.SZ", "600000.SH"}  # 600519 filtered out
        q = h.of("quote", "000001.SZ")[0]
        assert q.volume == 75861300 and q.timestamp == "2025-08-15T10:00:03.000+08:00"
        # incremental: only changed codes arrive
        fake_xt.push_ticks({"000001.SZ": tick(T0 + 3000, 10.52), "600519.SH": tick(T0 + 3000, 1451.0)})
        await h.until(lambda: len(h.of("quote", "000001.SZ")) == 2)
        await h.settle()
        assert h.of("quote", "000001.SZ")[-1].price == 10.52 and not h.of("quote", "600519.SH")
        # below the threshold again: per-code subscriptions replace the whole-market ones
        h.want(("quote", "000001.SZ"))
        await h.connected()
        assert fake_xt.subscribed("whole") == [] and fake_xt.subscribed("tick") == ["000001.SZ"]


async def test_per_code_ticks_below_threshold_start_from_get_full_tick(fake_xt: FakeXtData) -> None:
    market(fake_xt)
    async with Harness(fake_xt, whole_quote_threshold=10) as h:
        h.want(("quote", "000001.SZ"), ("quote", "600000.SH"))
        await h.connected()
        assert sorted(fake_xt.subscribed("tick")) == ["000001.SZ", "600000.SH"]
        await h.until(lambda: len(h.of("quote")) == 2)  # the snapshot came from get_full_tick
        fake_xt.push_ticks({"600000.SH": timetag_tick("20250815 10:00:09", 8.25, volume=77)})
        await h.until(lambda: len(h.of("quote", "600000.SH")) == 2)
        q = h.of("quote", "600000.SH")[-1]
        assert q.timestamp == "2025-08-15T10:00:09.000+08:00" and q.volume == 7700 and q.price == 8.25


async def test_suspended_symbol_is_halted_not_zero_prices_and_comes_back(fake_xt: FakeXtData) -> None:
    market(fake_xt)
    async with Harness(fake_xt) as h:
        h.want(("quote", "600001.SH"), ("quote", "000001.SZ"))
        await h.connected()
        await h.until(lambda: (h.ctx.last("600001.SH") or {}).get("state") == "halted")
        assert "no last price" in h.ctx.last("600001.SH")["reason"]  # type: ignore[index]
        fake_xt.push_ticks({"600001.SH": tick(T0 + 1000, 5.0, status=17)})
        await h.settle()
        assert h.of("quote", "600001.SH") == []
        fake_xt.push_ticks({"600001.SH": tick(T0 + 60_000, 5.1, status=13)})
        await h.until(lambda: (h.ctx.last("600001.SH") or {}).get("state") == "live")
        assert h.of("quote", "600001.SH")[0].price == 5.1
        # a suspended bar says the same
        h.want(("kline", "600001.SH", "1m"))
        await h.connected()
        fake_xt.push_bars("600001.SH", "1m", [bar(ms(DAY, "10:02:00"), 0, 0, 0, 0, 0, suspend=1)])
        await h.until(lambda: (h.ctx.last("600001.SH") or {}).get("state") == "halted")
        assert h.of("kline", "600001.SH") == []
        h.want()  # nobody watches it: its halted status is withdrawn
        assert h.ctx.last("600001.SH")["state"] == "live"  # type: ignore[index]


async def test_bars_resent_with_same_time_update_then_close_and_derived_periods(fake_xt: FakeXtData) -> None:
    history = [bar(ms(DAY, f"09:{m:02d}:00"), 10.0, 10.1, 9.9, 10.0, 100) for m in range(30, 60)]
    history += [bar(ms(DAY, "10:00:00"), 10.0, 10.1, 9.9, 10.05, 100)]
    fake_xt.history[("000001.SZ", "1m")] = history
    async with Harness(fake_xt) as h:
        h.want(("kline", "000001.SZ", "1m"), ("kline", "000001.SZ", "30m"), ("tick", "000001.SZ"))
        await h.connected()
        assert fake_xt.subscribed("1m") == ["000001.SZ"]  # one 1m subscription feeds 1m, 30m and 分时
        assert ("subscribe_quote", "000001.SZ", "1m", 0) in fake_xt.calls
        await h.until(lambda: len(h.of("kline", period="30m")) >= 1 and len(h.of("tick")) >= 1)
        # history: only the last closed and the forming bucket are published, not 31 bars
        assert len(h.of("kline", period="1m")) == 2
        k30 = h.of("kline", period="30m")
        assert [(k.open_time[11:16], k.closed) for k in k30] == [("09:30", True)]  # 09:30-10:00, closed at 10:00:30
        t1 = ms(DAY, "10:01:00")
        fake_xt.push_bars("000001.SZ", "1m", [bar(t1, 10.05, 10.1, 10.0, 10.08, 50)])
        await h.until(lambda: any(k.open_time.endswith("10:00:00+08:00") for k in h.of("kline", period="30m")))
        fake_xt.push_bars("000001.SZ", "1m", [bar(t1, 10.05, 10.2, 10.0, 10.18, 80)])  # re-sent, same time
        await h.until(lambda: h.of("kline", period="1m")[-1].close == 10.18)
        forming = [k for k in h.of("kline", period="1m") if k.open_time.endswith("10:00:00+08:00")]
        assert all(not k.closed for k in forming) and forming[-1].volume == 8000
        h.clock.set("10:01:05")  # the bar's minute is over: closed without waiting for the next bar
        await h.until(lambda: h.of("kline", period="1m")[-1].closed)
        assert h.of("kline", period="1m")[-1].open_time.endswith("10:00:00+08:00")
        ticks = h.of("tick")
        assert ticks[-1].closed and ticks[-1].time.endswith("10:00:00+08:00")
        assert 9.9 < ticks[-1].avg_price < 10.2


async def test_l2_trades_with_cancels_dropped(fake_xt: FakeXtData) -> None:
    async with Harness(fake_xt, level2=True) as h:
        h.want(("trade", "000001.SZ"))
        await h.connected()
        assert fake_xt.subscribed("l2transaction") == ["000001.SZ"]
        assert h.ctx.last()["unsupported"] == []  # type: ignore[index]
        rows = [l2(T0, 10.5, 300, 1, 1), l2(T0, 0.0, 500, 3, 2), l2(T0 + 10, 10.49, 200, 2, 3), l2(T0, 10.5, 9, 0, 4)]
        fake_xt.push_l2("000001.SZ", rows)
        await h.until(lambda: len(h.of("trade")) == 3)
        await h.settle()
        trades = h.of("trade")
        assert [(t.side, t.volume, t.trade_id) for t in trades] == [
            ("B", 300, "20250815-1"),
            ("S", 200, "20250815-3"),
            ("N", 9, "20250815-4"),
        ]


async def test_without_level2_trade_is_reported_unsupported(fake_xt: FakeXtData) -> None:
    async with Harness(fake_xt) as h:
        h.want(("trade", "000001.SZ"), ("quote", "AAPL.US"))
        await h.connected()
        assert fake_xt.subscribed("l2transaction") == []
        assert h.ctx.last()["state"] == "live" and h.ctx.last()["unsupported"] == ["trade"]  # type: ignore[index]
        assert h.ctx.last("AAPL.US")["state"] == "down"  # type: ignore[index]


async def test_connect_failure_is_down_with_reason_then_backoff_then_live(fake_xt: FakeXtData) -> None:
    fake_xt.running = False
    market(fake_xt)
    async with Harness(fake_xt) as h:
        h.want(("quote", "000001.SZ"))
        await h.until(lambda: fake_xt.connect_attempts >= 3)
        down = h.ctx.last()
        assert down is not None and down["state"] == "down" and "无法连接xtquant服务" in down["reason"]
        assert h.ctx.errors["connect"] >= 3
        fake_xt.revive()
        await h.connected()
        assert h.ctx.last()["state"] == "live"  # type: ignore[index]
        await h.until(lambda: len(h.of("quote")) == 1)


async def test_disconnect_mid_stream_goes_down_and_resubscribes_on_return(fake_xt: FakeXtData) -> None:
    market(fake_xt)
    async with Harness(fake_xt, whole_quote_threshold=0, level2=True) as h:
        h.want(("quote", "000001.SZ"), ("kline", "000001.SZ", "5m"), ("trade", "000001.SZ"))
        await h.connected()
        await h.until(lambda: len(h.of("quote")) == 1)
        fake_xt.kill()
        await h.until(lambda: h.ctx.last()["state"] == "down")  # type: ignore[index]
        assert "disconnected" in h.ctx.last()["reason"]  # type: ignore[index]
        await asyncio.sleep(0.2)
        fake_xt.revive()
        await h.connected()
        assert h.ctx.last()["state"] == "live"  # type: ignore[index]
        assert sorted(map(str, fake_xt.subscribed())) == sorted(["000001.SZ", "000001.SZ", "['SZ']"])
        fake_xt.push_ticks({"000001.SZ": tick(T0 + 5000, 10.6)})
        fake_xt.push_bars("000001.SZ", "5m", [bar(ms(DAY, "10:05:00"), 10.5, 10.6, 10.5, 10.6, 10)])
        fake_xt.push_l2("000001.SZ", [l2(T0 + 5000, 10.6, 100, 1, 99)])
        await h.until(lambda: h.of("quote")[-1].price == 10.6 and h.of("kline") and h.of("trade"))


async def test_silent_hang_is_caught_by_the_probe(fake_xt: FakeXtData) -> None:
    """No status callback (older xtquant): the health probe notices MiniQMT is gone."""
    market(fake_xt)
    async with Harness(fake_xt) as h:
        h.want(("quote", "000001.SZ"))
        await h.connected()
        fake_xt.status_cb = None
        fake_xt.kill()
        await h.until(lambda: h.ctx.last()["state"] == "down")  # type: ignore[index]
        assert "not answering" in h.ctx.last()["reason"]  # type: ignore[index]
        fake_xt.revive()
        await h.connected()


async def test_callback_storm_never_blocks_the_loop(fake_xt: FakeXtData) -> None:
    codes = [f"{i:06d}.SZ" for i in range(1, 201)]
    fake_xt.full_tick.update({c: tick(T0, 10.0) for c in codes})
    async with Harness(fake_xt, whole_quote_threshold=10) as h:
        h.want(*[("quote", c) for c in codes])
        await h.connected()
        await h.until(lambda: len(h.of("quote")) == 200)
        worst = 0.0
        stop = False

        async def ticker() -> None:
            nonlocal worst
            loop = asyncio.get_running_loop()
            while not stop:
                t = loop.time()
                await asyncio.sleep(0.005)
                worst = max(worst, loop.time() - t - 0.005)

        mb = h.source.mailbox
        assert mb is not None
        drained: list[int] = []  # quotes handled per loop wake-up
        take = mb.take

        def counting_take():  # type: ignore[no-untyped-def]
            out = take()
            drained.append(len(out[0]))
            return out

        mb.take = counting_take  # type: ignore[method-assign]
        watch = asyncio.create_task(ticker())
        n = 1000

        def storm() -> None:  # straight from another thread, like QMT's
            for i in range(n):
                fake_xt.push_ticks({c: tick(T0 + i, round(10.0 + i * 0.001, 3)) for c in codes[i % 4 :: 4]})

        started = time.monotonic()
        await asyncio.to_thread(storm)
        await h.settle()
        stop = True
        await watch
        last = {c: h.of("quote", c)[-1].price for c in codes}
        assert last[codes[-1]] == round(10.0 + (n - 1) * 0.001, 3)  # the newest always wins
        assert mb.posts >= n and mb.wakeups < mb.posts  # coalesced into far fewer loop wake-ups
        # Work per loop turn is bounded by the symbols, never by how many callbacks piled up.
        assert drained and max(drained) <= len(codes), max(drained)
        # And in wall-clock terms (generous: a loaded CI machine preempts the loop by itself).
        assert worst < 1.0, f"loop stalled {worst:.3f}s during a {time.monotonic() - started:.1f}s storm"


async def test_callback_exceptions_are_caught_and_counted(fake_xt: FakeXtData) -> None:
    async with Harness(fake_xt) as h:
        h.want(("kline", "000001.SZ", "1m"))
        await h.connected()
        fake_xt.push_raw("1m", "000001.SZ", {"000001.SZ": [None]})
        await h.until(lambda: h.ctx.errors["callback"] == 1)
        fake_xt.push_bars("000001.SZ", "1m", [bar(ms(DAY, "10:01:00"), 10.0, 10.1, 9.9, 10.05, 100)])
        await h.until(lambda: len(h.of("kline")) == 1)  # the source carries on


def test_importing_the_package_does_not_import_xtquant() -> None:
    import argus_ingestor_qmt.__main__
    import argus_ingestor_qmt.source  # noqa: F401

    assert not any(m == "xtquant" or m.startswith("xtquant.") for m in sys.modules)


async def test_without_xtquant_the_source_is_down_saying_how_to_install(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setitem(sys.modules, "xtquant", None)  # makes `import xtquant.xtdata` fail, never runs it
    async with Harness(None) as h:  # type: ignore[arg-type]
        await h.until(lambda: h.ctx.errors["connect"] >= 1)
        reason = h.ctx.last()["reason"]  # type: ignore[index]
        assert reason.startswith("MiniQMT not reachable") and "pip install argus-ingestor-qmt[qmt]" in reason


async def test_stop_returns_when_it_lands_as_a_failed_connect_completes(fake_xt: FakeXtData) -> None:
    """stop() cancels the supervisor just as an xtdata connect fails on its thread: the cancel must
    not be taken for the failure (3.11's wait_for returned the failure and swallowed the cancel, and
    the supervisor went on retrying while stop() waited for it forever)."""
    release, entered = threading.Event(), threading.Event()
    real = fake_xt.connect

    def connect(*args: Any, **kwargs: Any) -> FakeXtData:
        entered.set()
        release.wait(5)
        fake_xt.running = False  # this one fails
        return real(*args, **kwargs)

    fake_xt.connect = connect  # type: ignore[method-assign]
    h = Harness(fake_xt)
    await h.__aenter__()
    h.want(("quote", "000001.SZ"))
    await asyncio.to_thread(entered.wait, 5)
    release.set()
    time.sleep(0.2)  # noqa: ASYNC251 - the loop held on purpose: the failure is queued before the cancel
    stopping = asyncio.create_task(h.__aexit__(None, None, None))
    await asyncio.wait([stopping], timeout=3)  # waits without cancelling: stop() suppresses its own cancel
    if not stopping.done():
        for t in h.source._tasks:  # leave nothing running behind the failure
            t.cancel()
        await asyncio.wait([stopping], timeout=3)
        pytest.fail("stop() did not return: the supervisor took its cancel for a failed connect")
    attempts = fake_xt.connect_attempts
    await asyncio.sleep(0.5)
    assert fake_xt.connect_attempts == attempts, "the supervisor goes on connecting after stop()"
