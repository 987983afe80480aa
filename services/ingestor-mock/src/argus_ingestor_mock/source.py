"""The mock market as an Argus Source: every wanted symbol plus an always-on universe.

Always-on symbols publish quotes all the time (keeping the last-value cache warm); every other
stream is published while somebody wants it. Every active symbol's state (price, cumulative
volume, klines of all periods, 分时) advances alike on each update, so a stream joined late starts
from a consistent day; only the payloads that are wanted get built. A symbol nobody wants any
more (outside the universe) stops updating but keeps its state, and resumes from it when wanted
again, so its volume never goes backwards.

Updates are spread over each second: the active symbols are sliced across ~20 ms steps, each step
yields one batch.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from typing import Any

from argus_ingestor import Source, SourceContext, WantedSet
from argus_protocol import BEIJING, Event, KlineEvent, QuoteEvent, TickEvent, TradeEvent

from .market import Instrument, local_iso
from .schedule import SCHEDULES, is_open

ALWAYS = ("000001.SZ", "600000.SH")
STEPS_PER_SECOND = 50  # how finely a second is sliced, so updates spread rather than burst
MAX_DORMANT = 100_000  # unwanted symbols whose state is kept for when they are wanted again
CLOSED_REASON = "outside the A-share trading session (09:30-11:30, 13:00-15:00 Beijing)"

# what to publish for one symbol: quote, trades, 分时, kline periods
Plan = tuple[bool, bool, bool, tuple[str, ...]]
QUOTE_ONLY: Plan = (True, False, False, ())


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
        self.instruments: dict[str, Instrument] = {}  # active and dormant
        self.wanted = WantedSet()
        self._order: list[str] = []  # active symbols in update order; slot i % slots
        self._plans: dict[str, Plan] = {}  # active symbol -> what to publish
        self._dormant: OrderedDict[str, None] = OrderedDict()  # least recently dropped first
        self._urgent: list[str] = []  # newly wanted: update on the next step, not a second later
        self._stop = asyncio.Event()
        self._ctx: SourceContext | None = None
        self._open: bool | None = None
        self._last_roll = 0.0
        for s in self.always:
            self.instruments[s] = Instrument(s, self.opts.seed)
            self._order.append(s)
            self._plans[s] = QUOTE_ONLY

    async def start(self, ctx: SourceContext) -> None:
        self._ctx = ctx
        self._stop.clear()
        if not self._check_session():
            self._urgent = list(self.always)  # closed: still one quote each, so snapshots exist

    async def stop(self) -> None:
        self._stop.set()

    def want(self, wanted: WantedSet) -> None:
        self.wanted = wanted
        plans: dict[str, Plan] = {s: QUOTE_ONLY for s in self.always}
        for sym, streams in wanted.by_symbol.items():
            types = {s.type for s in streams}
            periods = tuple(sorted(s.period for s in streams if s.type == "kline"))
            plans[sym] = ("quote" in types or sym in self._always_set, "trade" in types, "tick" in types, periods)
        old = self._plans
        self._plans = plans
        dropped = [s for s in old if s not in plans]
        if dropped:
            gone = set(dropped)
            self._order = [s for s in self._order if s not in gone]
            self._urgent = [s for s in self._urgent if s not in gone]
            for s in dropped:
                self._dormant[s] = None
            while len(self._dormant) > MAX_DORMANT:
                evicted, _ = self._dormant.popitem(last=False)
                self.instruments.pop(evicted, None)
        now_ms = int(self.clock() * 1000)
        for s in sorted(s for s in plans if s not in old):
            inst = self.instruments.get(s)
            if inst is None:
                self.instruments[s] = Instrument(s, self.opts.seed)
            else:
                # Back from dormancy: bars that ended meanwhile close silently (nobody watched them).
                self._dormant.pop(s, None)
                inst.roll(now_ms)
            self._order.append(s)
            self._urgent.append(s)

    def _check_session(self) -> bool:
        now_open = is_open(self.opts.schedule, self.clock())
        if now_open != self._open and self._ctx is not None:
            if now_open:
                self._ctx.status("live")
            else:
                self._ctx.status("closed", reason=CLOSED_REASON)
        self._open = now_open
        return now_open

    async def events(self) -> AsyncIterator[list[Event]]:
        rate = self.opts.rate
        slots = max(1, int(STEPS_PER_SECOND // rate))
        period = 1.0 / (rate * slots)  # at most ~20 ms, so stop() is seen within that
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        slot = 0
        while not self._stop.is_set():
            next_at += period
            delay = next_at - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            else:
                if delay < -1.0:
                    next_at = loop.time()  # fell far behind (suspended laptop): don't replay the past
                await asyncio.sleep(0)  # behind: still let NATS, demand and heartbeats run
            if self._stop.is_set():
                return
            if not self._check_session():
                now = self.clock()
                batch = []
                if self._urgent:  # wanted while closed: one quote as of the last close, no trading
                    batch = self._quotes_only(self._urgent, int(now * 1000))
                    self._urgent = []
                if now - self._last_roll >= 1.0:  # close bars and 分时 minutes that end while closed
                    self._last_roll = now
                    batch.extend(self._roll_all(int(now * 1000)))
                if batch:
                    yield batch
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
        plans = self._plans
        instruments = self.instruments
        name = self.name
        out: list[Event] = []
        append = out.append
        for sym in symbols:
            plan = plans.get(sym)
            if plan is None:
                continue  # dropped since it was scheduled
            inst = instruments[sym]
            quote, trades, tick, periods = plan
            printed = inst.step(now_ms, when, trades)
            klines, ticks = inst.feed(now_ms, printed, periods, tick)
            if quote:
                append(QuoteEvent(symbol=sym, source=name, quote=inst.quote(when)))
            if trades:
                for t in printed.trades:
                    append(TradeEvent(symbol=sym, source=name, trade=t))
            for tk in ticks:
                append(TickEvent(symbol=sym, source=name, tick=tk))
            for k in klines:
                append(KlineEvent(symbol=sym, source=name, kline=k))
        return out

    def _quotes_only(self, symbols: list[str], now_ms: int) -> list[Event]:
        when = local_iso(now_ms, BEIJING)
        return [
            QuoteEvent(symbol=s, source=self.name, quote=self.instruments[s].quote(when))
            for s in symbols
            if (plan := self._plans.get(s)) is not None and plan[0]
        ]

    def _roll_all(self, now_ms: int) -> list[Event]:
        out: list[Event] = []
        name = self.name
        for sym in self._order:
            _, _, tick, periods = self._plans[sym]
            klines, ticks = self.instruments[sym].roll(now_ms, periods, tick)
            out.extend(TickEvent(symbol=sym, source=name, tick=t) for t in ticks)
            out.extend(KlineEvent(symbol=sym, source=name, kline=k) for k in klines)
        return out
