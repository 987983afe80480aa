"""Polling: yfinance's real history() parsing canned chart JSON from a local server, every request kept local."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
from datetime import timedelta
from pathlib import Path

import pytest
from argus_ingestor_yahoo.chart import ChartClient, RedirectSession, make_session
from fake_chart import CRUMB, FakeChartServer
from fake_streamer import FakeStreamer
from yahoo_fixtures import NOW, aapl, all_charts, ms
from yahookit import Clock, Harness

# yfinance 1.7 on pandas 3.1 calls DataFrame.sort_index(inplace=True); pandas warns that is going away
pytestmark = pytest.mark.filterwarnings(
    "ignore:The inplace keyword in DataFrame.sort_index is deprecated:pandas.errors.Pandas4Warning:yfinance.utils"
)

AAPL, TENCENT, PUFA = "AAPL.US", "00700.HK", "600000.SH"
ALL_BARS = [(t, s, p) for s in (AAPL, TENCENT, PUFA) for t, p in (("kline", "1m"), ("kline", "5m"), ("kline", "1d"))]
TICKS = [("tick", s) for s in (AAPL, TENCENT, PUFA)]


async def test_history_parses_canned_chart_and_every_request_stays_local(
    chart_server: FakeChartServer, tmp_path: Path
) -> None:
    chart_server.charts = all_charts()
    session = make_session(chart_server.url, str(tmp_path))
    assert isinstance(session, RedirectSession)
    client = ChartClient(session, 5.0)
    day = await asyncio.to_thread(client.fetch, "AAPL", "America/New_York")
    # tradingPeriods ends the regular session at 16:00: yfinance drops the 16:00 bar
    assert [b.ts_ms for b in day.bars] == [ms(f"2026-11-23T09:{m}:00-05:00") for m in ("30", "31", "35")]
    assert (day.bars[0].open, day.bars[0].high, day.bars[0].low, day.bars[0].close, day.bars[0].volume) == (
        229.0,
        229.5,
        228.9,
        229.4,
        1000,
    )
    assert (day.tz, day.day_high, day.day_low, day.day_volume) == ("America/New_York", 230.72, 228.06, 38_168_252)
    hk = await asyncio.to_thread(client.fetch, "0700.HK", "Asia/Hong_Kong")
    assert [b.close for b in hk.bars] == [500.5, 501.5, 501.0] and hk.tz == "Asia/Hong_Kong"
    # every request went to the fake: the cookie and crumb yfinance fetches first, then one chart request each
    assert all(url.startswith(chart_server.url + "/") for url in session.requested)
    paths = {"/", "/v1/test/getcrumb", "/v8/finance/chart/AAPL", "/v8/finance/chart/0700.HK"}
    assert {r.path for r in chart_server.requests} <= paths
    charts = chart_server.chart_requests()
    assert [r.path for r in charts] == ["/v8/finance/chart/AAPL", "/v8/finance/chart/0700.HK"]  # no tz look-up
    assert charts[0].query["range"] == "1d" and charts[0].query["interval"] == "1m"
    assert charts[0].query["crumb"] == CRUMB


async def test_redirect_session_rewrites_yahoo_hosts_and_never_follows_redirects(
    chart_server: FakeChartServer,
) -> None:
    session = RedirectSession(chart_server.url + "/prefix", impersonate="chrome")
    assert session.rewrite("https://fc.yahoo.com") == chart_server.url + "/prefix/"
    assert session.rewrite("https://guce.yahoo.com/consent?x=1") == chart_server.url + "/prefix/consent?x=1"
    plain = RedirectSession(chart_server.url, impersonate="chrome")
    r = await asyncio.to_thread(plain.get, "https://query1.finance.yahoo.com/redirect-out", allow_redirects=True)
    assert r.status_code == 302  # not followed to fc.yahoo.com
    assert [q.path for q in chart_server.requests] == ["/redirect-out"]


def test_default_endpoint_keeps_yfinance_session(tmp_path: Path) -> None:
    assert make_session("https://query2.finance.yahoo.com", str(tmp_path)) is None


async def test_klines_and_ticks_forming_then_closed(chart_server: FakeChartServer, tmp_path: Path) -> None:
    chart_server.charts = all_charts()
    clock = Clock(NOW)  # 09:32:30 in Hong Kong and Shanghai; New York's 2026-11-23 session is over
    async with Harness("ws://127.0.0.1:9/", chart_server.url, str(tmp_path), clock, schedule="exchange") as h:
        h.want(*ALL_BARS, *TICKS)
        await h.until(lambda: {e.symbol for e in h.events_of("tick")} == {AAPL, TENCENT, PUFA})
        await h.until(lambda: len({(e.symbol, e.kline.period) for e in h.events_of("kline")}) == 9)
        us_1m = [k for k in h.of("kline", AAPL) if k.period == "1m"]
        assert [(k.open_time, k.close, k.closed) for k in us_1m] == [
            ("2026-11-23T09:30:00-05:00", 229.4, True),
            ("2026-11-23T09:31:00-05:00", 229.7, True),
            ("2026-11-23T09:35:00-05:00", 230.0, True),
        ]
        us_5m = [k for k in h.of("kline", AAPL) if k.period == "5m"]
        assert [(k.open_time, k.open, k.high, k.low, k.close, k.volume, k.closed) for k in us_5m] == [
            ("2026-11-23T09:30:00-05:00", 229.0, 229.8, 228.9, 229.7, 1500, True),
            ("2026-11-23T09:35:00-05:00", 229.7, 230.1, 229.6, 230.0, 800, True),
        ]
        (us_1d,) = [k for k in h.of("kline", AAPL) if k.period == "1d"]
        assert (us_1d.open_time, us_1d.open, us_1d.high, us_1d.low, us_1d.volume, us_1d.closed) == (
            "2026-11-23T00:00:00-05:00",
            229.0,
            230.72,
            228.06,
            38_168_252,
            True,
        )
        hk_1m = [k for k in h.of("kline", TENCENT) if k.period == "1m"]
        assert [(k.open_time, k.closed) for k in hk_1m] == [
            ("2026-11-24T09:30:00+08:00", True),
            ("2026-11-24T09:31:00+08:00", True),
            ("2026-11-24T09:32:00+08:00", False),
        ]
        (hk_1d,) = [k for k in h.of("kline", TENCENT) if k.period == "1d"]
        assert hk_1d.closed is False and hk_1d.open == 500.0 and hk_1d.volume == 33_000
        hk_ticks = h.of("tick", TENCENT)
        assert [t.time for t in hk_ticks] == [f"2026-11-24T09:3{m}:00+08:00" for m in (0, 1, 2)]
        last = hk_ticks[-1]
        vwap = (500.5 * 10_000 + 501.5 * 20_000 + 501.0 * 3_000) / 33_000
        assert (last.price, last.volume, last.amount, last.avg_price, last.closed) == (
            501.0,
            3_000,
            1_503_000.0,
            round(vwap, 4),
            False,
        )
        sh_ticks = h.of("tick", PUFA)
        assert [(t.time, t.price, t.closed) for t in sh_ticks] == [
            ("2026-11-24T09:30:00+08:00", 10.51, True),
            ("2026-11-24T09:31:00+08:00", 10.54, True),
        ]
        # the next minute: Yahoo adds a bar; 09:32 is re-sent closed, 09:33 forms
        n = len(h.events)
        clock.now = NOW + timedelta(minutes=1)
        chart_server.charts["0700.HK"].bars.append(("09:33", 501.0, 503.0, 501.0, 502.5, 4_000))
        await h.until(lambda: any(t.time.endswith("09:33:00+08:00") for t in h.of("tick", TENCENT)))
        await h.until(lambda: sum(1 for k in h.of("kline", TENCENT) if k.period == "1m") == 5)
        new = [e.kline for e in h.events[n:] if e.symbol == TENCENT and e.__struct_config__.tag == "kline"]
        assert [(k.open_time[11:16], k.closed) for k in new if k.period == "1m"] == [("09:32", True), ("09:33", False)]
        assert len(h.of("kline", AAPL)) == 6  # New York's day is over: nothing new for AAPL


async def test_one_request_per_symbol_per_interval_shared_by_all_types(
    chart_server: FakeChartServer, tmp_path: Path
) -> None:
    chart_server.charts = all_charts()
    async with Harness("ws://127.0.0.1:9/", chart_server.url, str(tmp_path), poll_interval=0.25) as h:
        h.want(*ALL_BARS, *TICKS)
        await h.until(lambda: len(chart_server.chart_requests("0700.HK")) >= 4)
    for ticker in ("AAPL", "0700.HK", "600000.SS"):
        times = [r.at for r in chart_server.chart_requests(ticker)]
        assert len(times) >= 3
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert min(gaps) >= 0.25, gaps  # 1m, 5m, 1d and 分时 share one request per interval


async def test_closed_market_is_polled_once_not_every_interval(chart_server: FakeChartServer, tmp_path: Path) -> None:
    chart_server.charts = all_charts()
    opts = {"poll_interval": 0.1, "schedule": "exchange"}
    async with Harness("ws://127.0.0.1:9/", chart_server.url, str(tmp_path), **opts) as h:  # type: ignore[arg-type]
        h.want(("kline", AAPL, "1m"), ("kline", TENCENT, "1m"))
        await h.until(lambda: len(chart_server.chart_requests("0700.HK")) >= 5)
    assert len(chart_server.chart_requests("AAPL")) == 1  # New York is closed at NOW


async def test_a_failing_chart_is_counted_and_others_still_flow(chart_server: FakeChartServer, tmp_path: Path) -> None:
    chart_server.charts = all_charts()
    chart_server.fail = {"AAPL"}
    async with Harness("ws://127.0.0.1:9/", chart_server.url, str(tmp_path)) as h:
        h.want(("kline", AAPL, "1m"), ("tick", PUFA))
        await h.until(lambda: h.ctx.errors["chart"] >= 3 and h.of("tick", PUFA))
        assert h.of("kline", AAPL) == []
        # on an HTTP error yfinance itself asks once more (with its other cookie strategy): one poll, two requests
        polls = [r.at for r in chart_server.chart_requests("AAPL")][::2]
        assert polls[1] - polls[0] >= 0.6 and polls[2] - polls[1] >= 1.2  # backing off: 2 × 0.3 s, then 4 ×
        chart_server.fail = set()
        await h.until(lambda: h.of("kline", AAPL))


async def test_slow_charts_use_bounded_threads_and_never_block_the_stream(
    chart_server: FakeChartServer, streamer: FakeStreamer, tmp_path: Path
) -> None:
    chart_server.charts = all_charts()
    for ticker in ("MSFT", "GOOG", "NVDA"):
        chart_server.charts[ticker] = dataclasses.replace(aapl(), ticker=ticker)
    chart_server.delay = 1.0
    symbols = ["AAPL.US", "MSFT.US", "GOOG.US", "NVDA.US", PUFA]
    async with Harness(streamer.url, chart_server.url, str(tmp_path), poll_workers=2, poll_interval=5) as h:
        h.want(*[("kline", s, "1m") for s in symbols], ("quote", TENCENT))
        await streamer.wait(lambda: streamer.conns and streamer.current.subscribed() == {"0700.HK"})
        await h.until(lambda: chart_server.inflight == 2)
        # history() is blocking: were it on the event loop, neither this quote nor the fake's answers would move
        # with its day fields, so the quote needs nothing from the (busy) chart API
        await streamer.push(
            id="0700.HK",
            price=501.0,
            time=ms("2026-11-24T09:31:00+08:00"),
            open_price=500.0,
            day_high=502.0,
            day_low=499.0,
            previous_close=498.0,
        )
        inflight_at_quote: list[int] = []  # read when the quote is first seen, not after the fact

        def quoted() -> bool:
            if h.of("quote") and not inflight_at_quote:
                inflight_at_quote.append(chart_server.inflight)
            return bool(inflight_at_quote)

        await h.until(quoted)
        assert inflight_at_quote[0] > 0, "the quote came while chart requests were still being answered"
        await h.until(lambda: {e.symbol for e in h.events_of("kline")} == set(symbols), timeout=10)
    assert chart_server.max_inflight == 2
