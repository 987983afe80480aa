"""`TdxSource`: polls TDX servers for exactly the wanted streams and yields Argus events."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable, Sequence
from datetime import date, datetime, timedelta
from functools import partial
from typing import Any

from argus_ingestor import EventQueue, Source, SourceContext, WantedSet
from argus_protocol import BEIJING, PERIOD_SECONDS, Event, Kline, KlineEvent, Quote, QuoteEvent, TickEvent, TradeEvent

from . import convert, fetch
from .calendar import Clock, TradingCalendar, beijing_now
from .hostpool import HostPool
from .instruments import BAR_CATEGORIES, NotOnTdx, PriceScale, from_tdx, to_tdx
from .options import load_options, parse_session
from .trades import TradeTracker
from .workers import NoHostAnswered, WorkerPool

log = logging.getLogger("argus.tdx")

MAX_IDLE_SLEEP = 60.0  # outside sessions: re-check the clock at least this often


class TdxSource(Source):
    name = "tdx"

    def __init__(self, options: dict[str, Any] | None = None, *, clock: Clock | None = None) -> None:
        super().__init__(options)
        self.opts = load_options(self.options)
        self.clock: Clock = clock or beijing_now
        self.calendar = TradingCalendar(
            [parse_session(s) for s in self.opts.sessions],
            [date.fromisoformat(h) for h in self.opts.holidays],
            always=self.opts.schedule == "always",
        )
        self.scale = PriceScale(self.opts.three_decimals)
        try:
            self.probe = to_tdx(self.opts.probe_symbol)
        except ValueError as e:
            raise ValueError(f"probe_symbol: {e}") from None
        self.hosts = HostPool(self.opts.hosts, self.opts.backoff_initial, self.opts.backoff_max)
        self._ctx: SourceContext | None = None
        self._pool: WorkerPool | None = None
        self._queue = EventQueue()
        self._wakers: list[asyncio.Event] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._wanted = WantedSet()
        self._supported: dict[str, tuple[int, str]] = {}
        self._failing: dict[str, tuple[float, str]] = {}  # poll kind -> (since, reason)
        self._halted: set[str] = set()
        self._quotes: dict[str, Quote] = {}
        self._bars: dict[tuple[str, str], dict[str, Kline]] = {}
        self._ticks: dict[str, tuple[date, dict[int, Any]]] = {}
        self._trades: dict[str, TradeTracker] = {}

    # Source interface ---------------------------------------------------------------------
    async def start(self, ctx: SourceContext) -> None:
        self._ctx = ctx
        self._pool = WorkerPool(self.hosts, self.opts.workers, self.opts.timeout, self.probe, ctx.count_error)
        loops: list[tuple[str, float, Callable[[], list[Any]], Callable[[list[Any], bool], Awaitable[None]]]] = [
            ("quotes", self.opts.interval, self._quote_keys, self._poll_quotes),
            ("bars", self.opts.bars_interval, self._bar_keys, self._poll_bars),
            ("minutes", self.opts.minutes_interval, partial(self._symbols_with, "tick"), self._poll_minutes),
            ("trades", self.opts.trades_interval, partial(self._symbols_with, "trade"), self._poll_trades),
        ]
        for kind, interval, keys, poll in loops:
            wake = asyncio.Event()
            self._wakers.append(wake)
            self._tasks.append(asyncio.create_task(self._loop(kind, interval, keys, poll, wake), name=f"tdx-{kind}"))

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        self._tasks = []
        if self._pool is not None:
            self._pool.close()
        self._queue.close()

    def want(self, wanted: WantedSet) -> None:
        self._wanted = wanted
        supported: dict[str, tuple[int, str]] = {}
        for symbol in wanted.symbols:
            try:
                supported[symbol] = to_tdx(symbol)
            except NotOnTdx as e:
                if self._ctx is not None:
                    self._ctx.status("down", symbol=symbol, reason=str(e))
        self._supported = supported
        for state in (self._quotes, self._ticks, self._trades):
            for symbol in [s for s in state if s not in supported]:
                del state[symbol]
        for key in [k for k in self._bars if not wanted.wants("kline", k[0], k[1])]:
            del self._bars[key]
        for symbol in self._halted - set(supported):
            self._set_halted(symbol, False)  # nobody watches it now: drop its repeated `halted` status
        for wake in self._wakers:
            wake.set()

    def events(self) -> AsyncIterator[list[Event]]:
        return self._queue.batches()

    # scheduling ---------------------------------------------------------------------------
    async def _loop(
        self,
        kind: str,
        interval: float,
        keys_of: Callable[[], list[Hashable]],
        poll: Callable[[list[Any], bool], Awaitable[None]],
        wake: asyncio.Event,
    ) -> None:
        """Poll every `interval` in session; outside sessions fetch each new key once, then sleep."""
        fetched: set[Hashable] = set()
        day: date | None = None
        while True:
            wake.clear()
            now = self.clock()
            if now.date() != day:
                day, fetched = now.date(), set()
            in_session = self.calendar.in_session(now)
            keys = keys_of()
            todo = keys if in_session else [k for k in keys if k not in fetched]
            if todo:
                try:
                    await poll(todo, in_session)
                except NoHostAnswered as e:
                    self._failed(kind, e.reason)
                except Exception:  # a bug in one poll must not end the source
                    log.exception("tdx poll failed", extra={"kind": kind})
                    if self._ctx is not None:
                        self._ctx.count_error(f"poll_{kind}")
                else:
                    fetched.update(todo)
                    self._recovered(kind)
            if in_session:
                delay = interval
            else:
                self._report_closed()
                delay = min(MAX_IDLE_SLEEP, max(0.5, (self.calendar.next_open(now) - now).total_seconds()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), delay)

    def _failed(self, kind: str, reason: str) -> None:
        since = self._failing.get(kind, (time.monotonic(), ""))[0]
        self._failing[kind] = (since, reason)
        self._report()

    def _recovered(self, kind: str) -> None:
        if self._failing.pop(kind, None) is not None or not self._failing:
            self._report()

    def _report(self) -> None:
        if self._ctx is None:
            return
        if not self._failing:
            if self.calendar.in_session(self.clock()):
                self._ctx.status("live")
            return
        since = min(s for s, _ in self._failing.values())
        reason = max(self._failing.values())[1]
        state = "down" if time.monotonic() - since >= self.opts.down_after else "stale"
        self._ctx.status(state, reason=f"no TDX host answered: {reason}")

    def _report_closed(self) -> None:
        if self._ctx is not None and not self._failing:
            self._ctx.status("closed", reason="outside trading sessions")

    # keys ---------------------------------------------------------------------------------
    def _symbols_with(self, data_type: str) -> list[str]:
        return sorted(s for s in self._wanted.symbols_with(data_type) if s in self._supported)

    def _quote_keys(self) -> list[str]:
        return self._symbols_with("quote")

    def _bar_keys(self) -> list[tuple[str, str]]:
        return sorted(
            (s, p) for s in self._symbols_with("kline") for p in self._wanted.periods_for(s) if p in BAR_CATEGORIES
        )

    def _session_day(self, now: datetime) -> date:
        """The trading day TDX's intraday data belongs to: before today's open, the previous one."""
        local = now.astimezone(BEIJING)
        d = local.date()
        if self.calendar.always or (self.calendar.is_trading_day(d) and local.time() >= self.calendar.sessions[0][0]):
            return d
        for _ in range(400):
            d -= timedelta(days=1)
            if self.calendar.is_trading_day(d):
                break
        return d

    async def _gather(self, ops: Sequence[Callable[[Any], Any]]) -> list[Any]:
        assert self._pool is not None
        return await asyncio.gather(*(self._pool.run(op) for op in ops), return_exceptions=True)

    @staticmethod
    def _raise_first(results: list[Any]) -> None:
        for r in results:
            if isinstance(r, BaseException):
                raise r

    # quotes -------------------------------------------------------------------------------
    async def _poll_quotes(self, symbols: list[str], in_session: bool) -> None:
        size = self.opts.batch_size
        batches = [symbols[i : i + size] for i in range(0, len(symbols), size)]
        results = await self._gather([partial(fetch.quotes, stocks=[self._supported[s] for s in b]) for b in batches])
        now = self.clock()
        day = self._session_day(now)
        events: list[Event] = []
        for batch, rows in zip(batches, results, strict=True):
            if isinstance(rows, BaseException):
                continue
            asked = set(batch)
            for row in rows:
                symbol = from_tdx(row["market"], row["code"])
                if symbol not in asked:
                    continue
                if convert.is_suspended(row):
                    self._set_halted(symbol, True)
                    continue
                self._set_halted(symbol, False)
                market, code = self._supported[symbol]
                q = convert.quote(row, self.scale.divisor(market, code), self.scale.decimals(market, code), day, now)
                if self._quotes.get(symbol) != q:
                    self._quotes[symbol] = q
                    events.append(QuoteEvent(symbol=symbol, quote=q))
        self._queue.put(events)
        self._raise_first(results)

    def _set_halted(self, symbol: str, halted: bool) -> None:
        if halted == (symbol in self._halted) or self._ctx is None:
            return
        if halted:
            self._halted.add(symbol)
            self._ctx.status("halted", symbol=symbol, reason="suspended: TDX servertime 0/100, no trading")
        else:
            self._halted.discard(symbol)
            self._ctx.status("live", symbol=symbol)

    # bars ---------------------------------------------------------------------------------
    async def _poll_bars(self, keys: list[tuple[str, str]], in_session: bool) -> None:
        ops = []
        for symbol, period in keys:
            market, code = self._supported[symbol]
            ops.append(
                partial(
                    fetch.bars, category=BAR_CATEGORIES[period], market=market, code=code, count=self.opts.bars_count
                )
            )
        results = await self._gather(ops)
        now = self.clock()
        events: list[Event] = []
        for (symbol, period), rows in zip(keys, results, strict=True):
            if isinstance(rows, BaseException):
                continue
            seen = self._bars.setdefault((symbol, period), {})
            for i, row in enumerate(rows):
                k = convert.kline(row, period, closed=i < len(rows) - 1 or self._bar_over(row, period, now))
                if seen.get(k.open_time) != k:
                    seen[k.open_time] = k
                    events.append(KlineEvent(symbol=symbol, kline=k))
            for old in sorted(seen)[: -(self.opts.bars_count + 2)]:
                del seen[old]
        self._queue.put(events)
        self._raise_first(results)

    def _bar_over(self, row: dict[str, Any], period: str, now: datetime) -> bool:
        start = convert.bar_open_time(row, period)
        if period == "1d":
            return start.date() < self._session_day(now) or self.calendar.day_over(now)
        return start + timedelta(seconds=PERIOD_SECONDS[period]) <= now

    # 分时 ---------------------------------------------------------------------------------
    async def _poll_minutes(self, symbols: list[str], in_session: bool) -> None:
        symbols = [s for s in symbols if s not in self._halted]
        results = await self._gather(
            [
                partial(fetch.minutes, market=self._supported[s][0], code=self._supported[s][1], require=in_session)
                for s in symbols
            ]
        )
        now = self.clock()
        day = self._session_day(now)
        events: list[Event] = []
        for symbol, rows in zip(symbols, results, strict=True):
            if isinstance(rows, BaseException) or not rows:
                continue
            market, code = self._supported[symbol]
            points = convert.tick_points(rows, self.scale.divisor(market, code), self.scale.decimals(market, code))
            state = self._ticks.get(symbol)
            first = state is None or state[0] != day
            published: dict[int, Any] = {} if first or state is None else state[1]
            self._ticks[symbol] = (day, published)
            # a new subscriber gets the last closed minute and the forming one, then every change after
            start = max(0, len(points) - 2) if first or not published else min(published)
            for i in range(start, len(points)):
                minute = self.calendar.minute_at(day, i)
                if minute is None:
                    break
                closed = i < len(points) - 1 or minute + timedelta(minutes=1) <= now or self.calendar.day_over(now)
                t = convert.tick(minute, points[i], closed)
                if published.get(i) != t:
                    published[i] = t
                    events.append(TickEvent(symbol=symbol, tick=t))
        self._queue.put(events)
        self._raise_first(results)

    # trades -------------------------------------------------------------------------------
    async def _poll_trades(self, symbols: list[str], in_session: bool) -> None:
        symbols = [s for s in symbols if s not in self._halted]
        day = self._session_day(self.clock())
        ops = []
        for s in symbols:
            tracker = self._trades.get(s)
            market, code = self._supported[s]
            ops.append(
                partial(
                    fetch.transactions,
                    market=market,
                    code=code,
                    count=self.opts.trades_page,
                    count_day=tracker is None or tracker.day != day,
                    require=in_session,
                )
            )
        results = await self._gather(ops)
        events: list[Event] = []
        for symbol, res in zip(symbols, results, strict=True):
            if isinstance(res, BaseException):
                continue
            window, total = res
            new = await self._new_trades(symbol, day, window, total)
            market, code = self._supported[symbol]
            tracker = self._trades[symbol]
            rows, first = new
            div, dec = self.scale.divisor(market, code), self.scale.decimals(market, code)
            for i, row in enumerate(rows):
                events.append(
                    TradeEvent(symbol=symbol, trade=convert.trade(row, day, div, dec, tracker.trade_id(first + i)))
                )
        self._queue.put(events)
        self._raise_first(results)

    async def _new_trades(
        self, symbol: str, day: date, window: list[dict[str, Any]], total: int
    ) -> tuple[list[dict[str, Any]], int]:
        tracker = self._trades.get(symbol)
        if tracker is None or tracker.day != day:
            self._trades[symbol] = TradeTracker(day, total, window)
            backfill = window[-self.opts.trades_backfill :] if self.opts.trades_backfill else []
            return backfill, total - len(backfill)
        step = tracker.advance(window)
        if step is not None:
            return step
        market, code = self._supported[symbol]
        assert self._pool is not None
        wide, total = await self._pool.run(
            partial(
                fetch.transactions,
                market=market,
                code=code,
                count=fetch.MAX_TRANSACTIONS,
                count_day=True,
                require=False,
            )
        )
        if total < tracker.count:  # the server's day restarted: start over without replaying it
            self._trades[symbol] = TradeTracker(day, total, wide)
            return [], total
        new, first, missed = tracker.advance_to(wide, total)
        if missed:
            if self._ctx is not None:
                self._ctx.count_error("trades_gap")
            log.warning("tdx transactions missed", extra={"symbol": symbol, "missed": missed})
        return new, first
