"""`YahooSource`: streamed quotes and derived trades, polled klines and 分时, for the wanted symbols."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

from argus_ingestor import EventQueue, HistoryAnswer, HistoryQuery, HistoryUnavailable, Source, SourceContext, WantedSet
from argus_protocol import Event, Kline, KlineEvent, Quote, QuoteEvent, Stream, Tick, TickEvent, TradeEvent

from . import candles
from .chart import ChartClient, ChartDay, make_session
from .decode import Pricing
from .history import YahooHistory
from .options import load_options
from .poller import Poller
from .quotes import DERIVED_SOURCE, SymbolTape
from .sessions import MarketClock
from .streamer import Streamer
from .symbols import NotOnYahoo, to_yahoo

log = logging.getLogger("argus.yahoo")

Clock = Callable[[], datetime]

STREAMED = ("quote", "trade")  # from the WebSocket
POLLED = ("kline", "tick")  # from the chart


def utc_now() -> datetime:
    return datetime.now(UTC)


class YahooSource(Source):
    name = "yahoo"

    def __init__(self, options: dict[str, Any] | None = None, *, clock: Clock | None = None) -> None:
        super().__init__(options)
        self.opts = load_options(self.options)
        self.clock: Clock = clock or utc_now
        try:
            self.calendar = MarketClock(
                {m: (mo.tz, mo.sessions) for m, mo in self.opts.markets.items()}, always=self.opts.schedule == "always"
            )
        except (KeyError, ValueError) as e:
            raise ValueError(f"markets: unknown time zone {e}") from None
        self._seeding: dict[str, float] = {}  # symbol -> monotonic time its day fields were asked of the chart
        self._held: set[str] = set()  # quotes waiting for those day fields (never published with zeros)
        self._sent: dict[str, Quote] = {}  # the last quote published per symbol
        self._connected = False
        self._reported: tuple[str, str | None] | None = None
        self._ctx: SourceContext | None = None
        self._queue = EventQueue()
        self._wanted = WantedSet()
        self._tickers: dict[str, str] = {}  # Yahoo ticker (upper case) -> canonical symbol
        self._tapes: dict[str, SymbolTape] = {}
        self._published: dict[tuple[str, str], dict[str, Kline | Tick]] = {}  # (symbol, stream) -> time -> payload
        self._last_price: dict[str, float] = {}  # symbol -> monotonic time of its last price, or of subscribing
        self._stale: set[str] = set()
        self._unsupported: set[str] = set()
        self.streamer: Streamer | None = None
        self.poller: Poller | None = None
        self._watchdog: asyncio.Task[None] | None = None
        self._disconnected_since: float | None = None
        self._past: YahooHistory | None = None

    # Source interface ---------------------------------------------------------------------
    async def start(self, ctx: SourceContext) -> None:
        self._ctx = ctx
        o = self.opts
        self.streamer = Streamer(
            o.ws_url,
            self._on_pricing,
            self._on_stream_state,
            ctx.count_error,
            resubscribe_interval=o.resubscribe_interval,
            heartbeat=o.heartbeat,
            backoff_initial=o.backoff_initial,
            backoff_max=o.backoff_max,
        )
        client = ChartClient(make_session(o.chart_url, o.cache_dir), o.poll_timeout)
        # history asks the chart API on a client of its own: the poller's stays the poller's
        self._past = YahooHistory(ChartClient(client.session, o.poll_timeout), self.calendar.tz, self.clock)
        self.poller = Poller(
            client, o.poll_interval, o.poll_workers, self._in_session, self._on_chart, self._on_chart_failure
        )
        self.streamer.start()
        self.poller.start()
        self._watchdog = asyncio.create_task(self._watch_stale(), name="yahoo-stale")
        self._follow()

    async def stop(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watchdog
        if self.streamer is not None:
            await self.streamer.stop()
        if self.poller is not None:
            await self.poller.stop()
        self._queue.close()

    def want(self, wanted: WantedSet) -> None:
        self._wanted = wanted
        self._follow()

    def events(self) -> AsyncIterator[list[Event]]:
        return self._queue.batches()

    async def history(self, query: HistoryQuery) -> HistoryAnswer:
        """Bars (adjusted by Yahoo's adjusted close), a day's 分时, quotes (history.py)."""
        if self._past is None:
            raise HistoryUnavailable("Yahoo source not started")
        return await self._past.answer(query)

    # demand -------------------------------------------------------------------------------
    def _follow(self) -> None:
        if self.streamer is None or self.poller is None:
            return  # start() applies the wanted set
        wanted = self._wanted
        tickers: dict[str, str] = {}
        for symbol in wanted.symbols:
            try:
                tickers[to_yahoo(symbol).upper()] = symbol
            except NotOnYahoo as e:
                if symbol not in self._unsupported and self._ctx is not None:
                    self._ctx.status("down", symbol=symbol, reason=str(e))
                self._unsupported.add(symbol)
        for symbol in self._unsupported - wanted.symbols:
            if self._ctx is not None:
                self._ctx.status("live", symbol=symbol)  # nobody asks for it now: drop its repeated `down`
        self._unsupported &= wanted.symbols
        self._tickers = tickers
        by_symbol = {s: t for t, s in tickers.items()}
        streamed = {s for s in by_symbol if wanted.types_for(s) & set(STREAMED)}
        polled = {s for s in by_symbol if wanted.types_for(s) & set(POLLED)}
        now = time.monotonic()
        for s in streamed:
            if s not in self._last_price and wanted.wants("quote", s):
                self._ask_day_fields(s, by_symbol[s])  # so the first quote has its open, high, low, prev close
            self._last_price.setdefault(s, now)  # silence counts from subscribing
        for s in [s for s in self._last_price if s not in streamed]:
            del self._last_price[s]
            self._tapes.pop(s, None)
            self._sent.pop(s, None)
            self._held.discard(s)
            if s in self._stale:
                self._set_stale(s, False)
        for key in [k for k in self._published if not self._stream_wanted(*k)]:
            del self._published[key]
        self.streamer.set_tickers(frozenset(by_symbol[s] for s in streamed))
        self.poller.set_symbols({s: (by_symbol[s], getattr(self.calendar.tz(s), "key", "")) for s in polled})
        self._report_state()

    def _ask_day_fields(self, symbol: str, ticker: str | None = None) -> None:
        """Ask the chart for the day fields a quote lacks, at most once per poll interval."""
        if self.poller is None:
            return
        asked = self._seeding.get(symbol)
        if asked is not None and time.monotonic() - asked < self.opts.poll_interval:
            return
        ticker = ticker or next((t for t, s in self._tickers.items() if s == symbol), None)
        if ticker is None:
            return
        self._seeding[symbol] = time.monotonic()
        self.poller.request(symbol, (ticker, getattr(self.calendar.tz(symbol), "key", "")))

    def _stream_wanted(self, symbol: str, stream: str) -> bool:
        kind, _, period = stream.partition(":")
        return self._wanted.wants(kind, symbol, period)

    def _in_session(self, symbol: str) -> bool:
        return self.calendar.in_session(symbol, self.clock())

    # stream -------------------------------------------------------------------------------
    def _on_pricing(self, p: Pricing) -> None:
        symbol = self._tickers.get(p.id.upper())
        if symbol is None or symbol not in self._last_price:
            return  # not (or no longer) wanted from the stream
        tape = self._tapes.get(symbol)
        if tape is None:
            tape = self._tapes[symbol] = SymbolTape()
        now_ms = int(self.clock().timestamp() * 1000)
        result = tape.apply(p, self.calendar.tz(symbol), now_ms)
        if result is None:
            return
        self._last_price[symbol] = time.monotonic()
        if symbol in self._stale:
            self._set_stale(symbol, False)
        quote, trade, missed = result
        events: list[Event] = []
        if self._wanted.wants("quote", symbol):
            if not tape.complete():
                self._ask_day_fields(symbol)
            if not tape.complete() and symbol in self._seeding:
                self._held.add(symbol)  # published when the chart answers (or fails)
            else:
                self._held.discard(symbol)
                self._sent[symbol] = quote
                events.append(QuoteEvent(symbol=symbol, quote=quote))
        if missed and self._ctx is not None and self._wanted.wants("trade", symbol):
            # the outage's prints folded into one delta: say they are lost (a GAP), invent no trade
            self._queue.lost(self._ctx, Stream("trade", symbol), 1)
        if trade is not None and self._wanted.wants("trade", symbol):
            events.append(TradeEvent(symbol=symbol, source=DERIVED_SOURCE, trade=trade))
        self._queue.put(events)

    def _release(self, symbol: str) -> None:
        """Publish the quote held for day fields, with whatever is known by now."""
        self._held.discard(symbol)
        tape = self._tapes.get(symbol)
        if tape is not None and tape.last is not None and self._sent.get(symbol) != tape.last:
            self._sent[symbol] = tape.last
            self._queue.put([QuoteEvent(symbol=symbol, quote=tape.last)])

    def _on_stream_state(self, connected: bool, reason: str) -> None:
        self._connected = connected
        if not connected:
            for tape in self._tapes.values():
                tape.resync = True  # prints during the outage will show up folded into one delta
        if self._ctx is None:
            return
        if connected:
            self._disconnected_since = None
            self._report_state()
            return
        self._reported = None
        now = time.monotonic()
        if self._disconnected_since is None:
            self._disconnected_since = now
        # a reconnect is routine (`stale`); failing to get back for `stale_after` is an outage (`down`)
        state = "down" if now - self._disconnected_since >= self.opts.stale_after else "stale"
        self._ctx.status(state, reason=f"Yahoo streamer reconnecting: {reason}")

    def _report_state(self) -> None:
        """Connected: `live` while a wanted market takes orders, else `closed` (never `stale` for that)."""
        if self._ctx is None or not self._connected:
            return
        reason = self.calendar.closed_reason(set(self._tickers.values()), self.clock())
        state = ("live", None) if reason is None else ("closed", reason)
        if state != self._reported:
            self._reported = state
            self._ctx.status(state[0], reason=state[1])

    async def _watch_stale(self) -> None:
        """In session, a symbol without a price for `stale_after` seconds is `stale` until one comes."""
        limit = self.opts.stale_after
        while True:
            await asyncio.sleep(min(1.0, limit / 4))
            self._report_state()
            now = time.monotonic()
            for symbol in [s for s in self._held if now - self._seeding.get(s, 0.0) > 2 * self.opts.poll_timeout + 1]:
                self._release(symbol)  # the chart never answered: do not hold the quote forever
            wall = self.clock()
            for symbol, last in list(self._last_price.items()):
                if not self.calendar.in_session(symbol, wall):
                    self._last_price[symbol] = now  # the silence of a closed market does not count
                    if symbol in self._stale:
                        self._set_stale(symbol, False)
                elif now - last >= limit and symbol not in self._stale:
                    self._set_stale(symbol, True)

    def _set_stale(self, symbol: str, stale: bool) -> None:
        if self._ctx is None:
            return
        if stale:
            self._stale.add(symbol)
            reason = f"no price from Yahoo for {self.opts.stale_after:g} s in session"
            self._ctx.status("stale", symbol=symbol, reason=reason)
        else:
            self._stale.discard(symbol)
            self._ctx.status("live", symbol=symbol)

    # chart --------------------------------------------------------------------------------
    def _on_chart(self, symbol: str, day: ChartDay) -> None:
        self.calendar.learn_tz(symbol, day.tz)
        tz = self.calendar.tz(symbol)
        self._seed(symbol, day, tz)
        now = self.clock()
        now_ms = int(now.timestamp() * 1000)
        events: list[Event] = []
        periods = self._wanted.periods_for(symbol)
        if periods and day.bars:
            first_day = datetime.fromtimestamp(day.bars[0].ts_ms / 1000, tz).date().isoformat()
            over = self.calendar.hours(symbol).day_over(now, first_day)
            by_period: dict[str, list[Kline]] = {}
            for k in candles.klines(day, periods, tz, now_ms, over):
                by_period.setdefault(k.period, []).append(k)
            for period, rows in by_period.items():
                for k in self._changed(symbol, f"kline:{period}", rows, lambda k: k.open_time):
                    events.append(KlineEvent(symbol=symbol, kline=k))  # type: ignore[arg-type]
        if self._wanted.wants("tick", symbol) and day.bars:
            for t in self._changed(symbol, "tick", candles.ticks(day, tz, now_ms), lambda t: t.time):
                events.append(TickEvent(symbol=symbol, tick=t))  # type: ignore[arg-type]
        self._queue.put(events)

    def _changed(self, symbol: str, stream: str, rows: list[Any], key: Callable[[Any], str]) -> list[Any]:
        """Rows new or changed since the last poll; a stream's first poll gives its last `bars_backfill`."""
        seen = self._published.get((symbol, stream))
        first = seen is None
        if seen is None:
            seen = self._published[(symbol, stream)] = {}
        out = []
        for i, row in enumerate(rows):
            k = key(row)
            if seen.get(k) != row:
                seen[k] = row
                if not first or i >= len(rows) - self.opts.bars_backfill:
                    out.append(row)
        if len(seen) > 2000:  # a day of minutes is < 1000; drop what an earlier day left
            for k in sorted(seen)[:-1000]:
                del seen[k]
        return out

    def _seed(self, symbol: str, day: ChartDay, tz: Any) -> None:
        """The chart's day fields into the symbol's tape; a quote held for them goes out now."""
        self._seeding.pop(symbol, None)
        if symbol not in self._last_price or not (day.bars or day.market_time_ms):
            return  # not streamed, or the chart says nothing of a day
        bars = day.bars
        ref = bars[0].ts_ms if bars else day.market_time_ms
        assert ref is not None
        chart_day = datetime.fromtimestamp(ref / 1000, tz).date().isoformat()
        high = max([b.high for b in bars] + [day.day_high or 0.0])
        low = min([b.low for b in bars] + ([day.day_low] if day.day_low else [])) if bars or day.day_low else 0.0
        close = day.price or (bars[-1].close if bars else 0.0)
        tape = self._tapes.setdefault(symbol, SymbolTape())
        tape.seed(chart_day, bars[0].open if bars else 0.0, high, low, day.prev_close or 0.0, close)
        if self._wanted.wants("quote", symbol) and (symbol in self._held or symbol in self._sent):
            self._release(symbol)

    def _on_chart_failure(self, symbol: str, e: BaseException) -> None:
        if self._seeding.pop(symbol, None) is not None and symbol in self._held:
            self._release(symbol)  # no day fields to wait for: the quote goes out with what the stream said
        if self._ctx is not None:
            self._ctx.count_error("chart")
        log.warning("yahoo chart request failed", extra={"symbol": symbol, "error": repr(e)[:300]})
