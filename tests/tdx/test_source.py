"""TdxSource against fake TDX servers through the real pytdx client: what a subscriber would get."""

from __future__ import annotations

import asyncio
import socket

from fake_tdx import FakeTrade
from fixtures_tdx import HALTED_0, PING_AN, PUDONG, at, quote, standard_market
from sourcekit import Clock, Harness


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_quotes_scaled_to_currency_and_shares_published_only_on_change(tdx_server) -> None:
    server = tdx_server()
    async with Harness([server.port]) as h:
        h.want(("quote", "000001.SZ"), ("quote", "510300.SH"))
        await h.until(lambda: h.of("quote", "000001.SZ") and h.of("quote", "510300.SH"))
        q = h.of("quote", "000001.SZ")[0]
        assert (q.price, q.prev_close, q.open, q.high, q.low) == (10.5, 10.4, 10.45, 10.7, 10.2)
        assert q.volume == 1_234_500 and q.amount == 12_962_250.0
        assert q.bid_prices == [10.49, 10.48, 10.47, 10.46, 10.45] and q.bid_volumes == [1000, 2000, 3000, 4000, 5000]
        assert q.ask_prices[0] == 10.51 and q.ask_volumes[0] == 2000
        assert q.timestamp == "2026-11-23T10:00:15.000+08:00"
        etf = h.of("quote", "510300.SH")[0]
        assert (etf.price, etf.bid_prices[0], etf.prev_close) == (3.912, 3.911, 3.812)
        polls = server.requests["quotes"]
        await h.until(lambda: server.requests["quotes"] >= polls + 5)
        assert len(h.of("quote", "000001.SZ")) == 1  # unchanged snapshots are not re-sent
        with server.market.lock:
            server.market.quotes[PING_AN] = quote(10.6, vol=12400, sec=18)
        await h.until(lambda: len(h.of("quote", "000001.SZ")) == 2)
        assert h.of("quote", "000001.SZ")[1].price == 10.6
        assert h.ctx.states()[-1] == "live"


async def test_quotes_are_batched_at_most_80_per_request(tdx_server) -> None:
    market = standard_market()
    codes = [f"{100 + i:06d}" for i in range(170)]
    for c in codes:
        market.quotes[(0, c)] = quote(5.0)
    server = tdx_server(market)
    async with Harness([server.port], workers=3) as h:
        h.want(*[("quote", f"{c}.SZ") for c in codes])
        await h.until(lambda: len({e.symbol for e in h.events}) == 170)
        batches = [n for n in server.quote_batches if n > 1]  # 1-symbol requests are health probes
        assert batches and max(batches) <= 80 and sum(batches[:3]) == 170


async def test_suspended_symbol_is_halted_and_does_not_sink_its_batch(tdx_server) -> None:
    server = tdx_server()
    async with Harness([server.port]) as h:
        h.want(("quote", "000001.SZ"), ("quote", "600001.SH"), ("quote", "000005.SZ"))
        await h.until(lambda: "halted" in h.ctx.states("600001.SH") and "halted" in h.ctx.states("000005.SZ"))
        await h.until(lambda: h.of("quote", "000001.SZ"))
        assert not h.of("quote", "600001.SH") and not h.of("quote", "000005.SZ")
        reason = next(s["reason"] for s in h.ctx.statuses if s["symbol"] == "600001.SH")
        assert "suspended" in reason
        with server.market.lock:
            server.market.quotes[HALTED_0] = quote(7.0)
        await h.until(lambda: h.of("quote", "600001.SH"))
        assert h.ctx.states("600001.SH")[-1] == "live"


async def test_small_volumes_decode_exactly(tdx_server) -> None:
    server = tdx_server()
    async with Harness([server.port]) as h:
        h.want(("quote", "000004.SZ"), ("kline", "000004.SZ", "1m"))
        await h.until(lambda: h.of("quote", "000004.SZ") and len(h.of("kline", "000004.SZ")) == 3)
        assert h.of("quote", "000004.SZ")[0].amount == 60.0 and h.of("quote", "000004.SZ")[0].volume == 300
        assert [k.volume for k in h.of("kline", "000004.SZ")] == [1200, 1300, 1400]


