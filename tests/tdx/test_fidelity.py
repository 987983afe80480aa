"""What the TDX source sends is what the market did: empty answers, day boundaries, empty book
levels, recovery, lost transactions, and the exchange calendar (holidays, make-up days, lunch, auctions)."""

from __future__ import annotations

import asyncio
from datetime import date

from argus_protocol import Stream
from fake_tdx import FakeTrade
from fixtures_tdx import PING_AN, SH, at, quote
from sourcekit import Clock, Harness

NEW_LISTING = (SH, "688999")  # listed, quoted, no bars yet


async def test_a_code_without_bars_is_its_own_problem_not_the_hosts(tdx_server) -> None:
    server = tdx_server()
    with server.market.lock:
        server.market.quotes[NEW_LISTING] = quote(20.0, vol=0)
    async with Harness([server.port]) as h:
        h.want(
            ("kline", "699999.SH", "1m"),  # no such code
            ("kline", "688999.SH", "1m"),  # no 1m bars yet
            ("trade", "000001.SZ"),
            ("quote", "699999.SH"),
        )
        await h.until(lambda: h.ctx.last("699999.SH") and h.ctx.last("688999.SH") and h.of("trade"))
        polls = server.requests["transactions"]
        await h.until(lambda: server.requests["transactions"] >= polls + 10)  # trade polling keeps its pace
        assert "stale" not in h.ctx.states() and "down" not in h.ctx.states()
        assert h.ctx.errors["empty"] == 0
        missing = h.ctx.last("699999.SH")
        assert missing is not None and missing["state"] == "down" and "no such code" in missing["reason"]
        assert "no quote" in missing["reason"]
        young = h.ctx.last("688999.SH")
        assert young is not None and young["state"] == "stale" and young["reason"] == "no 1m bars from TDX yet"
        assert h.ctx.states("000001.SZ") == []
        h.want(("trade", "000001.SZ"))  # nobody wants them now: their STATUS is withdrawn
        assert h.ctx.last("699999.SH")["state"] == h.ctx.last("688999.SH")["state"] == "live"  # type: ignore[index]


async def test_yesterdays_daily_bar_is_closed_overnight(tdx_server) -> None:
    server = tdx_server()
    clock = Clock(at("02:00", date(2026, 11, 24)))  # Tuesday night: Monday's bar is final
    async with Harness([server.port], clock=clock) as h:
        h.want(("kline", "000001.SZ", "1d"))
        await h.until(lambda: len(h.of("kline")) == 3)
        monday = h.of("kline")[-1]
        assert monday.open_time == "2026-11-23T00:00:00.000+08:00" and monday.closed


async def test_the_daily_bar_is_resent_closed_when_the_session_ends(tdx_server) -> None:
    server = tdx_server()
    clock = Clock(at("14:59").replace(second=50))
    async with Harness([server.port], clock=clock) as h:
        h.want(("kline", "000001.SZ", "1d"))
        await h.until(lambda: len(h.of("kline")) == 3)
        assert not h.of("kline")[-1].closed
        clock.now = at("15:00").replace(second=5)  # after the closing auction: one more poll, the bar is final
        await h.until(lambda: len(h.of("kline")) == 4)
        final = h.of("kline")[-1]
        assert final.open_time == "2026-11-23T00:00:00.000+08:00" and final.closed
        assert h.ctx.states()[-1] == "closed"


async def test_an_opening_auction_quote_is_stamped_with_today(tdx_server) -> None:
    server = tdx_server()
    with server.market.lock:
        server.market.quotes[PING_AN] = quote(10.5, t="09:25", sec=3)
    clock = Clock(at("09:25").replace(second=4))
    async with Harness([server.port], clock=clock) as h:
        h.want(("quote", "000001.SZ"))
        await h.until(lambda: h.of("quote"))
        assert h.of("quote")[0].timestamp == "2026-11-23T09:25:03.000+08:00"
        polls = server.requests["quotes"]
        await h.until(lambda: server.requests["quotes"] >= polls + 3)  # the auction is polled, not idle
        assert h.ctx.states()[-1] == "live"


