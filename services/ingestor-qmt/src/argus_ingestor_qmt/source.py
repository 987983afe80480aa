"""`QmtSource`: follows the wanted streams with xtdata subscriptions and yields Argus events.

xtquant is imported lazily, in a worker thread, only when the source connects and only when no
`xtdata` module was injected (its import makes a network call, and its binaries are Windows-only).
Every blocking xtdata call runs on one worker thread with a timeout; callbacks arrive on QMT's
thread and reach the loop through the coalescing `Mailbox`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import importlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import datetime
from datetime import time as dtime
from functools import partial
from typing import Any

from argus_ingestor import EventQueue, HistoryAnswer, HistoryQuery, HistoryUnavailable, Source, SourceContext, WantedSet
from argus_protocol import BEIJING, Event, Quote, QuoteEvent, TradeEvent, market_of

from . import normalize
from .bars import NATIVE_MS, Sessions, SymbolBars, native_periods
from .history import QmtHistory
from .mailbox import Mailbox
from .markethours import MarketHours
from .options import load_options, parse_session

log = logging.getLogger("argus.qmt")

QMT_MARKETS = frozenset({"SH", "SZ", "BJ", "IF", "SF", "DF", "ZF", "INE", "GF", "HK"})
XTQUANT_MISSING = "xtquant is not installed: pip install argus-ingestor-qmt[qmt] (on Windows, next to MiniQMT)"

SubKey = tuple[str, ...]  # ("whole", market) | ("tick", symbol) | ("bar", symbol, period) | ("l2", symbol)


class QmtSource(Source):
    name = "qmt"

    def __init__(
        self,
        options: dict[str, Any] | None = None,
        *,
        xtdata: Any = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        super().__init__(options)
        self.opts = load_options(self.options)
        self.xt = xtdata
        self.clock = clock or time.time
        self.hours = MarketHours()
        spans = [parse_session(s) for s in self.opts.sessions] or self.hours.a_share_minutes(self._now())
        self.sessions = Sessions(spans, self.opts.session_markets)
        close = dtime.fromisoformat(self.opts.day_close)
        self._day_close_min = close.hour * 60 + close.minute
        self.unsupported = [] if self.opts.level2 else ["trade"]
        self._ctx: SourceContext | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.mailbox: Mailbox | None = None
        self._queue = EventQueue()
        self._executor = self._new_executor()
        self._tasks: list[asyncio.Task[None]] = []
        self._dirty = asyncio.Event()
        self._lost = asyncio.Event()
        self._lost_reason = ""
        self.connected = False
        self._stopping = False
        self.subs: dict[SubKey, Any] = {}
        self._wanted = WantedSet()
        self._streams: dict[str, set[tuple[str, str]]] = {}  # symbol -> wanted (type, period), QMT symbols only
        self._quote_codes: frozenset[str] = frozenset()  # read by the QMT thread: replaced, never mutated
        self._trade_codes: frozenset[str] = frozenset()
        self._bars: dict[str, SymbolBars] = {}
        self._quotes: dict[str, Quote] = {}
        self._halted: dict[str, str] = {}
        self._halted_at: dict[str, int] = {}  # epoch ms of what said so: older news cannot lift it
        self._reported: tuple[str, str | None] | None = None
        self._foreign: set[str] = set()  # wanted symbols of markets QMT does not have
        self._lots: dict[str, int] = {}
        self.callback_errors = 0

    # Source interface ---------------------------------------------------------------------
    async def start(self, ctx: SourceContext) -> None:
        self._ctx = ctx
        self._loop = asyncio.get_running_loop()
        self.mailbox = Mailbox(self._loop, self._drain)
        self._report("down", "connecting to MiniQMT")
        self._tasks = [
            asyncio.create_task(self._supervise(), name="qmt-connect"),
            asyncio.create_task(self._sync_loop(), name="qmt-subscribe"),
            asyncio.create_task(self._roll_loop(), name="qmt-roll"),
        ]

    async def stop(self) -> None:
        self._stopping = True
        if self.mailbox is not None:
            self.mailbox.closed = True
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        self._tasks = []
        if self.connected and self.subs:
            seqs = list(self.subs.values())
            self.subs = {}
            with contextlib.suppress(Exception):
                await self._call(self._unsubscribe_all, seqs, timeout=2.0)
        self.connected = False
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._queue.close()

    def want(self, wanted: WantedSet) -> None:
        self._wanted = wanted
        streams: dict[str, set[tuple[str, str]]] = {}
        for s in wanted.streams:
            if market_of(s.symbol) not in QMT_MARKETS:
                continue
            streams.setdefault(s.symbol, set()).add((s.type, s.period))
        foreign = set(wanted.symbols) - set(streams)
        if self._ctx is not None:
            for symbol in foreign - self._foreign:
                self._ctx.status("down", symbol=symbol, reason=f"market {market_of(symbol)} is not on QMT")
            for symbol in self._foreign - foreign:
                self._ctx.status("live", symbol=symbol)  # not wanted any more: stop repeating `down`
        self._foreign = foreign
        self._streams = streams
        self._quote_codes = frozenset(s for s, st in streams.items() if ("quote", "") in st)
        self._trade_codes = frozenset(s for s, st in streams.items() if ("trade", "") in st)
        for symbol in [s for s in self._bars if s not in streams]:
            del self._bars[symbol]
        for symbol, bars in self._bars.items():
            bars.forget(streams[symbol])
        for symbol in [s for s in self._quotes if s not in self._quote_codes]:
            del self._quotes[symbol]
        for symbol in [s for s in self._halted if s not in streams]:
            self._set_halted(symbol, None)  # nobody watches it now: stop repeating its `halted`
        self._dirty.set()

    def events(self) -> AsyncIterator[list[Event]]:
        return self._queue.batches()

    async def history(self, query: HistoryQuery) -> HistoryAnswer:
        """Bars adjusted by MiniQMT (`dividend_type`), a day's 分时, Level-2 trades, quotes (history.py)."""
        if not self.connected or self.xt is None:
            why = self._reported[1] if self._reported else None
            raise HistoryUnavailable(f"MiniQMT not connected{': ' + why if why else ''}")
        for s in query.symbols:
            if market_of(s) not in QMT_MARKETS:
                raise HistoryUnavailable(f"market {market_of(s)} is not on QMT")
        past = QmtHistory(
            self.xt,
            self._call,
            self.sessions,
            self.hours,
            self._lot,
            self.opts.bar_label,
            self.opts.level2,
            lambda: int(self.clock() * 1000),
        )
        return await past.answer(query)

    # status -------------------------------------------------------------------------------
    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), BEIJING)

    def _report(self, state: str, reason: str | None = None) -> None:
        """Report the connection's state; connected is `live` while a wanted market trades, else `closed`."""
        if state == "live":
            state, reason = self.hours.state({market_of(s) for s in self._streams}, self._now())
        if self._ctx is None or self._reported == (state, reason):
            return
        self._reported = (state, reason)
        self._ctx.status(state, reason=reason, unsupported=self.unsupported)

    def _set_halted(self, symbol: str, reason: str | None, at_ms: int = 0) -> None:
        if self._halted.get(symbol) == reason or self._ctx is None:
            return
        if reason is None:
            del self._halted[symbol]
            self._halted_at.pop(symbol, None)
            self._ctx.status("live", symbol=symbol)
        else:
            self._halted[symbol] = reason
            self._halted_at[symbol] = at_ms
            self._ctx.status("halted", symbol=symbol, reason=reason)

    def _count(self, kind: str) -> None:
        if self._ctx is not None:
            self._ctx.count_error(kind)

    # blocking calls -----------------------------------------------------------------------
    @staticmethod
    def _new_executor() -> concurrent.futures.ThreadPoolExecutor:
        return concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="xtdata")

    async def _call(self, fn: Callable[..., Any], *args: Any, timeout: float | None = None) -> Any:
        """Run one blocking xtdata call on the xtdata thread; a hung MiniQMT costs a thread, not the loop."""
        loop = asyncio.get_running_loop()
        fut = loop.run_in_executor(self._executor, fn, *args)
        try:
            # not wait_for: 3.11's returns a call that failed as stop() cancels, and the cancel is lost
            async with asyncio.timeout(timeout or self.opts.call_timeout):
                return await fut
        except TimeoutError:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = self._new_executor()  # abandon the stuck thread
            raise TimeoutError(
                f"xtdata.{getattr(fn, '__name__', 'call')} took over {timeout or self.opts.call_timeout}s"
            ) from None

    def _import(self) -> Any:
        if self.xt is None:
            name = self.opts.xtdata_module or "xtquant.xtdata"
            try:
                self.xt = importlib.import_module(name)
            except ImportError as e:
                if not self.opts.xtdata_module:
                    raise ImportError(XTQUANT_MISSING) from e
                raise
        return self.xt

    def _connect(self) -> None:
        xt = self._import()
        if hasattr(xt, "enable_hello"):
            xt.enable_hello = False  # no banner on stdout
        watch = getattr(xt, "watch_xtquant_status", None)
        if watch is not None:  # before connect: xtquant hands it to the connection it is about to make
            watch(self._guard(self._on_xt_status))
        xt.connect(self.opts.host, self.opts.port or None)

    def _probe(self) -> None:
        self.xt.get_full_tick([self.opts.probe_symbol])

    def _unsubscribe_all(self, seqs: list[Any]) -> None:
        for seq in seqs:
            with contextlib.suppress(Exception):
                self.xt.unsubscribe_quote(seq)

    # connection supervision ---------------------------------------------------------------
    async def _supervise(self) -> None:
        delay = self.opts.backoff_initial
        while True:
            self._lost = asyncio.Event()
            try:
                await self._call(self._connect)
            except Exception as e:  # noqa: BLE001 - any failure to reach MiniQMT: report, back off, retry
                reason = f"MiniQMT not reachable: {_describe(e)}"
                log.warning("qmt connect failed", extra={"reason": reason, "retry_in": delay})
                self._report("down", reason)
                self._count("connect")
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.opts.backoff_max)
                continue
            delay = self.opts.backoff_initial
            self.subs = {}  # a (re)connected MiniQMT holds none of our subscriptions
            self.connected = True
            log.info("qmt connected", extra={"host": self.opts.host or "local", "port": self.opts.port or "auto"})
            self._report("live")
            self._dirty.set()
            reason = await self._watch()
            self.connected = False
            self.subs = {}
            log.warning("qmt connection lost", extra={"reason": reason})
            self._report("down", reason)
            self._count("disconnect")
            await asyncio.sleep(self.opts.backoff_initial)

    async def _watch(self) -> str:
        """Returns why the connection is considered lost."""
        while True:
            with contextlib.suppress(TimeoutError):  # not wait_for: it can swallow stop()'s cancel
                async with asyncio.timeout(self.opts.health_interval):
                    await self._lost.wait()
                    return self._lost_reason
            try:
                await self._call(self._probe)
            except Exception as e:  # noqa: BLE001
                return f"MiniQMT not answering: {_describe(e)}"

    def _mark_lost(self, reason: str) -> None:
        self._lost_reason = reason
        self._lost.set()

    # subscriptions ------------------------------------------------------------------------
    def _desired(self) -> dict[SubKey, Any]:
        out: dict[SubKey, Any] = {}
        quotes = sorted(self._quote_codes)
        if len(quotes) > self.opts.whole_quote_threshold:
            for market in sorted({market_of(s) for s in quotes}):
                out[("whole", market)] = None
        else:
            for s in quotes:
                out[("tick", s)] = None
        for symbol, streams in self._streams.items():
            for period in native_periods(streams):
                out[("bar", symbol, period)] = None
            if self.opts.level2 and ("trade", "") in streams:
                out[("l2", symbol)] = None
        return out

    async def _sync_loop(self) -> None:
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            if not self.connected:
                continue
            try:
                await self._sync()
            except Exception as e:  # noqa: BLE001 - retried; a dead MiniQMT is the watcher's business
                log.warning("qmt subscribe failed", extra={"error": _describe(e)})
                self._count("subscribe")
                assert self._loop is not None
                self._loop.call_later(self.opts.backoff_initial, self._dirty.set)

    async def _sync(self) -> None:
        desired = self._desired()
        for key in [k for k in self.subs if k not in desired]:
            seq = self.subs.pop(key)
            await self._call(self._unsubscribe_all, [seq])
        fresh_ticks: list[str] = []
        for key in [k for k in desired if k not in self.subs]:
            if not self.connected or self._dirty.is_set():
                return  # lost, or the wanted set moved on: the next round starts from scratch
            self.subs[key] = await self._call(self._subscribe, key)
            if key[0] == "tick":
                fresh_ticks.append(key[1])
            elif key[0] == "bar":
                await self._backfill(key[1], key[2])
        if fresh_ticks:  # per-code tick subscriptions push on change only: fetch the current snapshot
            ticks = await self._call(self.xt.get_full_tick, fresh_ticks)
            if ticks and self.mailbox is not None:
                self.mailbox.post_quotes((c, r) for c, r in ticks.items() if c in self._quote_codes)

    def _subscribe(self, key: SubKey) -> Any:
        xt = self.xt
        kind = key[0]
        if kind == "whole":
            seq = xt.subscribe_whole_quote([key[1]], callback=self._guard(self._on_quotes))
        elif kind == "tick":
            seq = xt.subscribe_quote(key[1], period="tick", count=0, callback=self._guard(self._on_quotes))
        elif kind == "bar":
            period = key[2]
            cb = self._guard(lambda datas: self._on_bars(period, datas))
            seq = xt.subscribe_quote(key[1], period=period, count=0, callback=cb)
        else:
            seq = xt.subscribe_quote(key[1], period="l2transaction", count=0, callback=self._guard(self._on_l2))
        if isinstance(seq, int) and seq < 0:
            raise RuntimeError(f"xtdata refused the subscription {key} ({seq})")
        return seq

    async def _backfill(self, symbol: str, period: str) -> None:
        """Today's bars, so 分时's VWAP and 15/30/60m bars are right from the first event."""
        count = self.opts.bars_history if period == "1m" else 2
        get = getattr(self.xt, "get_market_data_ex", None)
        if get is None:
            return
        try:
            data = await self._call(lambda: get([], [symbol], period=period, count=count))
        except Exception as e:  # noqa: BLE001 - history is a nicety; live bars still flow
            log.info("qmt bar history unavailable", extra={"symbol": symbol, "period": period, "error": _describe(e)})
            self._count("history")
            return
        frame = data.get(symbol) if isinstance(data, Mapping) else None
        if frame is None:
            return
        rows = frame.to_dict("records") if hasattr(frame, "to_dict") else list(frame)
        if rows and self.mailbox is not None:
            self.mailbox.post_bars(period, symbol, rows)

    # callbacks: QMT's thread -------------------------------------------------------------
    def _guard(self, fn: Callable[[Any], None]) -> Callable[[Any], None]:
        """QMT swallows callback exceptions; catch, count and log ours."""

        def callback(datas: Any) -> None:
            if self._stopping:
                return
            try:
                fn(datas)
            except Exception:
                self.callback_errors += 1
                self._count("callback")
                if self.callback_errors == 1 or self.callback_errors % 1000 == 0:
                    log.exception("qmt callback failed", extra={"errors": self.callback_errors})

        return callback

    def _on_xt_status(self, info: Any) -> None:
        if isinstance(info, Mapping) and info.get("status") == "disconnected" and self._loop is not None:
            reason = f"MiniQMT disconnected ({info.get('address', '?')})"
            self._loop.call_soon_threadsafe(self._mark_lost, reason)

    def _on_quotes(self, datas: Mapping[str, Any]) -> None:
        assert self.mailbox is not None
        codes = self._quote_codes
        items = [(c, r[-1] if isinstance(r, list) else r) for c, r in datas.items() if c in codes and r]
        if items:
            self.mailbox.post_quotes(items)

    def _on_bars(self, period: str, datas: Mapping[str, Any]) -> None:
        assert self.mailbox is not None
        for code, rows in datas.items():
            self.mailbox.post_bars(period, code, rows if isinstance(rows, list) else [rows])

    def _on_l2(self, datas: Mapping[str, Any]) -> None:
        assert self.mailbox is not None
        codes = self._trade_codes
        for code, rows in datas.items():
            if code in codes:
                self.mailbox.post_trades(code, rows if isinstance(rows, list) else [rows])

    # the loop side ------------------------------------------------------------------------
    def _lot(self, symbol: str) -> int:
        lot = self._lots.get(symbol)
        if lot is None:
            lot = self._lots[symbol] = normalize.lot_size(symbol, self.opts.bond_prefixes)
        return lot

    def _symbol_bars(self, symbol: str) -> SymbolBars:
        sb = self._bars.get(symbol)
        if sb is None:
            sb = self._bars[symbol] = SymbolBars(
                symbol,
                self.sessions,
                self._day_close_min,
                int(self.opts.close_grace * 1000),
                self.opts.bars_history + 10,
                day_end=partial(self.hours.day_end_ms, market_of(symbol)),
            )
        return sb

    def _drain(self) -> None:
        if self.mailbox is None or self._stopping:
            return
        try:
            events = self._convert(*self.mailbox.take())
        except Exception:
            log.exception("qmt drain failed")
            self._count("normalize")
            return
        self._queue.put(events)

    def _convert(
        self,
        quotes: dict[str, Mapping[str, Any]],
        bars: dict[tuple[str, str, Any], Mapping[str, Any]],
        trades: list[tuple[str, Mapping[str, Any]]],
    ) -> list[Event]:
        events: list[Event] = []
        open_minute = self.sessions.sessions[0][0] if self.sessions.sessions else 570
        for symbol, row in quotes.items():
            if symbol not in self._quote_codes:
                continue
            reason = normalize.halt_reason(row, symbol, self.opts.halted_statuses, open_minute)
            if reason is not None:
                self._set_halted(symbol, reason, normalize.row_time_ms(row) or int(self.clock() * 1000))
                continue
            q = normalize.quote(row, self._lot(symbol))
            if q is None:
                continue  # no price yet (pre-open): nothing to say, never zeros
            if symbol in self._halted:
                self._set_halted(symbol, None)
            if self._quotes.get(symbol) != q:
                self._quotes[symbol] = q
                events.append(QuoteEvent(symbol=symbol, quote=q))
        touched: dict[str, dict[str, list[normalize.Bar]]] = {}
        for (symbol, period, _), row in bars.items():
            if symbol not in self._streams or period not in NATIVE_MS:
                continue
            b = normalize.bar(row, NATIVE_MS[period], self._lot(symbol), self.opts.bar_label)
            if b is None:
                continue
            touched.setdefault(symbol, {}).setdefault(period, []).append(b)
        now_ms = int(self.clock() * 1000)
        for symbol, by_period in touched.items():
            sb = self._symbol_bars(symbol)
            for period, items in by_period.items():
                newest = sb.add(period, (b for b in items if not b.suspended and b.close > 0))
                last = max(items, key=lambda b: b.open_ms)
                if last.suspended:
                    self._set_halted(symbol, "suspended: QMT bar suspendFlag 1", last.open_ms)
                elif (
                    newest is not None
                    and newest.volume > 0
                    and symbol in self._halted
                    and symbol not in quotes
                    and newest.open_ms > self._halted_at.get(symbol, 0)
                ):
                    # only a bar that began after the halt was seen says trading resumed; backfilled
                    # history from before it (a reconnect) says nothing about now
                    self._set_halted(symbol, None)
            events.extend(sb.events(self._streams.get(symbol, ()), now_ms))
        for symbol, row in trades:
            if symbol not in self._trade_codes:
                continue
            t = normalize.trade(row, self._lot(symbol))
            if t is not None:
                events.append(TradeEvent(symbol=symbol, trade=t))
        return events

    async def _roll_loop(self) -> None:
        """Close bars whose time is up although QMT sent no newer bar (quiet symbol, session end)."""
        while True:
            await asyncio.sleep(self.opts.roll_interval)
            now_ms = int(self.clock() * 1000)
            events: list[Event] = []
            for symbol, sb in self._bars.items():
                events.extend(sb.events(self._streams.get(symbol, ()), now_ms))
            self._queue.put(events)
            if self.connected:
                self._report("live")  # the calendar may have moved on: live <-> closed


def _describe(e: BaseException) -> str:
    text = str(e).strip()
    return f"{type(e).__name__}: {text}" if text else type(e).__name__