async def test_bars_for_every_period_with_open_times_and_closed_flags(tdx_server) -> None:
    server = tdx_server()
    clock = Clock(at("09:59").replace(second=30))
    async with Harness([server.port], clock=clock) as h:
        periods = ["1m", "5m", "15m", "30m", "60m", "1d"]
        h.want(*[("kline", "000001.SZ", p) for p in periods])
        await h.until(lambda: {k.period for k in h.of("kline")} == set(periods))
        await h.until(lambda: len(h.of("kline")) == 18)
        by = {p: [k for k in h.of("kline") if k.period == p] for p in periods}
        assert [k.open_time for k in by["1m"]] == [f"2026-11-23T09:{m}:00.000+08:00" for m in (57, 58, 59)]
        assert [k.closed for k in by["1m"]] == [True, True, False]  # the 09:59 bar ends at 10:00, still ahead
        last = by["1m"][-1]
        assert (last.open, last.close, last.high, last.low, last.volume, last.amount) == (
            10.42,
            10.44,
            10.47,
            10.41,
            150_200,
            1_568_088.0,
        )
        assert by["5m"][-1].open_time == "2026-11-23T09:55:00.000+08:00"
        assert by["60m"][-1].open_time == "2026-11-23T09:00:00.000+08:00"
        assert by["1d"][-1].open_time == "2026-11-23T00:00:00.000+08:00" and not by["1d"][-1].closed
        assert by["1d"][0].closed
        clock.now = at("10:00").replace(second=1)  # the forming 1m bar has now ended: re-sent as closed
        await h.until(lambda: len([k for k in h.of("kline") if k.period == "1m"]) == 4)
        final = [k for k in h.of("kline") if k.period == "1m"][-1]
        assert final.open_time == last.open_time and final.closed


async def test_fenshi_points_carry_session_minutes_and_close_as_time_moves(tdx_server) -> None:
    server = tdx_server()
    clock = Clock(at("10:00").replace(second=30))
    async with Harness([server.port], clock=clock) as h:
        h.want(("tick", "000001.SZ"))
        await h.until(lambda: len(h.of("tick")) == 2)
        prev, cur = h.of("tick")
        assert (prev.time, prev.closed) == ("2026-11-23T09:59:00.000+08:00", True)
        assert (cur.time, cur.closed, cur.price, cur.volume) == ("2026-11-23T10:00:00.000+08:00", False, 10.7, 13_000)
        assert 10.4 < cur.avg_price < 10.7
        with server.market.lock:
            server.market.minutes[PING_AN].append((10.71, 200))
        clock.now = at("10:01").replace(second=5)
        await h.until(lambda: len(h.of("tick")) == 4)
        resent, new = h.of("tick")[2:]
        assert (resent.time, resent.closed) == (cur.time, True)
        assert (new.time, new.closed, new.price) == ("2026-11-23T10:01:00.000+08:00", False, 10.71)


async def test_trades_never_repeat_across_polls(tdx_server) -> None:
    server = tdx_server()
    async with Harness([server.port], trades_backfill=5, trades_page=8) as h:
        h.want(("trade", "000001.SZ"), ("trade", "600000.SH"))
        await h.until(lambda: len(h.of("trade", "000001.SZ")) == 5 and len(h.of("trade", "600000.SH")) == 5)
        first = h.of("trade", "000001.SZ")
        assert [t.trade_id for t in first] == [f"20261123-{i}" for i in range(25, 30)]
        assert (first[-1].time, first[-1].price, first[-1].volume, first[-1].side) == (
            "2026-11-23T09:37:00.000+08:00",
            10.41,
            3900,
            "S",
        )
        polls = server.requests["transactions"]
        await h.until(lambda: server.requests["transactions"] >= polls + 6)
        assert len(h.of("trade", "000001.SZ")) == 5
        with server.market.lock:
            server.market.transactions[PING_AN] += [FakeTrade("10:00", 10.5, 1, 1, 0) for _ in range(3)]
            server.market.transactions[PUDONG] += [FakeTrade("09:30", 8.10, 5, 1, 2)] * 2  # identical to the others
        await h.until(lambda: len(h.of("trade", "000001.SZ")) == 8 and len(h.of("trade", "600000.SH")) == 7)
        await asyncio.sleep(0.3)
        ids = [t.trade_id for t in h.of("trade", "000001.SZ")]
        assert ids[5:] == ["20261123-30", "20261123-31", "20261123-32"] and len(set(ids)) == len(ids) == 8
        assert [t.trade_id for t in h.of("trade", "600000.SH")][-2:] == ["20261123-12", "20261123-13"]
        assert h.of("trade", "600000.SH")[-1].side == "N"


