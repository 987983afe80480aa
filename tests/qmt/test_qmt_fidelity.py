"""What the QMT source sends is what the market did: empty book levels, halts across reconnects,
and the exchange calendar (holidays, make-up working days, lunch, auctions, the daily bar)."""

from __future__ import annotations

from qmt_fake_xtdata import FakeXtData, bar, ms, tick
from qmt_kit import DAY, Clock, Harness

T0 = ms(DAY, "10:00:03")


def at(day: str, hhmmss: str) -> Clock:
    clock = Clock()
    clock.now = ms(day, hhmmss) / 1000
    return clock


async def test_empty_book_levels_are_left_out_never_zero_prices(fake_xt: FakeXtData) -> None:
    limit_up = tick(T0, 11.42)
    limit_up.update(askPrice=[0.0] * 5, askVol=[0] * 5, bidPrice=[11.42, 0.0, 0.0, 0.0, 0.0], bidVol=[10, 0, 0, 0, 0])
    fake_xt.full_tick["000001.SZ"] = limit_up
    async with Harness(fake_xt) as h:
        h.want(("quote", "000001.SZ"))
        await h.connected()
        await h.until(lambda: h.of("quote"))
        q = h.of("quote")[0]
        assert (q.ask_prices, q.ask_volumes) == ([], [])
        assert (q.bid_prices, q.bid_volumes) == ([11.42], [1000])


async def test_backfilled_bars_after_a_reconnect_do_not_lift_a_halt(fake_xt: FakeXtData) -> None:
    fake_xt.full_tick["600000.SH"] = tick(T0, 8.2, status=17)  # suspended since 10:00:03
    fake_xt.history[("600000.SH", "1m")] = [
        bar(ms(DAY, f"09:{m:02d}:00"), 8.2, 8.21, 8.19, 8.2, 300) for m in range(31, 60)
    ]  # the morning before the halt, with volume
    async with Harness(fake_xt) as h:
        h.want(("quote", "600000.SH"), ("kline", "600000.SH", "1m"))
        await h.connected()
        await h.until(lambda: h.ctx.states("600000.SH") == ["halted"])
        fake_xt.kill()
        await h.until(lambda: h.ctx.last()["state"] == "down")  # type: ignore[index]
        fake_xt.revive()
        await h.connected()
        await h.settle()
        assert h.ctx.states("600000.SH") == ["halted"]  # never a false `live` in between
        fake_xt.push_bars("600000.SH", "1m", [bar(ms(DAY, "10:31:00"), 8.2, 8.3, 8.2, 8.25, 500)])
        await h.until(lambda: h.ctx.states("600000.SH") == ["halted", "live"])  # a new bar with volume: trading


async def test_a_holiday_is_closed_and_its_last_daily_bar_final(fake_xt: FakeXtData) -> None:
    fake_xt.full_tick["000001.SZ"] = tick(ms("20250930", "15:00:00"), 10.5)
    fake_xt.history[("000001.SZ", "1d")] = [bar(ms("20250930", "00:00:00"), 10.4, 10.6, 10.3, 10.5, 9000)]
    async with Harness(fake_xt, clock=at("20251001", "10:00:00")) as h:  # National Day
        h.want(("quote", "000001.SZ"), ("kline", "000001.SZ", "1d"))
        await h.connected()
        await h.until(lambda: h.of("kline") and h.of("kline")[-1].closed)
        last = h.ctx.last()
        assert last is not None and last["state"] == "closed"
        assert last["reason"] == "not a trading day (weekend or exchange holiday)"


async def test_a_weekend_make_up_working_day_is_closed(fake_xt: FakeXtData) -> None:
    async with Harness(fake_xt, clock=at("20251011", "10:00:00")) as h:  # a Saturday China worked; SSE did not
        h.want(("quote", "600000.SH"))
        await h.connected()
        await h.until(lambda: (h.ctx.last() or {}).get("state") == "closed")


async def test_lunch_break_is_closed_then_live_and_the_daily_bar_stays_open(fake_xt: FakeXtData) -> None:
    clock = at(DAY, "12:00:00")
    fake_xt.history[("000001.SZ", "1d")] = [bar(ms(DAY, "00:00:00"), 10.4, 10.6, 10.3, 10.5, 9000)]
    async with Harness(fake_xt, clock=clock) as h:
        h.want(("quote", "000001.SZ"), ("kline", "000001.SZ", "1d"))
        await h.connected()
        await h.until(lambda: (h.ctx.last() or {}).get("reason") == "lunch break")
        await h.until(lambda: h.of("kline"))
        assert not h.of("kline")[-1].closed  # the day is not over at lunch
        clock.set("13:00:01")
        await h.until(lambda: (h.ctx.last() or {}).get("state") == "live")
        clock.set("15:00:03")  # after the closing auction (plus close_grace): the daily bar is final
        await h.until(lambda: h.of("kline")[-1].closed)
        assert h.ctx.last()["state"] == "closed"  # type: ignore[index]


async def test_the_opening_auction_is_live_and_a_tick_without_price_is_no_halt(fake_xt: FakeXtData) -> None:
    clock = at(DAY, "09:20:00")
    fake_xt.full_tick["000001.SZ"] = tick(ms(DAY, "09:20:00"), 0.0, last_close=10.45, volume=0)  # no match yet
    async with Harness(fake_xt, clock=clock) as h:
        h.want(("quote", "000001.SZ"))
        await h.connected()
        await h.settle()
        assert h.ctx.last()["state"] == "live"  # type: ignore[index]
        assert h.ctx.states("000001.SZ") == [] and h.of("quote") == []
        clock.set("09:25:03")
        fake_xt.push_ticks({"000001.SZ": tick(ms(DAY, "09:25:03"), 10.5, last_close=10.45, volume=1200)})
        await h.until(lambda: h.of("quote"))
        assert h.of("quote")[0].timestamp == "2025-08-15T09:25:03.000+08:00" and h.of("quote")[0].price == 10.5
