"""`python -m bench.ablate NAME [flags]`: the gateway (or, for `MOCK_ABLATIONS`, the mock) with
one technique undone.

Each ablation swaps one function for the naive version a first implementation would have, so
`make bench ABLATE=NAME` measures what the technique buys against the same stack and load. The
production code carries no switches for this; the swaps live here and touch nothing else.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from argus_gateway import __main__ as gateway_main
from argus_gateway import fanout, server, session
from argus_gateway.dataframe import EventFrames
from argus_gateway.recall import entry_of
from argus_gateway.topic import Topic
from argus_ingestor_mock import __main__ as mock_main
from argus_ingestor_mock.market import VOLUME_ROWS, book_levels, local_iso
from argus_ingestor_mock.source import MockSource
from argus_protocol import BEIJING, Event, KlineEvent, Quote, QuoteEvent, TickEvent, TradeEvent, decode_event
from argus_service import natswire, process
from nats.protocol.parser import Parser


def per_frame_writes() -> None:
    """One transport write per frame instead of one per session per loop turn."""

    def flush(self: session.Session) -> tuple[int, int]:
        self.dirty = False
        t = self.transport
        frames = self.pending
        if self.closed or t is None or t.is_closing() or not frames:
            self._clear()
            return 0, 0
        for f in frames:
            t.write(f)
        n, nbytes = len(frames), self.size
        self._clear()
        return n, nbytes

    session.Session.flush = flush  # type: ignore[method-assign]


def encode_per_session() -> None:
    """Every session encodes and frames the event itself instead of sharing one frame."""

    def dispatch(self: fanout.Hub, topic: Topic, raw: bytes) -> None:
        self._received += 1
        event = decode_event(raw)
        topic.last_seq = event.seq
        topic.live += 1
        topic.remember(entry_of(event, raw))
        ts = self.clock.now()
        for s in topic.sessions():
            s.push_data(EventFrames(event, raw, ts).get(s.variant), topic)
        if event.ts:
            self._event_ts.append(event.ts)

    fanout.Hub.dispatch = dispatch  # type: ignore[method-assign]


def asyncio_loop() -> None:
    """The standard asyncio event loop instead of uvloop."""
    gateway_main.run = lambda main: process.run(main, use_uvloop=False)  # type: ignore[assignment,misc]


def async_iterator_subscriptions() -> None:
    """nats-py's `async for msg in sub.messages` per subject instead of a callback."""

    def _open(self: fanout.Hub, topic: Topic) -> None:
        async def start() -> None:
            assert self.nc is not None
            sub = await self.nc.subscribe(topic.subject, pending_msgs_limit=200_000, pending_bytes_limit=256 << 20)
            topic.sub = sub
            async for msg in sub.messages:
                self.dispatch(topic, msg.data)

        tasks.add(asyncio.get_running_loop().create_task(start()))

    tasks: set[asyncio.Task[None]] = set()
    fanout.Hub._open = _open  # type: ignore[method-assign]


def subscribe_and_wait() -> None:
    """nats-py's own `await subscribe()` per subject (a flusher round each) instead of subscribe_now."""

    def _open(self: fanout.Hub, topic: Topic) -> None:
        async def on_msg(msg: Any) -> None:
            self.dispatch(topic, msg.data)

        async def start() -> None:
            assert self.nc is not None
            topic.sub = await self.nc.subscribe(topic.subject, cb=on_msg, pending_msgs_limit=200_000)

        tasks.add(asyncio.get_running_loop().create_task(start()))

    tasks: set[asyncio.Task[None]] = set()
    fanout.Hub._open = _open  # type: ignore[method-assign]


def nats_py_parser() -> None:
    """nats-py's parser (a regex and an await per MSG) instead of natswire's fast path."""
    natswire._FastParser.parse = Parser.parse  # type: ignore[method-assign]


def gentle_gather() -> None:
    """Gathering that reaches max_gather at 100 % of a core (as before) instead of at 65 %."""
    fanout.GATHER_SPAN = 0.6


def blind_gather() -> None:
    """Gathering that holds writes however far apart the upstream's bursts come (as before)
    instead of only when more input arrives within the hold."""
    fanout.BURST_GAP_US = 1 << 62  # no gap counts as one: the smoothed gap stays 0


def unchunked_flush() -> None:
    """One pass over every dirty socket per loop turn, however long (no 4 ms flush budget)."""
    original_init: Callable[..., None] = fanout.Hub.__init__

    def __init__(self: fanout.Hub, *args: Any, **kw: Any) -> None:
        original_init(self, *args, **{**kw, "flush_budget": float("inf")})

    fanout.Hub.__init__ = __init__  # type: ignore[method-assign]


def timer_per_connection() -> None:
    """A ping timer per connection (aiohttp's heartbeat kept two) instead of the gateway's one ping
    sweep over every connection: each registered connection re-arms its own `call_later`."""
    register = server.Gateway.register

    def tick(conn: Any, interval: float) -> None:
        if conn.transport.is_closing():
            return
        conn.check_alive(time.monotonic(), interval)
        asyncio.get_running_loop().call_later(interval / 2, tick, conn, interval)

    def timed(self: server.Gateway, conn: Any) -> None:
        register(self, conn)
        interval = self.cfg.server.heartbeat_interval
        asyncio.get_running_loop().call_later(interval / 2, tick, conn, interval)

    async def no_sweep(self: server.Gateway) -> None:
        await asyncio.Event().wait()

    server.Gateway.register = timed  # type: ignore[method-assign]
    server.Gateway._ping_sweep = no_sweep  # type: ignore[method-assign]


