"""What the Yahoo source sends is what the market did: day fields from the chart, trades lost in an
outage as a hole (GAP) not one invented trade, and the exchange calendar (lunch, holidays,
make-up working days, auctions, half days)."""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path

import pytest
from argus_protocol import Stream
from fake_chart import CannedChart, FakeChartServer
from fake_streamer import FakeStreamer
from yahoo_fixtures import ms, pufa
from yahookit import Clock, Harness

# yfinance 1.7 on pandas 3.1 calls DataFrame.sort_index(inplace=True); pandas warns that is going away
pytestmark = pytest.mark.filterwarnings(
    "ignore:The inplace keyword in DataFrame.sort_index is deprecated:pandas.errors.Pandas4Warning:yfinance.utils"
)

AAPL, TENCENT, PUFA = "AAPL.US", "00700.HK", "600000.SH"


def at(iso: str) -> Clock:
    return Clock(datetime.fromisoformat(iso))


async def test_day_fields_missing_from_the_stream_come_from_the_chart(
    streamer: FakeStreamer, chart_server: FakeChartServer, tmp_path: Path
) -> None:
    chart_server.charts = {"600000.SS": pufa()}  # open 10.50, high 10.55, low 10.49, previous close 10.45
    async with Harness(streamer.url, chart_server.url, str(tmp_path)) as h:
        h.want(("quote", PUFA))
        await streamer.wait(lambda: streamer.conns and streamer.current.subscribed() == {"600000.SS"})
        t0 = ms("2026-11-24T09:32:00+08:00")
        await streamer.push(id="600000.SS", price=10.53, time=t0, day_volume=200_000)  # no open/high/low/prev close
        await h.until(lambda: h.of("quote"))
        q = h.of("quote")[0]
        assert (q.price, q.open, q.high, q.low, q.prev_close) == (10.53, 10.50, 10.55, 10.49, 10.45)
        await streamer.push(id="600000.SS", price=10.61, time=t0 + 1000, day_volume=200_500, day_high=10.61)
        await h.until(lambda: len(h.of("quote")) == 2)
        q = h.of("quote")[-1]
        assert (q.open, q.high, q.low, q.prev_close) == (10.50, 10.61, 10.49, 10.45)  # kept, and updated
        assert len(chart_server.chart_requests("600000.SS")) == 1  # asked once, not polled


async def test_prints_missed_in_an_outage_are_a_lost_event_not_one_trade(
    streamer: FakeStreamer, tmp_path: Path
) -> None:
    async with Harness(streamer.url, "http://127.0.0.1:9", str(tmp_path)) as h:
        h.want(("trade", AAPL))
        await streamer.wait(lambda: streamer.conns and streamer.current.subscribed() == {"AAPL"})
        t0 = ms("2026-11-23T10:15:00-05:00")
        await streamer.push(id="AAPL", price=229.0, time=t0, day_volume=38_000_000, bid=228.99, ask=229.01)
        await streamer.push(id="AAPL", price=229.01, time=t0 + 100, day_volume=38_000_100)
        await h.until(lambda: len(h.of("trade")) == 1)
        streamer.drop()
        await streamer.wait(lambda: len(streamer.conns) == 2 and streamer.open())
        await streamer.wait(lambda: streamer.current.subscribed() == {"AAPL"})
        await streamer.push(id="AAPL", price=229.5, time=t0 + 60_000, day_volume=38_250_100)  # 250k traded unseen
        await streamer.push(id="AAPL", price=229.5, time=t0 + 60_100, day_volume=38_250_200)
        await h.until(lambda: len(h.of("trade")) == 2)
        assert h.ctx.losses == [(Stream("trade", AAPL), 1)]
        assert [t.volume for t in h.of("trade")] == [100, 100]  # no 250,000-share trade that never happened


async def test_hong_kong_lunch_is_closed_and_never_stale(streamer: FakeStreamer, tmp_path: Path) -> None:
    clock = at("2026-11-24T12:20:00+08:00")
    async with Harness(
        streamer.url, "http://127.0.0.1:9", str(tmp_path), clock, schedule="exchange", stale_after=0.2
    ) as h:
        h.want(("quote", TENCENT))
        await streamer.wait(lambda: streamer.conns and streamer.current.subscribed() == {"0700.HK"})
        await h.until(lambda: h.ctx.states()[-1:] == ["closed"])
        assert h.ctx.last()["reason"] == "lunch break"  # type: ignore[index]
        await asyncio.sleep(0.8)
        assert h.ctx.states(TENCENT) == []
        clock.now = datetime.fromisoformat("2026-11-24T13:00:01+08:00")  # the afternoon: silence is stale again
        await h.until(lambda: h.ctx.states()[-1:] == ["live"])
        await h.until(lambda: h.ctx.states(TENCENT) == ["stale"], timeout=3)


async def test_a_holiday_and_a_make_up_working_day_are_closed_and_never_stale(
    streamer: FakeStreamer, tmp_path: Path
) -> None:
    for when, symbol, ticker in (
        ("2026-12-25T10:30:00+08:00", TENCENT, "0700.HK"),  # Christmas: HKEX closed (SSE trades)
        ("2026-10-01T10:30:00+08:00", PUFA, "600000.SS"),  # National Day
        ("2026-10-10T10:30:00+08:00", PUFA, "600000.SS"),  # a Saturday China works; SSE does not
    ):
        async with Harness(
            streamer.url, "http://127.0.0.1:9", str(tmp_path), at(when), schedule="exchange", stale_after=0.2
        ) as h:
            h.want(("quote", symbol))
            await streamer.wait(lambda t=ticker: streamer.open() and streamer.current.subscribed() == {t})
            await h.until(lambda: h.ctx.states()[-1:] == ["closed"])
            assert h.ctx.last()["reason"] == "not a trading day (weekend or exchange holiday)"  # type: ignore[index]
            await asyncio.sleep(0.8)
            assert h.ctx.states(symbol) == [], when


async def test_the_opening_auction_is_live_but_silence_there_is_not_stale(
    streamer: FakeStreamer, tmp_path: Path
) -> None:
    async with Harness(
        streamer.url,
        "http://127.0.0.1:9",
        str(tmp_path),
        at("2026-11-24T09:10:00+08:00"),  # HKEX pre-opening session
        schedule="exchange",
        stale_after=0.2,
    ) as h:
        h.want(("quote", TENCENT))
        await streamer.wait(lambda: streamer.conns and streamer.current.subscribed() == {"0700.HK"})
        await h.until(lambda: h.ctx.states()[-1:] == ["live"])
        await asyncio.sleep(0.8)
        assert h.ctx.states(TENCENT) == []


async def test_a_half_days_daily_bar_is_final_after_its_early_close(
    chart_server: FakeChartServer, tmp_path: Path
) -> None:
    chart_server.charts = {
        "0700.HK": CannedChart(
            "0700.HK",
            "HK",
            "2026-12-24",  # Christmas Eve: HKEX trades the morning only
            [("09:30", 500.0, 501.0, 499.5, 500.5, 10_000), ("11:59", 500.5, 502.0, 500.0, 501.5, 20_000)],
            prev_close=498.0,
            currency="HKD",
        )
    }
    clock = at("2026-12-24T13:30:00+08:00")
    async with Harness("ws://127.0.0.1:9/", chart_server.url, str(tmp_path), clock, schedule="exchange") as h:
        h.want(("kline", TENCENT, "1d"))
        await h.until(lambda: h.of("kline"))
        daily = h.of("kline")[-1]
        assert daily.open_time == "2026-12-24T00:00:00+08:00" and daily.closed
