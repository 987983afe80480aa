"""Deep history of the simulated market: the past a symbol was seeded with, and before it.

The seeded window (history.py) is walked again on a fresh instrument with the same plan and seed,
so it comes out identical to what was published. Bars older than it come from the daily walk of
history.py run backwards from the oldest seeded bar's open, on the schedule's open days (1d) or
bucket starts (intraday), from a generator of their own: each older bar closes where the next one
opens, within the ±10% limit, and a deeper request only adds older bars (the walk draws the newest
first). An older day's 分时 is a minute walk that opens at that day's daily bar. The mock keeps no
trades older than its seeded ones. Everything is deterministic per seed (`--seed`, else one chosen
per process), so pages asked at different times join without seams.
"""

from __future__ import annotations

import random
import zlib
from collections import OrderedDict
from datetime import datetime

from argus_ingestor import HistoryAnswer, HistoryQuery
from argus_protocol import BEIJING, PERIOD_SECONDS, Event, Kline, KlineEvent, QuoteEvent, TickEvent

from .history import PastPlan, SeedSpec, daily_walk, plan_past, walk_past
from .market import Instrument, local_iso
from .timeline import DAY_MS, Timeline, day_start_ms

MAX_DEEP = 50_000  # older bars one answer may walk back through
MAX_SCAN_DAYS = 20_000  # calendar days searched for older bars
QUOTE_PLAN_MS = 2000  # symbols asked for quotes within this share one past plan
WALKS_KEPT = 64  # walked seeded windows kept (one walk answers every period of a symbol)
_OFFSET_MS = int(BEIJING.utcoffset(None).total_seconds() * 1000)  # type: ignore[union-attr]  # fixed offset


def _ms(iso: str) -> int:
    return int(datetime.fromisoformat(iso).timestamp() * 1000)


def _bucket(ts_ms: int, span_ms: int) -> int:
    return (ts_ms + _OFFSET_MS) // span_ms * span_ms - _OFFSET_MS