def symbol_by_symbol() -> None:
    """The mock stepping each symbol alone (Instrument.step, its bars fed every update) instead of
    the live market's arrays (live.py): the walk, the draws and the events are the same."""

    def update(self: MockSource, symbols: list[str]) -> list[Event]:
        now_ms = int(self.clock() * 1000)
        when = local_iso(now_ms, BEIJING)
        out: list[Event] = []
        for sym in dict.fromkeys(symbols):
            plan = self._plans.get(sym)
            if plan is None:
                continue
            inst = self.instruments[sym]
            quote, trades, tick, periods = plan
            printed = inst.step(now_ms, when, trades)
            klines, ticks = inst.feed(now_ms, printed, periods, tick, sym in self._always_set)
            if quote:
                out.append(QuoteEvent(symbol=sym, source=self.name, quote=inst.quote(when, self.opts.book)))
            out.extend(TradeEvent(symbol=sym, source=self.name, trade=t) for t in printed.trades)
            out.extend(TickEvent(symbol=sym, source=self.name, tick=t) for t in ticks)
            out.extend(KlineEvent(symbol=sym, source=self.name, kline=k) for k in klines)
        return out

    def quotes_only(self: MockSource, symbols: list[str], now_ms: int) -> list[Event]:
        when = local_iso(now_ms, BEIJING)
        book = self.opts.book
        return [QuoteEvent(symbol=s, source=self.name, quote=self.instruments[s].quote(when, book)) for s in symbols]

    MockSource._update = update  # type: ignore[method-assign]
    MockSource._quotes_only = quotes_only  # type: ignore[method-assign]
    MockSource._go_live = MockSource._enter_order  # type: ignore[method-assign]  # in the order, not in live.py
    MockSource._roll_all = lambda self, now_ms: [  # type: ignore[method-assign]
        e for sym in self._order for e in self._roll(sym, now_ms, None)
    ]


def joined_order() -> None:
    """The mock's update order as symbols joined (000001, 000002, ... in successive steps, so a
    client of neighbouring codes gets each in a step of its own) instead of hash order."""

    MockSource._enter_order = lambda self, symbol: self._order.append(symbol)  # type: ignore[method-assign]


def object_quotes() -> None:
    """Every mock quote a QuoteEvent of its own, encoded one at a time by the runner, instead of
    the step's quotes as one QuoteBlock written from its columns (the mock before 2026-12-03)."""

    def quote_events(self: MockSource, slots: Any, symbols: list[str], when: str) -> list[Event]:
        live = self._live
        last, lo, hi, look = live.last[slots], live.lo[slots], live.hi[slots], live.look[slots]
        price, open_, high, low, prev, amount = (
            (a / 100).tolist()
            for a in (last, live.open[slots], live.high[slots], live.low[slots], live.prev[slots], live.amount[slots])
        )
        volume = live.volume[slots].tolist()
        touch = np.maximum(last - (look >> 24), np.maximum(lo, 5))
        inside = ((touch - 4 >= lo) & (touch + 5 <= hi)).tolist()
        out: list[Event] = []
        for i, (sym, b, bits, whole) in enumerate(zip(symbols, touch.tolist(), look.tolist(), inside, strict=True)):
            if not self.opts.book:
                book: tuple[list[float], list[int], list[float], list[int]] = ([], [], [], [])
            elif whole:  # the ladders' shared lists, as the object path had them
                bids, asks = live._ladders.at(b)
                book = (bids, VOLUME_ROWS[bits & 0xFFF], asks, VOLUME_ROWS[bits >> 12 & 0xFFF])
            else:
                book = book_levels(int(last[i]), int(lo[i]), int(hi[i]), bits, live._ladders)
            quote = Quote(
                price=price[i], open=open_[i], high=high[i], low=low[i], prev_close=prev[i], volume=volume[i],
                amount=amount[i], timestamp=when, bid_prices=book[0], bid_volumes=book[1], ask_prices=book[2],
                ask_volumes=book[3],
            )  # fmt: skip
            out.append(QuoteEvent(symbol=sym, source=self.name, quote=quote))
        return out

    MockSource._quote_events = quote_events  # type: ignore[method-assign]


MOCK_ABLATIONS: dict[str, Callable[[], None]] = {
    "symbol-by-symbol": symbol_by_symbol,
    "joined-order": joined_order,
    "object-quotes": object_quotes,
}

ABLATIONS: dict[str, Callable[[], None]] = {
    **MOCK_ABLATIONS,
    "per-frame-writes": per_frame_writes,
    "encode-per-session": encode_per_session,
    "asyncio-loop": asyncio_loop,
    "async-iterator": async_iterator_subscriptions,
    "unchunked-flush": unchunked_flush,
    "subscribe-and-wait": subscribe_and_wait,
    "nats-py-parser": nats_py_parser,
    "gentle-gather": gentle_gather,
    "blind-gather": blind_gather,
    "timer-per-connection": timer_per_connection,
}


def main() -> int:
    name, *argv = sys.argv[1:]
    ABLATIONS[name]()
    return mock_main.main(argv) if name in MOCK_ABLATIONS else gateway_main.main(argv)


if __name__ == "__main__":
    sys.exit(main())
