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

from argus_ingestor import EventQueue, HistoryAnswer, HistoryQuery, HistoryUnavailable, Source, SourceContext, WantedSet
from argus_protocol import (
    PERIOD_SECONDS,
    Event,
    Kline,
    KlineEvent,
    Quote,
    QuoteEvent,
    Stream,
    TickEvent,
    TradeEvent,
)

from . import convert, fetch
from .calendar import Clock, TradingSchedule, beijing_now
from .history import TdxHistory
from .hostpool import HostPool
from .instruments import BAR_CATEGORIES, NotOnTdx, PriceScale, from_tdx, to_tdx
from .options import load_options
from .trades import TradeTracker
from .workers import NoHostAnswered, WorkerPool

log = logging.getLogger("argus.tdx")

MAX_IDLE_SLEEP = 60.0  # outside sessions: re-check the clock at least this often
# A symbol's own problems, worst first: what its STATUS says when several apply.
SYMBOL_STATES = ("halted", "down", "stale")


class TdxSource(Source):
    name = "tdx"

    def __init__(self, options: dict[str, Any] | None = None, *, clock: Clock | None = None) -> None:
        super().__init__(options)
        self.opts = load_options(self.options)
        self.clock: Clock = clock or beijing_now
        self.schedule = TradingSchedule(
            [date.fromisoformat(h) for h in self.opts.holidays], always=self.opts.schedule == "always"
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
        self._answered_at = 0.0  # monotonic time of the last poll a host answered
        self._halted: set[str] = set()
        self._problems: dict[str, dict[str, tuple[str, str]]] = {}  # symbol -> what -> (state, reason)
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
                self._note(symbol, "market", ("down", str(e)))
        self._supported = supported
        for state in (self._quotes, self._ticks, self._trades):
            for symbol in [s for s in state if s not in supported]:
                del state[symbol]
        for key in [k for k in self._bars if not wanted.wants("kline", k[0], k[1])]:
            del self._bars[key]
        self._halted &= set(supported)
        for symbol in [s for s in self._problems if s not in wanted.symbols]:
            self._problems[symbol] = {}  # nobody watches it now: drop its repeated status
            self._publish_symbol(symbol)
        for symbol, problems in list(self._problems.items()):
            for what in [w for w in problems if w.startswith("kline ") and w[6:] not in wanted.periods_for(symbol)]:
                self._note(symbol, what, None)
        for wake in self._wakers:
            wake.set()

    def events(self) -> AsyncIterator[list[Event]]:
        return self._queue.batches()

    async def history(self, query: HistoryQuery) -> HistoryAnswer:
        """Deep bars (adjusted from 除权除息), a day's 分时, a day's transactions, quotes (history.py)."""
        if self._pool is None:
            raise HistoryUnavailable("TDX source not started")
        past = TdxHistory(self._pool, self.scale, self.schedule, self.probe, self.clock, self._bar_over)
        return await past.answer(query)

    # scheduling ---------------------------------------------------------------------------
    async def _loop(
        self,
        kind: str,
        interval: float,
        keys_of: Callable[[], list[Hashable]],
        poll: Callable[[list[Any], bool], Awaitable[None]],
        wake: asyncio.Event,
    ) -> None:
        """Poll every `interval` while the exchange is active; outside, fetch each new key once (and
        everything once more just after a session ends, so the last bars close), then sleep."""
        fetched: set[Hashable] = set()
        day: date | None = None
        was_active = False
        while True:
            wake.clear()
            now = self.clock()
            in_session = self.schedule.active(now)
            if self.schedule.session_day(now) != day or (was_active and not in_session):
                day, fetched = self.schedule.session_day(now), set()
            was_active = in_session
            keys = keys_of()
            todo = keys if in_session else [k for k in keys if k not in fetched]
            if todo:
                started = time.monotonic()
                try:
                    await poll(todo, in_session)
                except NoHostAnswered as e:
                    self._failed(kind, e.reason, started)
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
                self._report()
                delay = min(MAX_IDLE_SLEEP, max(0.5, (self.schedule.next_active(now) - now).total_seconds()))
            # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancel that lands as
            # `wake` fires (want() right before stop()), and stop() would then wait forever
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await wake.wait()

    def _failed(self, kind: str, reason: str, started: float) -> None:
        if started < self._answered_at:
            return  # began before a host last answered: news of an outage that is already over
        since = self._failing.get(kind, (time.monotonic(), ""))[0]
        self._failing[kind] = (since, reason)
        self._report()

    def _recovered(self, kind: str) -> None:
        # A host answered: the outage is over for every kind (the others re-fail on their own if
        # need be); re-reporting their old failures would send a `down` at the moment of recovery.
        self._answered_at = time.monotonic()
        self._failing.clear()
        self._report()

    def _report(self) -> None:
        if self._ctx is None:
            return
        if self._failing:
            since = min(s for s, _ in self._failing.values())
            reason = max(self._failing.values())[1]
            state = "down" if time.monotonic() - since >= self.opts.down_after else "stale"
            self._ctx.status(state, reason=f"no TDX host answered: {reason}")
            return
        now = self.clock()
        if self.schedule.active(now):
            self._ctx.status("live")
        else:
            self._ctx.status("closed", reason=self.schedule.closed_reason(now))

    def _note(self, symbol: str, what: str, problem: tuple[str, str] | None) -> None:
        """Record (or clear) one problem of one symbol, e.g. `kline 1m`: no bars; STATUS on change."""
        problems = self._problems.setdefault(symbol, {})
        if problems.get(what) == problem:
            if not problems and problem is None:
                del self._problems[symbol]
            return
        if problem is None:
            del problems[what]
        else:
            problems[what] = problem
        self._publish_symbol(symbol)

    def _publish_symbol(self, symbol: str) -> None:
        problems = self._problems.get(symbol) or {}
        if not problems:
            self._problems.pop(symbol, None)
            if self._ctx is not None:
                self._ctx.status("live", symbol=symbol)
            return
        ranked = sorted(problems.values(), key=lambda p: SYMBOL_STATES.index(p[0]))
        if self._ctx is not None:
            self._ctx.status(ranked[0][0], symbol=symbol, reason="; ".join(r for _, r in ranked))

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
        return self.schedule.session_day(now)

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
        results = await self._gather(
            [partial(fetch.quotes, stocks=[self._supported[s] for s in b], probe=self.probe) for b in batches]
        )
        now = self.clock()
        day = self._session_day(now)
        events: list[Event] = []
        for batch, rows in zip(batches, results, strict=True):
            if isinstance(rows, BaseException):
                continue
            asked = set(batch)
            answered = set()
            for row in rows:
                symbol = from_tdx(row["market"], row["code"])
                if symbol not in asked:
                    continue
                answered.add(symbol)
                if convert.is_suspended(row):
                    self._set_halted(symbol, True)
                    continue
                self._set_halted(symbol, False)
                market, code = self._supported[symbol]
                q = convert.quote(row, self.scale.divisor(market, code), self.scale.decimals(market, code), day, now)
                if self._quotes.get(symbol) != q:
                    self._quotes[symbol] = q
                    events.append(QuoteEvent(symbol=symbol, quote=q))
            for symbol in asked:
                self._note(symbol, "quote", None if symbol in answered else ("down", "TDX has no quote for this code"))
        self._queue.put(events)
        self._raise_first(results)

    def _set_halted(self, symbol: str, halted: bool) -> None:
        if halted == (symbol in self._halted):
            return
        if halted:
            self._halted.add(symbol)
            self._note(symbol, "halt", ("halted", "suspended: TDX servertime 0/100, no trading"))
        else:
            self._halted.discard(symbol)
            self._note(symbol, "halt", None)

    # bars ---------------------------------------------------------------------------------
    async def _poll_bars(self, keys: list[tuple[str, str]], in_session: bool) -> None:
        ops = []
        for symbol, period in keys:
            market, code = self._supported[symbol]
            ops.append(
                partial(
                    fetch.bars,
                    category=BAR_CATEGORIES[period],
                    market=market,
                    code=code,
                    count=self.opts.bars_count,
                    probe=self.probe,
                )
            )
        results = await self._gather(ops)
        now = self.clock()
        events: list[Event] = []
        for (symbol, period), rows in zip(keys, results, strict=True):
            if isinstance(rows, BaseException):
                continue
            if not rows:  # the host answers the probe: this symbol has no bars (yet), its problem alone
                why = "TDX has no such code" if rows is None else f"no {period} bars from TDX yet"
                self._note(symbol, f"kline {period}", ("down" if rows is None else "stale", why))
                continue
            self._note(symbol, f"kline {period}", None)
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
        if period == "1d":  # closed once its own day's closing auction is over, not at the next open
            return self.schedule.day_over(start.date(), now)
        return start + timedelta(seconds=PERIOD_SECONDS[period]) <= now

    # 分时 ---------------------------------------------------------------------------------
    async def _poll_minutes(self, symbols: list[str], in_session: bool) -> None:
        symbols = [s for s in symbols if s not in self._halted]
        results = await self._gather(
            [
                partial(
                    fetch.minutes,
                    market=self._supported[s][0],
                    code=self._supported[s][1],
                    require=in_session,
                    probe=self.probe,
                )
                for s in symbols
            ]
        )
        now = self.clock()
        day = self._session_day(now)
        events: list[Event] = []
        for symbol, rows in zip(symbols, results, strict=True):
            if isinstance(rows, BaseException):
                continue
            self._note(symbol, "code", ("down", "TDX has no such code") if rows is None else None)
            if not rows:
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
                minute = self.schedule.minute_at(day, i)
                if minute is None:
                    break
                closed = i < len(points) - 1 or minute + timedelta(minutes=1) <= now or self.schedule.day_over(day, now)
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
                    probe=self.probe,
                )
            )
        results = await self._gather(ops)
        events: list[Event] = []
        for symbol, res in zip(symbols, results, strict=True):
            if isinstance(res, BaseException):
                continue
            self._note(symbol, "code", ("down", "TDX has no such code") if res is None else None)
            if res is None:
                continue
            window, total = res
            rows, first, missed = await self._new_trades(symbol, day, window, total)
            if missed and self._ctx is not None:  # transactions TDX no longer pages back to: a GAP, not silence
                self._queue.put(events)
                events = []
                self._queue.lost(self._ctx, Stream("trade", symbol), missed)
            market, code = self._supported[symbol]
            tracker = self._trades[symbol]
            div, dec = self.scale.divisor(market, code), self.scale.decimals(market, code)
            for i, row in enumerate(rows):
                events.append(
                    TradeEvent(symbol=symbol, trade=convert.trade(row, day, div, dec, tracker.trade_id(first + i)))
                )
        self._queue.put(events)
        self._raise_first(results)

    async def _new_trades(
        self, symbol: str, day: date, window: list[dict[str, Any]], total: int
    ) -> tuple[list[dict[str, Any]], int, int]:
        """(new rows, index of the first, how many were missed before them)."""
        tracker = self._trades.get(symbol)
        if tracker is None or tracker.day != day:
            self._trades[symbol] = TradeTracker(day, total, window)
            backfill = window[-self.opts.trades_backfill :] if self.opts.trades_backfill else []
            return backfill, total - len(backfill), 0
        step = tracker.advance(window)
        if step is not None:
            return (*step, 0)
        market, code = self._supported[symbol]
        assert self._pool is not None
        answer = await self._pool.run(
            partial(
                fetch.transactions,
                market=market,
                code=code,
                count=fetch.MAX_TRANSACTIONS,
                count_day=True,
                require=False,
                probe=self.probe,
            )
        )
        assert answer is not None  # require=False never asks whether the code exists
        wide, total = answer
        if total < tracker.count:  # the server's day restarted: start over without replaying it
            self._trades[symbol] = TradeTracker(day, total, wide)
            return [], total, 0
        new, first, missed = tracker.advance_to(wide, total)
        if missed:
            if self._ctx is not None:
                self._ctx.count_error("trades_gap")
            log.warning("tdx transactions missed", extra={"symbol": symbol, "missed": missed})
        return new, first, missed
