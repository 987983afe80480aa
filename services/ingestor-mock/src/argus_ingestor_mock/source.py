"""The mock market as an Argus Source: every wanted symbol plus an always-on universe.

Always-on symbols publish quotes all the time (keeping the last-value cache warm); every other
stream is published while somebody wants it. Prices and cumulative volume advance for every
symbol alike; bars and 分时 are built only while wanted (they cost most), so a kline stream joined
mid-bar starts with a partial bar.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from argus_ingestor import Source, SourceContext, WantedSet
from argus_protocol import BEIJING, Event, KlineEvent, QuoteEvent, TickEvent, TradeEvent

from .market import Instrument, local_iso
from .schedule import SCHEDULES, is_open

ALWAYS = ("000001.SZ", "600000.SH")
STEPS_PER_SECOND = 50  # how finely a second is sliced, so updates spread rather than burst


def universe_symbols(n: int) -> list[str]:
    return [f"{i:06d}.SZ" for i in range(1, n + 1)]


class MockOptions:
    def __init__(self, options: dict[str, Any]) -> None:
        interval = float(options.get("update_interval", 1.0))
        rate = options.get("rate")
        self.rate = float(rate) if rate not in (None, "") else 1.0 / interval
        self.universe = int(options.get("universe", 10))
        seed = options.get("seed")
        self.seed = int(seed) if seed not in (None, "") else None
        self.schedule = str(options.get("schedule", "always"))
        if not self.rate > 0:
            raise ValueError(f"rate: must be > 0, got {self.rate}")
        if self.universe < 0:
            raise ValueError(f"universe: must be >= 0, got {self.universe}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule: {self.schedule!r} is not one of {', '.join(SCHEDULES)}")


class MockSource(Source):
    name = "mock"

    def __init__(self, options: dict[str, Any] | None = None, clock: Callable[[], float] = time.time) -> None:
        super().__init__(options)
        self.opts = MockOptions(self.options)
        self.clock = clock
        self.always = list(dict.fromkeys([*universe_symbols(self.opts.universe), *ALWAYS]))
        self._always_set = frozenset(self.always)
        self.instruments: dict[str, Instrument] = {}
        self.wanted = WantedSet()
        self._order: list[str] = []  # symbols in update order; slot i % slots
        self._urgent: list[str] = []  # newly wanted: update on the next step, not a second later
        self._stop = asyncio.Event()
        self._ctx: SourceContext | None = None
        self._open: bool | None = None
        for s in self.always:
            self._instrument(s)

    def _instrument(self, symbol: str) -> Instrument:
        inst = self.instruments.get(symbol)
        if inst is None:
            inst = self.instruments[symbol] = Instrument(symbol, self.opts.seed)
            self._order.append(symbol)
        return inst

    async def start(self, ctx: SourceContext) -> None:
        self._ctx = ctx
        self._stop.clear()
        self._check_session()

    async def stop(self) -> None:
        self._stop.set()

    def want(self, wanted: WantedSet) -> None:
        new = [s for s in wanted.symbols if s not in self.instruments]
        self.wanted = wanted
        for s in sorted(new):
            self._instrument(s)
            self._urgent.append(s)
        # Symbols nobody wants any more, outside the universe, stop costing anything.
        dropped = [s for s in self._order if s not in self._always_set and s not in wanted.by_symbol]
        if dropped:
            gone = set(dropped)
            self._order = [s for s in self._order if s not in gone]
            for s in dropped:
                del self.instruments[s]

    def _check_session(self) -> bool:
        now_open = is_open(self.opts.schedule, self.clock())
        if now_open != self._open and self._ctx is not None:
            if now_open:
                self._ctx.status("live")
            else:
                self._ctx.status(
                    "closed", reason="outside the A-share trading session (09:30-11:30, 13:00-15:00 Beijing)"
                )
        self._open = now_open
        return now_open

    async def events(self) -> AsyncIterator[list[Event]]:
        rate = self.opts.rate
        slots = max(1, int(STEPS_PER_SECOND // rate))
        period = 1.0 / (rate * slots)
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        slot = 0
        while not self._stop.is_set():
            next_at += period
            delay = next_at - loop.time()
            if delay > 0:
                try:
                    await asyncio.wait_for(self._stop.wait(), delay)
                    return
                except TimeoutError:
                    pass
            elif delay < -1.0:
                next_at = loop.time()  # fell far behind (suspended laptop): don't replay the past
            if not self._check_session():
                self._urgent.clear()
                continue
            order = self._order
            due = order[slot::slots] if slots > 1 else order
            slot = (slot + 1) % slots
            if self._urgent:
                due = [*self._urgent, *due]
                self._urgent = []
            batch = self._update(due)
            if batch:
                yield batch

    def _update(self, symbols: list[str]) -> list[Event]:
        now_ms = int(self.clock() * 1000)
        when = local_iso(now_ms, BEIJING)  # one instant for the whole step: format it once
        wanted = self.wanted
        streams = wanted.streams
        by_symbol = wanted.by_symbol
        always = self._always_set
        name = self.name
        out: list[Event] = []
        for sym in symbols:
            inst = self.instruments.get(sym)
            if inst is None:
                continue
            printed = inst.step(now_ms, when)
            wants = by_symbol.get(sym)
            if wants is None:
                if sym in always:
                    out.append(QuoteEvent(symbol=sym, source=name, quote=inst.quote(now_ms, when)))
                continue
            types = {s.type for s in wants}
            if "quote" in types or sym in always:
                out.append(QuoteEvent(symbol=sym, source=name, quote=inst.quote(now_ms, when)))
            if "trade" in types:
                out.extend(TradeEvent(symbol=sym, source=name, trade=t) for t in printed.trades)
            # Bars and 分时 are built only while wanted: they are the costliest part of an update.
            if "tick" in types:
                out.extend(
                    TickEvent(symbol=sym, source=name, tick=t)
                    for t in inst.line.add(now_ms, printed.price, printed.volume, printed.amount)
                )
            if "kline" in types:
                out.extend(
                    KlineEvent(symbol=sym, source=name, kline=k)
                    for k in inst.bars.add(now_ms, printed.price, printed.volume, printed.amount)
                    if ("kline", sym, k.period) in streams
                )
        return out