class MockPast:
    def __init__(self, seed: int, timeline: Timeline, rate: float, bars: int, trades: int, source: str) -> None:
        self.seed = seed
        self.timeline = timeline
        self.rate = rate
        self.window = bars or 300  # seeding off: the window a history answer starts from
        self.window_trades = trades or 200
        self.source = source
        self._plans: dict[tuple[str, str], PastPlan] = {}  # (symbol, stream) -> the plan its past came from
        self._walks: OrderedDict[tuple[str, int], list[Event]] = OrderedDict()
        self._quote_plan: PastPlan | None = None

    def remember(self, symbol: str, plan: PastPlan) -> None:
        """The plan a symbol was seeded with: its history answers continue that past."""
        spec = plan.spec
        keys = [*spec.periods, *(("tick",) if spec.tick else ()), *(("trade",) if spec.trades else ())]
        for key in keys:
            self._plans[(symbol, key)] = plan

    def forget(self, symbol: str) -> None:
        for key in [k for k in self._plans if k[0] == symbol]:
            del self._plans[key]

    # the seeded window ----------------------------------------------------------------------
    def _plan(self, symbol: str, key: str, now_ms: int) -> PastPlan:
        plan = self._plans.get((symbol, key))
        if plan is None:  # never seeded with this stream: the past it would have been seeded with now
            spec = SeedSpec(
                quote=False,
                tick=key == "tick",
                trades=self.window_trades if key == "trade" else 0,
                periods=(key,) if key in PERIOD_SECONDS else (),
                bars=self.window,
            )
            plan = self._plans[(symbol, key)] = plan_past(spec, now_ms, self.timeline, self.rate)
        return plan

    def _walk(self, symbol: str, plan: PastPlan) -> list[Event]:
        key = (symbol, id(plan))
        events = self._walks.get(key)
        if events is None:
            events = self._walks[key] = walk_past(Instrument(symbol, self.seed), plan, self.source)
            while len(self._walks) > WALKS_KEPT:
                self._walks.popitem(last=False)
        else:
            self._walks.move_to_end(key)
        return events

    # answers --------------------------------------------------------------------------------
    def bars(self, q: HistoryQuery, now_ms: int) -> HistoryAnswer:
        plan = self._plan(q.symbol, q.period, now_ms)
        recent = [e for e in self._walk(q.symbol, plan) if isinstance(e, KlineEvent) and e.kline.period == q.period]
        end_ms = int(q.end.timestamp() * 1000) if q.end is not None else now_ms
        start_ms = int(q.start.timestamp() * 1000) if q.start is not None else None
        have = sum(1 for e in recent if _ms(e.kline.open_time) <= end_ms)
        need = max(0, q.limit - have)
        older: list[Event] = []
        reachable = True
        if recent and (need or (start_ms is not None and _ms(recent[0].kline.open_time) > start_ms)):
            anchor = recent[0].kline
            before = max(0, (_ms(anchor.open_time) - end_ms)) if end_ms < _ms(anchor.open_time) else 0
            depth = need + self._count_between(q.period, end_ms, _ms(anchor.open_time)) if before else need
            if start_ms is not None:
                depth = max(depth, self._count_between(q.period, start_ms, _ms(anchor.open_time)))
            older, reachable = self._older(q.symbol, q.period, anchor, min(depth + 1, MAX_DEEP), plan.day_trades)
        chosen, cut = q.select([*older, *recent])
        return HistoryAnswer(chosen, more=cut or (reachable and bool(chosen)))

    def _count_between(self, period: str, from_ms: int, to_ms: int) -> int:
        """About how many bars of `period` open between two instants (for the walk's depth)."""
        if to_ms <= from_ms:
            return 0
        span = PERIOD_SECONDS[period] * 1000
        return min(MAX_DEEP, (to_ms - from_ms) // span + 1)

    def _starts_before(self, period: str, anchor_ms: int, n: int) -> list[int]:
        """Open times of the `n` bars before `anchor_ms` on the schedule's open days, newest first."""
        out: list[int] = []
        now_ms = anchor_ms
        day = day_start_ms(anchor_ms)
        if period == "1d":
            for _ in range(MAX_SCAN_DAYS):
                if len(out) >= n:
                    break
                day -= DAY_MS
                if self.timeline.first_open(day, now_ms) is not None:
                    out.append(day)
            return out
        span = PERIOD_SECONDS[period] * 1000
        for _ in range(MAX_SCAN_DAYS):
            if len(out) >= n:
                break
            minutes = self.timeline.open_minutes(day, now_ms)
            starts = sorted({_bucket(m, span) for m in minutes if m < anchor_ms}, reverse=True)
            out.extend(s for s in starts if s < anchor_ms and (not out or s < out[-1]))
            day -= DAY_MS
        return out[:n]

    def _older(self, symbol: str, period: str, anchor: Kline, n: int, day_trades: float) -> tuple[list[Event], bool]:
        """`n` bars before `anchor`, oldest first, the newest closing at the anchor's open."""
        if n <= 0:
            return [], True
        anchor_ms = _ms(anchor.open_time)
        starts = self._starts_before(period, anchor_ms, n)
        if not starts:
            return [], False
        inst = Instrument(symbol, self.seed)
        inst.rng = random.Random(zlib.crc32(f"{self.seed}:{symbol}:{period}:deep".encode()))
        inst.prev_close_t = round(anchor.open * 100)
        per_bar = day_trades if period == "1d" else day_trades * PERIOD_SECONDS[period] / 86_400 * 4
        walked = daily_walk(inst, len(starts), max(per_bar, 2.0))
        out: list[Event] = []
        for t, (o, h, lo, c, volume, amount_t) in zip(reversed(starts), walked, strict=True):
            k = Kline(
                period=period,
                open_time=local_iso(t, BEIJING).replace(".000", ""),
                open=o / 100,
                high=h / 100,
                low=lo / 100,
                close=c / 100,
                volume=volume,
                amount=round(amount_t / 100, 2),
                closed=True,
            )
            out.append(KlineEvent(symbol=symbol, source=self.source, kline=k))
        return out, len(starts) == n

    def ticks(self, q: HistoryQuery, now_ms: int) -> HistoryAnswer:
        plan = self._plan(q.symbol, "tick", now_ms)
        seeded_day = datetime.fromtimestamp(plan.last_day / 1000, BEIJING).date()
        if q.day is None or q.day == seeded_day:
            return HistoryAnswer([e for e in self._walk(q.symbol, plan) if isinstance(e, TickEvent)])
        day_ms = int(datetime(q.day.year, q.day.month, q.day.day, tzinfo=BEIJING).timestamp() * 1000)
        if day_ms > now_ms:
            return HistoryAnswer([])
        minutes = self.timeline.open_minutes(day_ms, now_ms)
        if not minutes:
            return HistoryAnswer([])  # a closed day: no 分时
        that_day = HistoryQuery(
            "kline",
            q.symbols,
            "1d",
            datetime.fromtimestamp(day_ms / 1000, BEIJING),
            datetime.fromtimestamp((day_ms + DAY_MS - 1) / 1000, BEIJING),
            None,
            1,
            "none",
            q.tz,
        )
        daily = self.bars(that_day, now_ms).events
        inst = Instrument(q.symbol, self.seed)
        inst.rng = random.Random(zlib.crc32(f"{self.seed}:{q.symbol}:tick:{day_ms}".encode()))
        if daily:
            inst.prev_close_t = inst.last_t = round(daily[0].kline.open * 100)  # type: ignore[union-attr]
        per_minute = max(1.0, 60.0 * self.rate)
        ticks = []
        for m in minutes:
            printed = inst.step_span(m, per_minute)
            ticks.extend(inst.line.roll(m, True))
            inst.line.add(m, printed.close, printed.volume, printed.amount, False)
        ticks.extend(inst.line.roll(min(now_ms, day_ms + DAY_MS), True))
        ticks.extend(inst.line.forming())
        return HistoryAnswer([TickEvent(symbol=q.symbol, source=self.source, tick=t) for t in ticks])

    def trades(self, q: HistoryQuery, now_ms: int) -> HistoryAnswer:
        plan = self._plan(q.symbol, "trade", now_ms)
        seeded = [e for e in self._walk(q.symbol, plan) if e.__struct_config__.tag == "trade"]
        chosen, cut = q.select(seeded)
        return HistoryAnswer(chosen, more=cut)

    def quote(self, symbol: str, now_ms: int) -> QuoteEvent | None:
        """The quote the symbol's past ends in now (a symbol the mock does not run)."""
        plan = self._quote_plan
        if plan is None or not 0 <= now_ms - plan.now_ms < QUOTE_PLAN_MS:
            spec = SeedSpec(quote=True, tick=False, trades=0, periods=(), bars=0)
            plan = self._quote_plan = plan_past(spec, now_ms, self.timeline, self.rate)
        events = walk_past(Instrument(symbol, self.seed), plan, self.source)
        last = events[-1] if events else None
        return last if isinstance(last, QuoteEvent) else None
