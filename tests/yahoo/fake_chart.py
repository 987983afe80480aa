"""A fake Yahoo chart API on 127.0.0.1 (aiohttp): canned v8 chart JSON, plus the cookie and crumb
endpoints yfinance calls first. Every request is recorded so tests can prove nothing went elsewhere."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

CRUMB = "fakeCrumb123"

# Yahoo's meta for each exchange the tests use: zone, short zone name, exchange name, regular session
EXCHANGES: dict[str, tuple[str, str, str, str, str]] = {
    "US": ("America/New_York", "EST", "NMS", "09:30", "16:00"),
    "HK": ("Asia/Hong_Kong", "HKT", "HKG", "09:30", "16:00"),
    "SH": ("Asia/Shanghai", "CST", "SHH", "09:30", "15:00"),
}


@dataclass
class CannedChart:
    """One ticker's day: 1m bars as (local "HH:MM", open, high, low, close, volume) on `day`."""

    ticker: str
    exchange: str
    day: str
    bars: list[tuple[str, float, float, float, float, int]]
    prev_close: float
    day_high: float | None = None
    day_low: float | None = None
    day_volume: int | None = None
    currency: str = "USD"

    def epoch(self, hhmm: str) -> int:
        tz = ZoneInfo(EXCHANGES[self.exchange][0])
        return int(datetime.fromisoformat(f"{self.day}T{hhmm}").replace(tzinfo=tz).timestamp())

    def json(self) -> dict[str, Any]:
        zone, short, exch, open_, close = EXCHANGES[self.exchange]
        tz = ZoneInfo(zone)
        start, end = self.epoch(open_), self.epoch(close)
        offset = int(datetime.fromtimestamp(start, tz).utcoffset().total_seconds())  # type: ignore[union-attr]
        period = {"timezone": short, "start": start, "end": end, "gmtoffset": offset}
        last = self.bars[-1]
        meta: dict[str, Any] = {
            "currency": self.currency,
            "symbol": self.ticker,
            "exchangeName": exch,
            "fullExchangeName": exch,
            "instrumentType": "INDEX" if self.ticker.startswith("^") else "EQUITY",
            "firstTradeDate": 345479400,
            "regularMarketTime": self.epoch(last[0]) + 59,
            "hasPrePostMarketData": True,
            "gmtoffset": offset,
            "timezone": short,
            "exchangeTimezoneName": zone,
            "regularMarketPrice": last[4],
            "chartPreviousClose": self.prev_close,
            "previousClose": self.prev_close,
            "scale": 3,
            "priceHint": 2,
            "currentTradingPeriod": {
                "pre": {**period, "start": start - 3600, "end": start},
                "regular": period,
                "post": {**period, "start": end, "end": end + 3600},
            },
            "tradingPeriods": [[period]],
            "dataGranularity": "1m",
            "range": "1d",
            "validRanges": ["1d", "5d", "1mo", "3mo", "6mo", "1y", "2y", "5y", "10y", "ytd", "max"],
        }
        for key, value in (
            ("regularMarketDayHigh", self.day_high),
            ("regularMarketDayLow", self.day_low),
            ("regularMarketVolume", self.day_volume),
        ):
            if value is not None:
                meta[key] = value
        return {
            "chart": {
                "result": [
                    {
                        "meta": meta,
                        "timestamp": [self.epoch(b[0]) for b in self.bars],
                        "indicators": {
                            "quote": [
                                {
                                    "open": [b[1] for b in self.bars],
                                    "high": [b[2] for b in self.bars],
                                    "low": [b[3] for b in self.bars],
                                    "close": [b[4] for b in self.bars],
                                    "volume": [b[5] for b in self.bars],
                                }
                            ]
                        },
                    }
                ],
                "error": None,
            }
        }