async def test_empty_bodies_rotate_to_a_host_that_answers(tdx_server) -> None:
    degraded, good = tdx_server(), tdx_server()
    degraded.empty = {"quotes", "bars", "minutes", "transactions"}
    async with Harness([degraded.port, good.port]) as h:
        h.want(("quote", "000001.SZ"), ("tick", "000001.SZ"), ("trade", "000001.SZ"), ("kline", "000001.SZ", "1m"))
        await h.until(lambda: {e.__struct_config__.tag for e in h.events} == {"quote", "tick", "trade", "kline"})
        assert degraded.requests["quotes"] >= 1 and good.requests["quotes"] >= 1
        assert h.ctx.errors["empty"] >= 1


async def test_empty_minutes_while_the_symbol_trades_is_a_host_failure(tdx_server) -> None:
    partial, good = tdx_server(), tdx_server()
    partial.empty = {"minutes"}  # quotes work, 分时 comes back empty: common on degraded public servers
    async with Harness([partial.port, good.port], workers=1) as h:
        h.want(("tick", "000001.SZ"))
        await h.until(lambda: h.of("tick"))
        assert good.requests["minutes"] >= 1


async def test_login_refused_fails_over(tdx_server) -> None:
    refusing, good = tdx_server(), tdx_server()
    refusing.refuse_login = True
    async with Harness([refusing.port, good.port]) as h:
        h.want(("quote", "600000.SH"))
        await h.until(lambda: h.of("quote"))
        assert refusing.requests["setup"] >= 1 and refusing.requests["quotes"] == 0


async def test_host_dying_mid_stream_fails_over_to_the_next(tdx_server) -> None:
    dying, standby = tdx_server(), tdx_server()
    dying.die_after = 6
    async with Harness([dying.port, standby.port], workers=1) as h:
        h.want(("quote", "000001.SZ"), ("trade", "000001.SZ"))
        await h.until(lambda: dying.dead)
        before = standby.requests["quotes"]
        with standby.market.lock:
            standby.market.quotes[PING_AN] = quote(11.0)
        await h.until(lambda: any(q.price == 11.0 for q in h.of("quote")))
        assert standby.requests["quotes"] > before
        assert "stale" not in h.ctx.states() and "down" not in h.ctx.states()


async def test_nothing_answers_stale_then_down_with_host_and_reason(tdx_server) -> None:
    refusing = tdx_server()
    refusing.refuse_login = True
    gone = closed_port()
    async with Harness([refusing.port, gone]) as h:
        h.want(("quote", "000001.SZ"))
        await h.until(lambda: "down" in h.ctx.states())
        states = h.ctx.states()
        assert states.index("stale") < states.index("down")
        reason = [s["reason"] for s in h.ctx.statuses if s["state"] == "down"][-1]
        assert f"127.0.0.1:{refusing.port}: connection closed" in reason
        assert f"127.0.0.1:{gone}: connection refused" in reason
        assert not h.events


async def test_outside_sessions_one_fetch_then_silence(tdx_server) -> None:
    server = tdx_server()
    clock = Clock(at("12:00"))  # lunch break
    async with Harness([server.port], clock=clock) as h:
        h.want(("quote", "000001.SZ"), ("tick", "000001.SZ"))
        await h.until(lambda: h.of("quote") and h.of("tick"))
        assert h.ctx.states()[-1] == "closed"
        seen = dict(server.requests)
        await asyncio.sleep(0.5)  # ten intervals
        assert dict(server.requests) == seen
        clock.now = at("13:00").replace(second=5)
        h.want(("quote", "000001.SZ"), ("tick", "000001.SZ"))  # any wake-up re-reads the clock
        await h.until(lambda: server.requests["quotes"] > seen["quotes"] + 3)
        assert h.ctx.states()[-1] == "live"


async def test_holidays_and_weekends_are_not_sessions(tdx_server) -> None:
    server = tdx_server()
    clock = Clock(at("10:00").replace(second=30))
    async with Harness([server.port], clock=clock, holidays=["2026-11-23"]) as h:
        h.want(("quote", "000001.SZ"))
        await h.until(lambda: h.of("quote"))
        await h.until(lambda: h.ctx.states()[-1:] == ["closed"])
        seen = server.requests["quotes"]
        await asyncio.sleep(0.4)
        assert server.requests["quotes"] == seen


async def test_symbols_outside_tdx_markets_are_reported_down(tdx_server) -> None:
    server = tdx_server()
    async with Harness([server.port]) as h:
        h.want(("quote", "AAPL.US"), ("quote", "000001.SZ"))
        await h.until(lambda: h.of("quote"))
        assert h.ctx.states("AAPL.US") == ["down"]
        assert {e.symbol for e in h.events} == {"000001.SZ"}
