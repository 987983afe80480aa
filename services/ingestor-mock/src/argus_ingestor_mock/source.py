"""The mock market as an Argus Source: every wanted symbol plus an always-on universe.

Always-on symbols publish quotes all the time (keeping the last-value cache warm); every other
stream is published while somebody wants it. Every active symbol's state (price, cumulative
volume, klines of all periods, 分时) advances alike on each update, so a stream joined late starts
from a consistent day; only the payloads that are wanted get built. A symbol nobody wants any
more (outside the universe) stops updating but keeps its state, and resumes from it when wanted
again, so its volume never goes backwards.

Updates are spread over each second: the active symbols are sliced across 25 steps a second (in
hash order; fewer when the rate does not divide them: 20 at rate 10), each step yields one batch.

A symbol's past is seeded when it first becomes active (history.py): its past walk's events go out
in one batch before its first live one, and its live walk continues from where the past ended.
Only streams JetStream retains nothing of are seeded (`SourceContext.retained_seq`).
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import random
import re
import time
import zlib
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

from argus_ingestor import Batch, HistoryAnswer, HistoryQuery, QuoteBlock, Source, SourceContext, WantedSet
from argus_protocol import BEIJING, PERIODS, Event, KlineEvent, QuoteEvent, Stream, TickEvent, TradeEvent
from argus_service.config import yes_no

from .deep import MockPast
from .history import PastPlan, SeedSpec, plan_past, walk_past
from .live import I64, LiveMarket
from .market import Instrument, Ladders, Print, local_iso
from .schedule import SCHEDULES, is_open
from .timeline import Timeline

log = logging.getLogger("argus.mock")

ALWAYS = ("000001.SZ", "600000.SH")
STEPS_PER_SECOND = 25  # how finely a second is sliced: updates spread, each step a batch (bench/README.md)
MAX_DORMANT = 100_000  # unwanted symbols whose state is kept for when they are wanted again
CLOSED_REASON = "outside the A-share trading session (09:30-11:30, 13:00-15:00 Beijing)"
KLINES_RETAINED = 1000  # closed bars JetStream keeps per symbol and period: seeding more is wasted
TRADES_RETAINED = 2000  # trades JetStream keeps per symbol
SEED_BUDGET_S = 0.05  # seeding per events() step at most this long, then a live step
PLAN_REUSE_MS = 2000  # symbols seeded within this of each other share one past plan

# what to publish for one symbol: quote, trades, 分时, kline periods
Plan = tuple[bool, bool, bool, tuple[str, ...]]
QUOTE_ONLY: Plan = (True, False, False, ())


_NAME = re.compile(r"[a-z][a-z0-9-]{0,31}")  # a source name is a NATS subject token


def universe_symbols(n: int) -> list[str]:
    return [f"{i:06d}.SZ" for i in range(1, n + 1)]


def slot_key(symbol: str) -> int:
    """Where a symbol sits in the update order: a hash, so a client's symbols (often neighbouring
    codes) fall into steps independently, as a real feed's do, not each into a step of its own."""
    return zlib.crc32(symbol.encode())


class MockOptions:
    def __init__(self, options: dict[str, Any]) -> None:
        interval = float(options.get("update_interval", 1.0))
        rate = options.get("rate")
        self.rate = float(rate) if rate not in (None, "") else 1.0 / interval
        self.universe = int(options.get("universe", 10))
        seed = options.get("seed")
        self.seed = int(seed) if seed not in (None, "") else None
        self.schedule = str(options.get("schedule", "always"))
        self.name = str(options.get("name") or "mock")
        book = yes_no(options.get("book", True))
        if book is None:
            raise ValueError(f"book: must be true or false, got {options.get('book')!r}")
        self.book = book  # False: quotes without the 5-level book
        steps = options.get("steps")
        self.steps = float(steps) if steps not in (None, "") else STEPS_PER_SECOND  # 10 at rate 10: one burst
        if not self.steps > 0:
            raise ValueError(f"steps: must be > 0, got {self.steps}")
        if not _NAME.fullmatch(self.name):
            raise ValueError(f"name: lower-case letters, digits and '-', starting with a letter, got {self.name!r}")
        if not self.rate > 0:
            raise ValueError(f"rate: must be > 0, got {self.rate}")
        if self.universe < 0:
            raise ValueError(f"universe: must be >= 0, got {self.universe}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule: {self.schedule!r} is not one of {', '.join(SCHEDULES)}")
        self.history = _whole(
            "history", options.get("history", 300), KLINES_RETAINED, "closed bars retained per period"
        )
        self.history_trades = _whole(
            "history_trades", options.get("history_trades", 200), TRADES_RETAINED, "trades retained per symbol"
        )
        self.history_periods = _periods(options.get("history_periods", PERIODS))


