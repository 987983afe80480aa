"""Deep history from Yahoo through yfinance `Ticker.history`: bars of every period over a range
(`auto_adjust=False`, so both the traded close and Yahoo's adjusted close come back), a day's 分时
from its 1m bars (candles.py, as live), and quotes from the chart. 前复权 (qfq) scales each bar's
prices by adjusted close / close of its day, Yahoo's own dividend and split factor; 后复权 (hfq)
divides that by the factor of the first day Yahoo has (`period="max"`). Yahoo's intraday bars reach
back only so far (1m: 30 days; 5m–30m: 60 days; 60m: 730 days); Yahoo has no trade prints."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from argus_ingestor import HistoryAnswer, HistoryQuery, HistoryUnavailable
from argus_ingestor.bars import bucket_end_ms, bucket_start_ms, iso_ms
from argus_protocol import PERIOD_SECONDS, Event, Kline, KlineEvent, Quote, QuoteEvent, TickEvent

from . import candles
from .chart import AdjBar, Bar, ChartClient, ChartDay
from .symbols import NotOnYahoo, to_yahoo

REACH_DAYS = {"1m": 30, "5m": 60, "15m": 60, "30m": 60, "60m": 730}  # how far back Yahoo keeps intraday bars
ADJUST_SOURCE = "yahoo adjclose"
_TRADING_DAY_S = 6.5 * 3600


def _start_for(q: HistoryQuery, end: datetime) -> datetime:
    """A range start that holds `limit` bars before `end` (calendar days and sessions allowed for)."""
    if q.start is not None:
        return q.start
    span = PERIOD_SECONDS[q.period]
    if q.period == "1d":
        return end - timedelta(days=int(q.limit * 1.5) + 10)
    return end - timedelta(days=int(q.limit * span / _TRADING_DAY_S * 1.6) + 4)


class YahooHistory:
    def __init__(self, client: ChartClient, tz_of: Callable[[str], Any], now: Callable[[], datetime]) -> None:
        self.client = client
        self.tz_of = tz_of
        self.now = now

    async def answer(self, q: HistoryQuery) -> HistoryAnswer:
        try:
            tickers = [to_yahoo(s) for s in q.symbols]
        except NotOnYahoo as e:
            raise HistoryUnavailable(str(e)) from None
        try:
            if q.kind == "kline":
                return await self._bars(q, tickers[0])
            if q.kind == "tick":
                return await self._ticks(q, tickers[0])
            if q.kind == "quote":
                return await self._quotes(q, tickers)
        except HistoryUnavailable:
            raise
        except Exception as e:  # noqa: BLE001 - yfinance raises many kinds: each means Yahoo did not answer
            raise HistoryUnavailable(f"Yahoo chart: {type(e).__name__}: {str(e)[:160]}") from None
        raise HistoryUnavailable("Yahoo publishes no trade prints (live trades are derived from volume steps)")

    def _zone(self, symbol: str) -> Any:
        tz = self.tz_of(symbol)
        return tz if tz is not None else ZoneInfo("UTC")

    async def _bars(self, q: HistoryQuery, ticker: str) -> HistoryAnswer:
        now = self.now()
        end = min(q.end or now, now)
        reach = REACH_DAYS.get(q.period)
        if reach is not None and end < now - timedelta(days=reach):
            raise HistoryUnavailable(f"Yahoo keeps {q.period} bars for the last {reach} days only")
        start = _start_for(q, end)
        if reach is not None:
            start = max(start, now - timedelta(days=reach - 1))
        tz = self._zone(q.symbol)
        rows = await asyncio.to_thread(self.client.series, ticker, str(tz), q.period, start, end + timedelta(seconds=1))
        factors: dict[date, float] = {}
        if q.adjust != "none" and rows:
            daily = (
                rows
                if q.period == "1d"
                else await asyncio.to_thread(
                    self.client.series, ticker, str(tz), "1d", start - timedelta(days=5), end + timedelta(days=1)
                )
            )
            factors = {_day(b, tz): b.adj_close / b.close for b in daily if b.close}
            if q.adjust == "hfq":
                first = await asyncio.to_thread(self.client.series, ticker, str(tz), "1d", None, None, "max")
                base = next((b.adj_close / b.close for b in first if b.close), 1.0)
                factors = {d: f / base for d, f in factors.items()}
        now_ms = int(now.timestamp() * 1000)
        events: list[Event] = []
        for i, b in enumerate(rows):
            f = factors.get(_day(b, tz), 1.0) if factors else 1.0
            events.append(KlineEvent(symbol=q.symbol, kline=_kline(b, q.period, tz, f, i == len(rows) - 1, now_ms)))
        chosen, cut = q.select(events)
        return HistoryAnswer(
            chosen,
            adjust=q.adjust,
            adjust_source=ADJUST_SOURCE if q.adjust != "none" else "",
            more=cut or (bool(rows) and q.start is None),
        )

    async def _ticks(self, q: HistoryQuery, ticker: str) -> HistoryAnswer:
        now = self.now()
        tz = self._zone(q.symbol)
        day = q.day or now.astimezone(tz).date()
        if day < (now - timedelta(days=REACH_DAYS["1m"])).astimezone(tz).date():
            raise HistoryUnavailable(f"Yahoo keeps 1m bars (分时) for the last {REACH_DAYS['1m']} days only")
        start = datetime(day.year, day.month, day.day, tzinfo=tz)
        rows = await asyncio.to_thread(self.client.series, ticker, str(tz), "1m", start, start + timedelta(days=1))
        bars = [Bar(b.ts_ms, b.open, b.high, b.low, b.close, b.volume) for b in rows if _day(b, tz) == day]
        ticks = candles.ticks(ChartDay(bars=bars, tz=str(tz)), tz, int(now.timestamp() * 1000))
        return HistoryAnswer([TickEvent(symbol=q.symbol, tick=t) for t in ticks])

    async def _quotes(self, q: HistoryQuery, tickers: list[str]) -> HistoryAnswer:
        out: list[Event] = []
        for symbol, ticker in zip(q.symbols, tickers, strict=True):
            day = await asyncio.to_thread(self.client.fetch, ticker, None)
            if not day.bars or day.price is None:
                continue
            tz = ZoneInfo(day.tz) if day.tz else self._zone(symbol)
            when = day.market_time_ms or day.bars[-1].ts_ms
            quote = Quote(
                price=day.price,
                open=day.bars[0].open,
                high=day.day_high or max(b.high for b in day.bars),
                low=day.day_low or min(b.low for b in day.bars),
                prev_close=day.prev_close or 0.0,
                volume=day.day_volume or sum(b.volume for b in day.bars),
                amount=0.0,  # Yahoo sends no turnover
                timestamp=datetime.fromtimestamp(when / 1000, tz).isoformat(timespec="milliseconds"),
            )
            out.append(QuoteEvent(symbol=symbol, quote=quote))
        return HistoryAnswer(out)


def _day(b: AdjBar, tz: Any) -> date:
    return datetime.fromtimestamp(b.ts_ms / 1000, tz).date()


def _kline(b: AdjBar, period: str, tz: Any, f: float, newest: bool, now_ms: int) -> Kline:
    secs = PERIOD_SECONDS[period]
    start = bucket_start_ms(b.ts_ms, secs, tz) if period == "1d" else b.ts_ms
    closed = not newest or bucket_end_ms(start, secs, tz) <= now_ms

    def p(x: float) -> float:
        return round(x * f, 4)

    return Kline(
        period=period,
        open_time=iso_ms(start, tz),
        open=p(b.open),
        high=p(b.high),
        low=p(b.low),
        close=p(b.close),
        volume=b.volume,
        amount=round(b.close * b.volume, 2),  # Yahoo has no turnover: close × volume, as live
        closed=closed,
    )
