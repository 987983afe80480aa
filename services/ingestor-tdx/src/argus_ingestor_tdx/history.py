"""Deep history from TDX through pytdx: bars paged back with `get_security_bars` (800 a page),
前复权/后复权 from `get_xdxr_info` (adjust.py), a day's 分时 (`get_minute_time_data` today,
`get_history_minute_time_data` before), a day's transactions paged back (`get_transaction_data` /
`get_history_transaction_data`, 2,000 a page), and quotes. Rows are normalized by convert.py, as
live events are; trade ids are the live ones (`YYYYMMDD-index` from the day's first transaction).
Each request runs whole on one worker's connection (workers.py), failing over like live polls.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta
from functools import partial
from typing import Any

from argus_ingestor import HistoryAnswer, HistoryQuery, HistoryUnavailable
from argus_protocol import Event, KlineEvent, QuoteEvent, TickEvent, TradeEvent, event_time

from . import adjust, convert, fetch
from .calendar import TradingSchedule
from .client import Row, TdxConnection
from .instruments import BAR_CATEGORIES, NotOnTdx, PriceScale, from_tdx, to_tdx
from .trades import TradeTracker
from .workers import NoHostAnswered, WorkerPool

BARS_PAGE = 800  # TDX's page limit for get_security_bars
MAX_BAR_PAGES = 40  # 32,000 bars back at most per request
DAILY = BAR_CATEGORIES["1d"]
ADJUST_SOURCE = "tdx get_xdxr_info (除权除息)"


def bar_pages(
    conn: TdxConnection,
    category: int,
    market: int,
    code: str,
    enough: Callable[[list[Row]], bool],
) -> tuple[list[Row], bool]:
    """Pages of bars from the newest back until `enough(rows)`; (rows oldest first, TDX has older ones)."""
    rows: list[Row] = []
    offset = 0
    for _ in range(MAX_BAR_PAGES):
        page = conn.bars(category, market, code, offset, BARS_PAGE)
        rows = page + rows
        offset += len(page)
        if len(page) < BARS_PAGE:
            return rows, False
        if enough(rows):
            return rows, True
    return rows, True


def bars(
    conn: TdxConnection, category: int, market: int, code: str, q: HistoryQuery, probe: tuple[int, str]
) -> tuple[list[Row], bool, list[Row]]:
    """(rows of the query's bars, older exist, the xdxr records when adjusting)."""

    def inside(rows: list[Row]) -> list[Row]:
        return [r for r in rows if q.within(convert.bar_open_time(r, q.period))]

    def enough(rows: list[Row]) -> bool:
        oldest = convert.bar_open_time(rows[0], q.period)
        return len(inside(rows)) >= q.limit or (q.start is not None and oldest < q.start)

    rows, older = bar_pages(conn, category, market, code, enough)
    if not rows and not conn.quotes([(market, code)]):
        if not conn.quotes([probe]):
            raise fetch.EmptyAnswer("empty bars and quote answers")
        return [], False, []
    chosen = inside(rows)
    older = older or len(chosen) > q.limit
    chosen = chosen[-q.limit :]
    xdxr = conn.xdxr(market, code) if q.adjust != "none" and chosen else []
    return chosen, older, xdxr


def daily_closes(conn: TdxConnection, market: int, code: str, since: date) -> list[tuple[date, float]]:
    """Daily closes from `since` (or as far back as TDX has) to today, oldest first."""

    def enough(rows: list[Row]) -> bool:
        r = rows[0]
        return date(r["year"], r["month"], r["day"]) < since

    rows, _ = bar_pages(conn, DAILY, market, code, enough)
    return [(date(r["year"], r["month"], r["day"]), float(r["close"])) for r in rows]


def day_minutes(conn: TdxConnection, market: int, code: str, day: date | None) -> list[Row]:
    if day is None:
        return conn.minutes(market, code)
    return conn.history_minutes(market, code, int(day.strftime("%Y%m%d")))


def day_transactions(conn: TdxConnection, market: int, code: str, day: date | None) -> list[Row]:
    """Every transaction of the day (today's when `day` is None), oldest first."""
    rows: list[Row] = []
    stamp = int(day.strftime("%Y%m%d")) if day is not None else 0
    for _ in range(fetch.MAX_DAY_PAGES):
        if day is None:
            page = conn.transactions(market, code, len(rows), fetch.MAX_TRANSACTIONS)
        else:
            page = conn.history_transactions(market, code, len(rows), fetch.MAX_TRANSACTIONS, stamp)
        rows = page + rows
        if len(page) < fetch.MAX_TRANSACTIONS:
            break
    return rows


class TdxHistory:
    def __init__(
        self,
        pool: WorkerPool,
        scale: PriceScale,
        schedule: TradingSchedule,
        probe: tuple[int, str],
        now: Callable[[], datetime],
        bar_over: Callable[[Row, str, datetime], bool],
    ) -> None:
        self.pool = pool
        self.scale = scale
        self.schedule = schedule
        self.probe = probe
        self.now = now
        self.bar_over = bar_over

    async def answer(self, q: HistoryQuery) -> HistoryAnswer:
        try:
            if q.kind == "quote":
                return await self._quotes(q)
            try:
                market, code = to_tdx(q.symbol)
            except NotOnTdx as e:
                raise HistoryUnavailable(str(e)) from None
            if q.kind == "kline":
                return await self._bars(q, market, code)
            if q.kind == "tick":
                return await self._ticks(q, market, code)
            return await self._trades(q, market, code)
        except NoHostAnswered as e:
            raise HistoryUnavailable(f"no TDX host answered: {e.reason}") from None

    async def _bars(self, q: HistoryQuery, market: int, code: str) -> HistoryAnswer:
        if q.period not in BAR_CATEGORIES:
            raise HistoryUnavailable(f"TDX has no {q.period} bars")
        rows, older, xdxr = await self.pool.run(
            partial(bars, category=BAR_CATEGORIES[q.period], market=market, code=code, q=q, probe=self.probe)
        )
        now = self.now()
        klines = [
            convert.kline(r, q.period, closed=i < len(rows) - 1 or self.bar_over(r, q.period, now))
            for i, r in enumerate(rows)
        ]
        applied, source = "none", ""
        if q.adjust != "none" and klines:
            events = adjust.ex_events(xdxr)
            first_day = datetime.fromisoformat(klines[0].open_time).date()
            needed = [e for e in events if q.adjust == "hfq" or e[0] > first_day]
            rs: list[tuple[date, float]] = []
            if needed:
                since = min(e[0] for e in needed) - timedelta(days=30)
                closes = await self.pool.run(partial(daily_closes, market=market, code=code, since=since))
                rs = adjust.ratios(needed, closes)
            klines = [
                adjust.adjust_bar(k, adjust.factor(datetime.fromisoformat(k.open_time).date(), rs, q.adjust))
                for k in klines
            ]
            applied, source = q.adjust, ADJUST_SOURCE
        events_out: list[Event] = [KlineEvent(symbol=q.symbol, kline=k) for k in klines]
        return HistoryAnswer(events_out, adjust=applied, adjust_source=source, more=older)

    async def _ticks(self, q: HistoryQuery, market: int, code: str) -> HistoryAnswer:
        now = self.now()
        today = self.schedule.session_day(now)
        day = q.day or today
        if day > today:
            return HistoryAnswer([])
        rows = await self.pool.run(partial(day_minutes, market=market, code=code, day=None if day == today else day))
        points = convert.tick_points(rows, self.scale.divisor(market, code), self.scale.decimals(market, code))
        out: list[Event] = []
        for i, point in enumerate(points):
            minute = self.schedule.minute_at(day, i)
            if minute is None:
                break
            closed = i < len(points) - 1 or minute + timedelta(minutes=1) <= now or self.schedule.day_over(day, now)
            out.append(TickEvent(symbol=q.symbol, tick=convert.tick(minute, point, closed)))
        return HistoryAnswer(out)

    async def _trades(self, q: HistoryQuery, market: int, code: str) -> HistoryAnswer:
        today = self.schedule.session_day(self.now())
        day = q.end.astimezone(q.tz).date() if q.end is not None else today
        day = min(day, today)
        rows = await self.pool.run(
            partial(day_transactions, market=market, code=code, day=None if day == today else day)
        )
        ids = TradeTracker(day, len(rows), [])
        div, dec = self.scale.divisor(market, code), self.scale.decimals(market, code)
        trades: list[Event] = [
            TradeEvent(symbol=q.symbol, trade=convert.trade(r, day, div, dec, ids.trade_id(i)))
            for i, r in enumerate(rows)
        ]
        chosen, cut = q.select(trades)
        return HistoryAnswer(chosen, more=cut or (bool(chosen) and event_time(chosen[0]) > event_time(trades[0])))

    async def _quotes(self, q: HistoryQuery) -> HistoryAnswer:
        stocks: dict[tuple[int, str], str] = {}
        for s in q.symbols:
            try:
                stocks[to_tdx(s)] = s
            except NotOnTdx:
                continue
        if not stocks:
            raise HistoryUnavailable("TDX serves SZ, SH and BJ only")
        keys = list(stocks)
        now = self.now()
        day = self.schedule.session_day(now)
        out: list[Event] = []
        for i in range(0, len(keys), 80):
            rows: list[dict[str, Any]] = await self.pool.run(
                partial(fetch.quotes, stocks=keys[i : i + 80], probe=self.probe)
            )
            for row in rows:
                symbol = from_tdx(row["market"], row["code"])
                if symbol not in stocks.values() or convert.is_suspended(row):
                    continue
                market, code = row["market"], row["code"]
                quote = convert.quote(
                    row, self.scale.divisor(market, code), self.scale.decimals(market, code), day, now
                )
                out.append(QuoteEvent(symbol=symbol, quote=quote))
        return HistoryAnswer(out)