@dataclass
class History:
    """A ticker's past as Yahoo keeps it: per interval ("1d", "1m", ...) bars as
    (epoch seconds, open, high, low, close, volume, adjusted close), oldest first."""

    ticker: str
    exchange: str
    series: dict[str, list[tuple[int, float, float, float, float, int, float]]]
    currency: str = "USD"

    def json(self, interval: str, query: dict[str, str]) -> dict[str, Any]:
        rows = self.series.get(interval, [])
        if "period1" in query:
            lo, hi = int(query["period1"]), int(query.get("period2") or 2**40)
            rows = [r for r in rows if lo <= r[0] < hi]
        elif query.get("range") == "1d":
            rows = rows[-1:]
        zone, short, exch, _, _ = EXCHANGES[self.exchange]
        offset = int(datetime.now(ZoneInfo(zone)).utcoffset().total_seconds())  # type: ignore[union-attr]
        meta = {
            "currency": self.currency,
            "symbol": self.ticker,
            "exchangeName": exch,
            "instrumentType": "EQUITY",
            "firstTradeDate": self.series[interval][0][0] if self.series.get(interval) else 0,
            "gmtoffset": offset,
            "timezone": short,
            "exchangeTimezoneName": zone,
            "regularMarketPrice": rows[-1][4] if rows else 0.0,
            "dataGranularity": interval,
            "range": query.get("range", ""),
            "hasPrePostMarketData": False,
            "priceHint": 2,
            "scale": 3,
            "validRanges": ["1d", "5d", "1mo", "3mo", "6mo", "1y", "2y", "5y", "10y", "ytd", "max"],
        }
        if interval != "1d":  # yfinance lines intraday bars up with each day's regular session
            tz, (_, _, _, open_, close) = ZoneInfo(zone), EXCHANGES[self.exchange]
            periods = []
            for day in sorted({datetime.fromtimestamp(r[0], tz).date() for r in rows}):
                a = int(datetime.fromisoformat(f"{day}T{open_}").replace(tzinfo=tz).timestamp())
                b = int(datetime.fromisoformat(f"{day}T{close}").replace(tzinfo=tz).timestamp())
                periods.append([{"timezone": short, "start": a, "end": b, "gmtoffset": offset}])
            meta["tradingPeriods"] = periods
            if periods:
                meta["currentTradingPeriod"] = {k: periods[-1][0] for k in ("pre", "regular", "post")}
        quote = {k: [r[i] for r in rows] for i, k in enumerate(("open", "high", "low", "close", "volume"), start=1)}
        indicators: dict[str, Any] = {"quote": [quote]}
        if interval in ("1d", "5d", "1wk", "1mo", "3mo"):
            indicators["adjclose"] = [{"adjclose": [r[6] for r in rows]}]
        result = {"meta": meta, "timestamp": [r[0] for r in rows], "indicators": indicators}
        return {"chart": {"result": [result], "error": None}}


@dataclass
class Request:
    path: str
    query: dict[str, str]
    host: str
    at: float = field(default_factory=time.monotonic)


@dataclass
class FakeChartServer:
    charts: dict[str, CannedChart] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    history: dict[str, History] = field(default_factory=dict)  # answers ranges and other intervals
    fail: set[str] = field(default_factory=set)  # tickers answered with HTTP 500
    delay: float = 0.0  # seconds each chart answer takes
    inflight: int = 0
    max_inflight: int = 0
    port: int = 0
    _runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def chart_requests(self, ticker: str | None = None) -> list[Request]:
        return [
            r
            for r in self.requests
            if r.path.startswith("/v8/finance/chart/") and (ticker is None or r.path.endswith("/" + ticker))
        ]

    async def start(self) -> FakeChartServer:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(Request(request.path, dict(request.query), request.host))
        if request.path == "/":  # fc.yahoo.com: the cookie yfinance wants before asking for a crumb
            resp = web.Response(text="ok")
            resp.set_cookie("A3", "d=fake", domain="127.0.0.1", max_age=3600)
            return resp
        if request.path == "/redirect-out":  # a server pointing yfinance elsewhere: must not be followed
            raise web.HTTPFound("https://fc.yahoo.com/")
        if request.path == "/v1/test/getcrumb":
            return web.Response(text=CRUMB)
        if request.path.startswith("/v8/finance/chart/"):
            ticker = request.path.rsplit("/", 1)[1]
            if ticker in self.fail:
                return web.json_response({"error": "boom"}, status=500)
            self.inflight += 1
            self.max_inflight = max(self.max_inflight, self.inflight)
            try:
                await asyncio.sleep(self.delay)
            finally:
                self.inflight -= 1
            past = self.history.get(ticker)
            interval = request.query.get("interval", "1m")
            if past is not None and (interval != "1m" or "period1" in request.query or ticker not in self.charts):
                return web.json_response(past.json(interval, dict(request.query)))
            chart = self.charts.get(ticker)
            if chart is None:
                return web.json_response(
                    {"chart": {"result": None, "error": {"code": "Not Found", "description": "No data found"}}},
                    status=404,
                )
            return web.json_response(chart.json())
        return web.Response(status=404, text="not found")