def _whole(key: str, value: Any, most: int, what: str) -> int:
    if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
        raise ValueError(f"{key}: must be a whole number, got {value!r}")
    try:
        n = int(value)
    except (TypeError, ValueError):
        raise ValueError(f"{key}: must be a whole number, got {value!r}") from None
    if not 0 <= n <= most:
        raise ValueError(f"{key}: must be within 0..{most} (the {what}), got {n}")
    return n


def _periods(value: Any) -> tuple[str, ...]:
    """A list of kline periods, or the same comma-separated (env and flags)."""
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple):
        raise ValueError(f"history_periods: must be a list of periods ({', '.join(PERIODS)}), got {value!r}")
    names = [str(item).strip() for item in items if str(item).strip()]
    unknown = [n for n in names if n not in PERIODS]
    if unknown:
        raise ValueError(f"history_periods: {unknown[0]!r} is not one of {', '.join(PERIODS)}")
    return tuple(p for p in PERIODS if p in names)


class MockSource(Source):
    name = "mock"

    def __init__(self, options: dict[str, Any] | None = None, clock: Callable[[], float] = time.time) -> None:
        super().__init__(options)
        self.opts = MockOptions(self.options)
        self.name = self.opts.name  # `mock`, or another name to drill failover between two mocks
        self.clock = clock
        # one seed per process when none is given, so the past it answers history with is the one it walked
        self.seed = self.opts.seed if self.opts.seed is not None else random.randrange(1 << 31)
        self.always = list(dict.fromkeys([*universe_symbols(self.opts.universe), *ALWAYS]))
        self._always_set = frozenset(self.always)
        self.instruments: dict[str, Instrument] = {}  # active and dormant
        self._ladders = Ladders()  # book prices at each touch, shared by every instrument
        self.wanted = WantedSet()
        self._order: list[str] = []  # live symbols in update order; slot i % slots
        self._live = LiveMarket(BEIJING, self._ladders)  # their days, stepped together (live.py)
        self._plans: dict[str, Plan] = {}  # active symbol -> what to publish
        self._unquoted: frozenset[str] = frozenset()  # planned symbols without their quote
        self._busy: frozenset[str] = frozenset()  # planned symbols with trades, 分时 or bars to build
        self._dormant: OrderedDict[str, None] = OrderedDict()  # least recently dropped first
        self._urgent: list[str] = []  # newly wanted: update on the next step, not a second later
        self._stop = asyncio.Event()
        self._ctx: SourceContext | None = None
        self._open: bool | None = None
        self._last_roll = 0.0
        self._seeding = self.opts.history > 0
        self._pending: dict[str, None] = {}  # fresh symbols whose past goes out before they go live
        self._timeline = Timeline(self.opts.schedule)
        self._past_plans: dict[SeedSpec, PastPlan] = {}
        self.past = MockPast(
            self.seed, self._timeline, self.opts.rate, self.opts.history, self.opts.history_trades, self.name
        )
        self._round_symbols = 0  # symbols and events seeded since the queue was last empty, since when
        self._round_events = 0
        self._round_start = 0.0
        for s in self.always:
            self.instruments[s] = Instrument(s, self.seed, ladders=self._ladders)
            self._plans[s] = QUOTE_ONLY
            if self._seeding:
                self._pending[s] = None
            else:
                self._go_live(s)

    async def start(self, ctx: SourceContext) -> None:
        self._ctx = ctx
        self._stop.clear()
        if not self._check_session():
            # closed: still one quote each, so snapshots exist (symbols being seeded get it with their past)
            self._urgent = [s for s in self.always if s not in self._pending]

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
        self._unquoted = frozenset(s for s, (quote, *_) in plans.items() if not quote)
        self._busy = frozenset(s for s, (_, trades, tick, periods) in plans.items() if trades or tick or periods)
        dropped = [s for s in old if s not in plans]
        if dropped:
            gone = set(dropped)
            self._order = [s for s in self._order if s not in gone]
            self._urgent = [s for s in self._urgent if s not in gone]
            for s in dropped:
                if s in self._pending:  # never went live: forgotten, seeded if wanted again
                    del self._pending[s]
                    self.instruments.pop(s, None)
                else:
                    self._live.leave(self.instruments[s])
                    self._dormant[s] = None
            while len(self._dormant) > MAX_DORMANT:
                evicted, _ = self._dormant.popitem(last=False)
                self.instruments.pop(evicted, None)
        now_ms = int(self.clock() * 1000)
        for s in sorted(s for s in plans if s not in old):
            inst = self.instruments.get(s)
            if inst is None:
                self.instruments[s] = Instrument(s, self.seed, ladders=self._ladders)
                if self._seeding:
                    self._pending[s] = None  # goes live once its past is out (events())
                    continue
            else:
                # Back from dormancy: bars that ended meanwhile close silently (nobody watched them).
                self._dormant.pop(s, None)
                inst.roll(now_ms)
            self._go_live(s)
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

    async def events(self) -> AsyncIterator[Batch]:
        rate = self.opts.rate
        slots = max(1, int(self.opts.steps // rate))
        period = 1.0 / (rate * slots)  # 40-80 ms (1/rate above 25/s), so stop() is seen within that
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
            if self._pending:
                started = time.perf_counter()
                while self._pending and time.perf_counter() - started < SEED_BUDGET_S:
                    seeded = self._seed_next()
                    if seeded:
                        yield seeded
                    if self._stop.is_set():
                        return
            if not self._check_session():
                now = self.clock()
                batch: list[Event | QuoteBlock] = []
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
                due = list(dict.fromkeys([*self._urgent, *due]))  # once each: a step updates a symbol once
                self._urgent = []
            batch = self._update(due)
            if batch:
                yield batch

    # seeding the past ------------------------------------------------------------------------
    def _seed_next(self) -> list[Event]:
        """Seed the next pending symbol's past and make it live; its seeded events."""
        sym = next(iter(self._pending))
        del self._pending[sym]
        started = time.perf_counter()
        if not self._round_symbols:
            self._round_start = started
        spec = self._seed_spec(sym)
        events: list[Event] = []
        if not spec.empty:  # else every stream is retained: the live walk just starts
            plan = self._past_plan(spec)
            events = walk_past(self.instruments[sym], plan, self.name)
            self.past.remember(sym, plan)
        self._go_live(sym)
        if self._open or not spec.quote:
            self._urgent.append(sym)  # open: trades on the next step; closed: its one quote
        log.debug(
            "history seeded",
            extra={"symbol": sym, "events": len(events), "ms": round((time.perf_counter() - started) * 1000, 1)},
        )
        self._round_symbols += 1
        self._round_events += len(events)
        if not self._pending:
            seconds = round(time.perf_counter() - self._round_start, 3)  # publishing and live steps included
            log.info(
                "history seeded",
                extra={"symbols": self._round_symbols, "events": self._round_events, "seconds": seconds},
            )
            self._round_symbols = self._round_events = 0
        return events

    def _seed_spec(self, sym: str) -> SeedSpec:
        """What to seed: everything for the always-on universe; for a symbol wanted later, the
        types wanted now, with every history period as soon as one kline period is wanted."""
        opts = self.opts
        if sym in self._always_set:
            quote, trades, tick, periods = True, True, True, opts.history_periods
        else:
            quote, trades, tick, wanted_periods = self._plans.get(sym, QUOTE_ONLY)
            periods = opts.history_periods if wanted_periods else ()
        fresh = self._has_no_history
        return SeedSpec(
            quote=quote and fresh(Stream("quote", sym)),
            tick=tick and fresh(Stream("tick", sym)),
            trades=opts.history_trades if trades and fresh(Stream("trade", sym)) else 0,
            periods=tuple(p for p in periods if fresh(Stream("kline", sym, p))),
            bars=opts.history,
        )

    def _has_no_history(self, stream: Stream) -> bool:
        return self._ctx is None or self._ctx.retained_seq(stream) <= 0

    def _past_plan(self, spec: SeedSpec) -> PastPlan:
        """Symbols seeded close together with the same spec share one plan (and its calendar look-ups)."""
        now_ms = int(self.clock() * 1000)
        plans = {k: p for k, p in self._past_plans.items() if 0 <= now_ms - p.now_ms < PLAN_REUSE_MS}
        plan = plans.get(spec)
        if plan is None:
            plan = plans[spec] = plan_past(spec, now_ms, self._timeline, self.opts.rate)
        self._past_plans = plans
        return plan

    # deep history (deep.py) --------------------------------------------------------------
    async def history(self, query: HistoryQuery) -> HistoryAnswer:
        now_ms = int(self.clock() * 1000)
        if query.kind == "quote":
            return HistoryAnswer(await self._quotes_now(query.symbols, now_ms))
        # a fresh instrument walks the past: off the event loop, the live walk goes on meanwhile
        if query.kind == "kline":
            return await asyncio.to_thread(self.past.bars, query, now_ms)
        if query.kind == "tick":
            return await asyncio.to_thread(self.past.ticks, query, now_ms)
        return await asyncio.to_thread(self.past.trades, query, now_ms)

    async def _quotes_now(self, symbols: Sequence[str], now_ms: int) -> list[Event]:
        """Running symbols' quotes from their state, on the loop; the others walk their day's past
        off it (hundreds of them take seconds after the close, which would stall heartbeats)."""
        running = {s: self._quote_of(s, now_ms) for s in symbols if s in self.instruments and s not in self._pending}
        cold = [s for s in symbols if s not in running]
        walked = dict(zip(cold, await asyncio.to_thread(self._walk_quotes, cold, now_ms), strict=True)) if cold else {}
        return [q for s in symbols if (q := running[s] if s in running else walked[s]) is not None]

    def _walk_quotes(self, symbols: list[str], now_ms: int) -> list[QuoteEvent | None]:
        return [self.past.quote(s, now_ms) for s in symbols]

    def _quote_of(self, symbol: str, now_ms: int) -> QuoteEvent:
        inst = self.instruments[symbol]
        if symbol in self._live:
            self._live.store(inst)
        return QuoteEvent(symbol=symbol, source=self.name, quote=inst.quote(local_iso(now_ms, BEIJING), self.opts.book))

    def _go_live(self, symbol: str) -> None:
        self._enter_order(symbol)
        self._live.join(self.instruments[symbol])

    def _enter_order(self, symbol: str) -> None:
        bisect.insort(self._order, symbol, key=slot_key)

    # live ---------------------------------------------------------------------------------
    def _update(self, symbols: list[str]) -> list[Event | QuoteBlock]:
        """One step: `symbols` (each once) update together (live.py), then their events are built."""
        plans = self._plans
        if not plans.keys() >= set(symbols):  # dropped since it was scheduled: not stepped
            symbols = [s for s in symbols if s in plans]
        if not symbols:
            return []
        now_ms = int(self.clock() * 1000)
        when = local_iso(now_ms, BEIJING)  # one instant for the whole step: format it once
        instruments = self.instruments
        always = self._always_set
        name = self.name
        live = self._live
        slots = live.slots(symbols)
        step = live.step(slots, now_ms)
        out: list[Event | QuoteBlock] = []
        append = out.append
        for pos, at, gathered in step.ended:  # a minute ended: its gathered updates fed, its bars closed
            out.extend(self._roll(symbols[pos], now_ms, (at, gathered)))
        # set operations first: in the usual step every symbol is quoted and none has more to build
        if self._unquoted.isdisjoint(symbols):
            out.extend(self._quote_events(slots, symbols, when))
        elif quoted := [pos for pos, sym in enumerate(symbols) if plans[sym][0]]:
            out.extend(self._quote_events(slots[quoted], [symbols[pos] for pos in quoted], when))
        busy = self._busy
        if busy.isdisjoint(symbols):
            return out
        for pos, sym in enumerate(symbols):
            if sym not in busy:
                continue
            _, trades, tick, periods = plans[sym]
            if trades:
                for trade in step.trades_of(pos, when):
                    append(TradeEvent(symbol=sym, source=name, trade=trade))
            if tick or periods:  # its bars are sent: fed every update
                update = live.take(sym)  # this update (and any since the bars were last fed)
                assert update is not None
                klines, ticks = instruments[sym].feed(now_ms, update[1], periods, tick, sym in always)
                for tk in ticks:
                    append(TickEvent(symbol=sym, source=name, tick=tk))
                for k in klines:
                    append(KlineEvent(symbol=sym, source=name, kline=k))
        return out

    def _quotes_only(self, symbols: list[str], now_ms: int) -> list[Event | QuoteBlock]:
        symbols = [s for s in symbols if (plan := self._plans.get(s)) is not None and plan[0]]
        return self._quote_events(self._live.slots(symbols), symbols, local_iso(now_ms, BEIJING))

    def _quote_events(self, slots: I64, symbols: list[str], when: str) -> list[Event | QuoteBlock]:
        """The quotes of `symbols` (at `slots`) as they stand: one block, and those whose book the
        price limits cut short one by one."""
        block, cut = self._live.quotes(slots, symbols, when, self.opts.book)
        block.source = self.name
        out: list[Event | QuoteBlock] = [block] if len(block) else []
        out += [QuoteEvent(symbol=symbols[pos], source=self.name, quote=q) for pos, q in cut]
        return out

    def _roll_all(self, now_ms: int) -> list[Event]:
        out: list[Event] = []
        for sym in self._order:
            out.extend(self._roll(sym, now_ms, self._live.take(sym)))
        return out

    def _roll(self, sym: str, now_ms: int, gathered: tuple[int, Print] | None) -> list[Event]:
        """Close the bars and the 分时 minute that ended by now, the symbol's gathered updates fed first."""
        _, _, tick, periods = self._plans[sym]
        keep = sym in self._always_set  # always-on symbols publish every finished bar and minute
        inst = self.instruments[sym]
        if gathered is not None:
            inst.feed(gathered[0], gathered[1], periods, tick, keep)
        klines, ticks = inst.roll(now_ms, periods, tick, keep)
        name = self.name
        return [
            *(TickEvent(symbol=sym, source=name, tick=t) for t in ticks),
            *(KlineEvent(symbol=sym, source=name, kline=k) for k in klines),
        ]
