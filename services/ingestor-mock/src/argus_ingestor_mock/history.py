"""The past a symbol starts from: its seeded 分时, klines, trades and quote.

A newly active symbol's instrument first walks through the past; its live walk then continues
from exactly where the past ended (price, the day's open/high/low and totals, the forming bars,
the 分时 VWAP, trade ids). The past walk feeds the instrument's own KlineBuilder and MinuteLine,
so every seeded bar folds up from the same steps as the shorter ones, like live bars do.

Cost: the walk steps only through open minutes, and only as finely as what is published there
needs: one `step()` per update for the newest trades; one step per minute for today's 分时 and
the newest 1m bars; one per 5, 15, 30 or 60 minutes where only those periods' bars are published;
one per day for the days before that which only need a daily bar (the part of the first day
before any intraday window is one step). Older daily bars come from a daily walk that ends where
the minute walk starts. Payloads are built only for the published bars.

A `PastPlan` (which steps at which times) depends only on what is seeded and when, so symbols
seeded at one moment share it; only the walk itself runs per symbol.
"""

from __future__ import annotations

import math
from typing import NamedTuple

from argus_protocol import (
    BEIJING,
    PERIOD_SECONDS,
    Event,
    Kline,
    KlineEvent,
    QuoteEvent,
    Tick,
    TickEvent,
    Trade,
    TradeEvent,
)

from .market import LIMIT, LOT, LOTS_PER_TRADE, VOLATILITY, Instrument, local_iso
from .timeline import DAY_MS, MINUTE_MS, Timeline, day_start_ms

MAX_SCAN_DAYS = 400  # calendar days searched for the minute walk (a schedule that rarely opens)
DAILY_VOLATILITY = 0.03  # the daily walk's relative standard deviation per day, at most
_MIN_TICKS = 100  # the daily walk, run backwards, keeps prices at 1.00 or more
_OFFSET_MS = int(BEIJING.utcoffset(None).total_seconds() * 1000)  # type: ignore[union-attr]  # fixed offset


class SeedSpec(NamedTuple):
    """What to seed for one symbol."""

    quote: bool
    tick: bool
    trades: int  # the newest trades (0: none)
    periods: tuple[str, ...]  # kline periods
    bars: int  # closed bars per period (plus the forming one)

    @property
    def empty(self) -> bool:
        return not (self.quote or self.tick or self.trades or self.periods)


class Step(NamedTuple):
    ts: int  # epoch ms the step trades at
    updates: int  # live updates it stands for; 0: one real update with its trades (the newest)
    emit: tuple[str, ...]  # periods whose bar closing at this step is published
    line: bool  # part of the last trading day: fed into the 分时


class PastPlan(NamedTuple):
    spec: SeedSpec
    now_ms: int
    daily: list[tuple[int, tuple[str, ...]]]  # daily-walk days (trade time, emit), oldest first
    day_trades: float  # trades in a trading day, for the daily walk's volume and volatility
    steps: list[Step]  # the minute walk, oldest first
    final: tuple[str, ...]  # periods published at the end: bars that close by now, then the forming
    last_day: int  # start of the last trading day (the 分时 shown)


def _bucket(ts_ms: int, span_ms: int) -> int:
    return (ts_ms + _OFFSET_MS) // span_ms * span_ms - _OFFSET_MS