async def test_empty_book_levels_are_left_out_never_zero_prices(tdx_server) -> None:
    server = tdx_server()
    with server.market.lock:
        limit_up = quote(11.42)
        limit_up.asks, limit_up.ask_vols = [0.0] * 5, [0] * 5  # limit-up: nobody sells
        limit_up.bids, limit_up.bid_vols = [11.42, 0.0, 0.0, 0.0, 0.0], [10, 0, 0, 0, 0]  # a thin book
        server.market.quotes[PING_AN] = limit_up
    async with Harness([server.port]) as h:
        h.want(("quote", "000001.SZ"))
        await h.until(lambda: h.of("quote"))
        q = h.of("quote")[0]
        assert (q.ask_prices, q.ask_volumes) == ([], [])
        assert (q.bid_prices, q.bid_volumes) == ([11.42], [1000])


async def test_recovery_goes_straight_to_live_without_a_last_down(tdx_server) -> None:
    server = tdx_server()
    server.refuse_login = True
    async with Harness([server.port], workers=1) as h:
        report = h.ctx.status
        after_answers: list[str] = []  # every source-wide state reported once the host served data

        def status(state: str, **kw: object) -> None:
            if kw.get("symbol") is None and sum(server.requests[k] for k in ("quotes", "bars", "transactions")):
                after_answers.append(state)
            report(state, **kw)  # type: ignore[arg-type]

        h.ctx.status = status  # type: ignore[method-assign]
        h.want(("quote", "000001.SZ"), ("kline", "000001.SZ", "1m"), ("trade", "000001.SZ"))
        await h.until(lambda: "down" in h.ctx.states())
        server.refuse_login = False
        await h.until(lambda: "live" in after_answers)
        assert after_answers[0] == "live" and set(after_answers) == {"live"}, after_answers


async def test_transactions_past_the_page_limit_become_a_gap(tdx_server) -> None:
    server = tdx_server()
    async with Harness([server.port], trades_backfill=5, trades_page=8) as h:
        h.want(("trade", "000001.SZ"))
        await h.until(lambda: len(h.of("trade")) == 5)
        with server.market.lock:  # 2,050 transactions between two polls: TDX pages back at most 2,000
            server.market.transactions[PING_AN] += [FakeTrade("10:00", 10.5, 1 + i % 9, 1, i % 2) for i in range(2050)]
        await h.until(lambda: len(h.of("trade")) == 5 + 2000, timeout=10)
        assert h.ctx.losses == [(Stream("trade", "000001.SZ"), 50)]
        assert h.of("trade")[5].trade_id == "20261123-80"  # 30 seen, 50 lost, then the 2,000 that are there


async def test_a_holiday_is_closed_and_not_polled(tdx_server) -> None:
    server = tdx_server()
    with server.market.lock:  # the last three sessions before the holiday
        for bar, day in zip(server.market.bars[(*PING_AN, 9)], (28, 29, 30), strict=True):
            bar.end = bar.end.replace(month=9, day=day)
    clock = Clock(at("10:00", date(2026, 10, 1)))  # National Day, a Thursday
    async with Harness([server.port], clock=clock) as h:
        h.want(("quote", "000001.SZ"), ("kline", "000001.SZ", "1d"))
        await h.until(lambda: h.of("quote") and h.of("kline"))
        await h.until(lambda: h.ctx.states()[-1:] == ["closed"])
        assert h.ctx.last()["reason"] == "not a trading day (weekend or exchange holiday)"  # type: ignore[index]
        assert all(k.closed for k in h.of("kline"))  # the last session's bar is final
        seen = dict(server.requests)
        await asyncio.sleep(0.4)
        assert dict(server.requests) == seen


async def test_a_weekend_make_up_working_day_is_closed(tdx_server) -> None:
    server = tdx_server()
    clock = Clock(at("10:00", date(2026, 10, 10)))  # a Saturday China works; the exchanges do not
    async with Harness([server.port], clock=clock) as h:
        h.want(("quote", "000001.SZ"))
        await h.until(lambda: h.of("quote"))
        await h.until(lambda: h.ctx.states()[-1:] == ["closed"])
        seen = server.requests["quotes"]
        await asyncio.sleep(0.4)
        assert server.requests["quotes"] == seen


async def test_lunch_break_is_closed_with_its_reason(tdx_server) -> None:
    server = tdx_server()
    clock = Clock(at("12:10"))
    async with Harness([server.port], clock=clock) as h:
        h.want(("quote", "000001.SZ"))
        await h.until(lambda: h.ctx.states()[-1:] == ["closed"])
        assert h.ctx.last()["reason"] == "lunch break"  # type: ignore[index]