def plan_past(spec: SeedSpec, now_ms: int, timeline: Timeline, rate: float) -> PastPlan:
    """Which steps the past walk takes for `spec` at now_ms, on the schedule's open minutes."""
    every_ms = 1000.0 / rate  # one update per symbol this often, as live
    per_minute = math.ceil(MINUTE_MS / every_ms - 1e-9)
    intraday = [p for p in spec.periods if p != "1d"]
    spans = {p: PERIOD_SECONDS[p] * 1000 for p in spec.periods}

    # 1. The days the minute walk steps through, newest first: enough for every intraday
    #    period's bars, the newest trades, and the last trading day (分时, the quote's day).
    days: list[tuple[int, tuple[int, ...]]] = []
    buckets: dict[str, list[int]] = {p: [] for p in intraday}  # bar open times, newest first
    updates_found = 0
    day = day_start_ms(now_ms)
    for _ in range(MAX_SCAN_DAYS):
        minutes = timeline.open_minutes(day, now_ms)
        if minutes:
            days.append((day, minutes))
            for p in intraday:
                span = spans[p]
                starts = minutes if span == MINUTE_MS else sorted({_bucket(m, span) for m in minutes})
                buckets[p].extend(reversed(starts))
            updates_found += len(minutes) * per_minute
            if updates_found >= spec.trades and all(len(b) > spec.bars for b in buckets.values()):
                break
        day -= DAY_MS
    if not days:
        return PastPlan(spec, now_ms, [], 0.0, [], (), day_start_ms(now_ms))
    days.reverse()
    last_day = days[-1][0]
    minutes_all = [m for _, ms in days for m in ms]

    # 2. Where each period's published bars start: the newest `bars` closed, plus the forming one.
    window = {p: _window_start(buckets[p], spans[p], now_ms, spec.bars) for p in intraday}
    daily: list[tuple[int, tuple[str, ...]]] = []
    full_days = [ms for d, ms in days if d + DAY_MS <= now_ms]
    open_minutes = sum(len(ms) for ms in full_days) / len(full_days) if full_days else len(days[-1][1])
    day_trades = 2.0 * per_minute * open_minutes
    if "1d" in spec.periods:
        starts = [d for d, _ in reversed(days)]
        closed = sum(1 for d in starts if d + DAY_MS <= now_ms)
        need = max(0, spec.bars - closed)
        older: list[int] = []
        day = days[0][0] - DAY_MS
        for _ in range(3 * need + 30 if need else 0):
            if len(older) == need:
                break
            first = timeline.first_open(day, now_ms)
            if first is not None:
                older.append(first)
            day -= DAY_MS
        window["1d"] = _window_start([*starts, *(day_start_ms(t) for t in older)], DAY_MS, now_ms, spec.bars)
        prev = None
        for t in reversed(older):
            daily.append((t, ("1d",) if prev is not None and prev >= window["1d"] else ()))
            prev = t

    # 3. The newest `trades` updates are real steps; count them per minute, newest first.
    fine: dict[int, list[int]] = {}
    want = spec.trades
    for m in reversed(minutes_all):
        if want <= 0:
            break
        n = per_minute if m + MINUTE_MS <= now_ms else int((now_ms - m) // every_ms) + 1
        instants = [m + int(i * every_ms) for i in range(max(0, n - want), n)]
        fine[m] = instants
        want -= len(instants)

    # 4. Group the minutes: each as finely as the finest period published at it needs.
    thresholds = sorted((spans[p], start) for p, start in window.items() if p != "1d")
    thresholds.append((MINUTE_MS, last_day))  # the 分时 of the last day: minute by minute
    periods = tuple(p for p in spec.periods if p in window)
    steps: list[Step] = []
    prev_ts = daily[-1][0] if daily else None
    key: tuple[int, int] | None = None
    pending = 0  # updates of the group being gathered
    group_ts = 0

    def emit_after(ts: int | None) -> tuple[str, ...]:
        # the bar a step closes holds the previous step: published when that step was in the window
        return () if ts is None else tuple(p for p in periods if ts >= window[p])

    def flush() -> None:
        nonlocal prev_ts
        if pending:
            steps.append(Step(group_ts, pending, emit_after(prev_ts), group_ts >= last_day))
            prev_ts = group_ts

    changes = sorted({start for _, start in thresholds})  # where the finest span changes
    finest = [min(s for s, start in thresholds if start <= c) for c in changes]
    at = -1
    span = DAY_MS
    for m in minutes_all:
        while at + 1 < len(changes) and changes[at + 1] <= m:
            at += 1
            span = finest[at]
        k = (span, _bucket(m, span))
        n = per_minute if m + MINUTE_MS <= now_ms else int((now_ms - m) // every_ms) + 1
        if fine:
            n -= len(fine.get(m, ()))
        if k != key:
            flush()
            key, pending, group_ts = k, 0, m
        pending += n
    flush()
    for m in sorted(fine):
        for t in fine[m]:
            steps.append(Step(t, 0, emit_after(prev_ts), t >= last_day))
            prev_ts = t
    return PastPlan(spec, now_ms, daily, day_trades, steps, emit_after(prev_ts), last_day)


def _window_start(starts_desc: list[int], span: int, now_ms: int, bars: int) -> int:
    """Open time of the oldest published bar, given the bars' open times newest first."""
    keep = bars + 1 if starts_desc and now_ms < starts_desc[0] + span else bars  # + the forming one
    kept = starts_desc[: max(keep, 1)]
    return kept[-1]


def walk_past(inst: Instrument, plan: PastPlan, source: str) -> list[Event]:
    """Walk a fresh instrument through the plan; the seeded events, in time order per stream."""
    spec = plan.spec
    symbol = inst.symbol
    bars = inst.bars
    line = inst.line
    closed: list[Kline] = []
    ticks: list[Tick] = []
    if plan.daily:
        for (ts, emit), (o, h, lo, c, volume, amount_t) in zip(
            plan.daily, daily_walk(inst, len(plan.daily), plan.day_trades), strict=True
        ):
            if emit:
                closed.extend(bars.roll(ts, emit))
            bars.add_print(ts, o / 100, h / 100, lo / 100, c / 100, volume, amount_t / 100, ())
    trades: list[Trade] = []
    tick = spec.tick
    for ts, updates, emit, on_line in plan.steps:
        if emit:
            closed.extend(bars.roll(ts, emit))
        if updates:
            printed = inst.step_span(ts, updates)
        else:
            printed = inst.step(ts, local_iso(ts, inst.tz), trades=True)
            trades.extend(printed.trades)
        bars.add_print(ts, printed.open, printed.high, printed.low, printed.close, printed.volume, printed.amount, ())
        if on_line:
            if tick:
                ticks.extend(line.roll(ts, True))
            line.add(ts, printed.close, printed.volume, printed.amount, False)
    now_ms = plan.now_ms
    closed.extend(bars.roll(now_ms, plan.final))
    forming = bars.forming(plan.final)
    out: list[Event] = []
    for p in spec.periods:
        out.extend(KlineEvent(symbol=symbol, source=source, kline=k) for k in closed if k.period == p)
        out.extend(KlineEvent(symbol=symbol, source=source, kline=k) for k in forming if k.period == p)
    if tick:
        ticks.extend(line.roll(now_ms, True))
        ticks.extend(line.forming())
        out.extend(TickEvent(symbol=symbol, source=source, tick=t) for t in ticks)
    if spec.trades:
        out.extend(TradeEvent(symbol=symbol, source=source, trade=t) for t in trades[-spec.trades :])
    if spec.quote:
        out.append(QuoteEvent(symbol=symbol, source=source, quote=inst.quote(local_iso(now_ms, inst.tz))))
    return out


def daily_walk(inst: Instrument, days: int, day_trades: float) -> list[tuple[int, int, int, int, int, int]]:
    """`days` daily bars (open, high, low, close in ticks, volume, turnover in ticks × shares),
    oldest first, whose last close is the instrument's starting price.

    Run backwards from that price: each close lies within the ±10% limit of the one before,
    open/high/low within it too.
    """
    gauss = inst.rng.gauss
    rand = inst.rng.random
    sigma = min(DAILY_VOLATILITY, VOLATILITY * math.sqrt(max(day_trades, 1.0)))
    lots_mean = max(day_trades, 1.0) * LOTS_PER_TRADE
    close = inst.prev_close_t
    out = []
    for _ in range(days):
        r = max(-0.095, min(0.095, gauss(0.0, sigma)))
        prev = round(close / (1.0 + r))
        if prev < _MIN_TICKS:
            prev = max(_MIN_TICKS, round(close / (1.0 - abs(r))))
        while close > prev + int(prev * LIMIT):  # rounding: bring close back inside the limit
            prev += 1
        while close < prev - int(prev * LIMIT):
            prev -= 1
        lo, hi = prev - int(prev * LIMIT), prev + int(prev * LIMIT)
        open_ = min(hi, max(lo, prev + round(gauss(0.0, prev * sigma / 4))))
        d = close - open_
        s2 = (prev * sigma) ** 2
        high = open_ + round((d + math.sqrt(d * d - 2 * s2 * math.log(1.0 - rand()))) / 2)
        low = open_ + round((d - math.sqrt(d * d - 2 * s2 * math.log(1.0 - rand()))) / 2)
        high = min(hi, max(high, open_, close))
        low = max(lo, min(low, open_, close))
        volume = max(1, round(lots_mean * (1.0 + 0.3 * gauss(0.0, 1.0)))) * LOT
        out.append((open_, high, low, close, volume, (open_ + high + low + close) // 4 * volume))
        close = prev
    out.reverse()
    return out
