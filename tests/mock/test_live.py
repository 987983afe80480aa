"""The live market steps many symbols at once exactly as each Instrument alone would step."""

from __future__ import annotations

from datetime import datetime

from argus_ingestor_mock.live import LiveMarket
from argus_ingestor_mock.market import Instrument, Ladders, local_iso
from argus_protocol import BEIJING, PERIODS

START = int(datetime(2026, 11, 23, 23, 50, tzinfo=BEIJING).timestamp() * 1000)  # ten minutes before midnight


def instruments(n: int, ladders: Ladders) -> list[Instrument]:
    out = [Instrument(f"{i:06d}.SZ", seed=3, ladders=ladders) for i in range(1, n + 1)]
    for inst in out[:4]:  # a few start at the limits: clamped trades, books cut short
        inst.last_t = inst.hi_t - 1 if inst.symbol < "000003" else inst.lo_t + 1
    return out


def test_a_batched_step_is_the_scalar_step_to_the_tick_across_minutes_limits_and_midnight() -> None:
    ladders = Ladders()
    alone, together = instruments(40, ladders), instruments(40, ladders)
    live = LiveMarket(BEIJING, ladders)
    for inst in together:
        live.join(inst)
    symbols = [inst.symbol for inst in together]
    closed_alone: list[tuple[str, object]] = []
    closed_together: list[tuple[str, object]] = []
    short = 0
    for k in range(1500):  # 20-minute span, 800 ms apart: over midnight, minutes end mid-way through
        now = START + k * 800
        when = local_iso(now, BEIJING)
        due = symbols[k % 3 :: 3] if k % 5 else symbols  # slices, and now and then everyone
        slots = live.slots(due)
        step = live.step(slots, now)
        for pos, at, gathered in step.ended:
            inst = together[symbols.index(due[pos])]
            inst.feed(at, gathered, (), False, True)
            klines, ticks = inst.roll(now, (), False, True)
            closed_together += [(inst.symbol, b) for b in [*klines, *ticks]]
        block, cut = live.quotes(slots, due, when, True)
        quotes = {e.symbol: e.quote for e in block.events()} | {due[pos]: q for pos, q in cut}
        assert len(quotes) == len(due) and block.levels == 5
        for pos, sym in enumerate(due):
            inst = alone[symbols.index(sym)]
            printed = inst.step(now, when)
            klines, ticks = inst.feed(now, printed, (), False, True)
            closed_alone += [(sym, b) for b in [*klines, *ticks]]
            assert quotes[sym] == inst.quote(when), (k, sym)
            short += min(len(quotes[sym].bid_prices), len(quotes[sym].ask_prices)) < 5
            assert step.trades_of(pos, when) == printed.trades, (k, sym)
    # the bars each way: the same closed bars and minutes; and the days are the same when stored back
    key = lambda item: (item[0], type(item[1]).__name__, getattr(item[1], "period", ""))  # noqa: E731
    assert sorted(closed_together, key=key) == sorted(closed_alone, key=key)
    assert len({b.period for _, b in closed_alone if hasattr(b, "period")}) >= 3  # 1m, 5m, 15m ... and 1d at midnight
    assert any(getattr(b, "period", "") == "1d" for _, b in closed_alone)
    for a, b in zip(alone, together, strict=True):
        live.leave(b)
        assert a.quote("x") == b.quote("x")
        assert a.bars.forming(PERIODS) == b.bars.forming(PERIODS) and a.line.forming() == b.line.forming()
        assert (a.draws, a.trade_no, a.day_end) == (b.draws, b.trade_no, b.day_end)
    assert short > 0  # the books cut short at a limit were compared too


def test_the_slots_kept_for_a_slice_follow_a_symbol_that_left_and_came_back() -> None:
    ladders = Ladders()
    live = LiveMarket(BEIJING, ladders)
    a, b, c = instruments(3, ladders)
    assert len({a.last, b.last, c.last}) == 3
    live.join(a)
    live.join(b)
    pair = [a.symbol, b.symbol]
    live.slots(pair)  # kept for the next step of the same slice
    live.leave(a)
    live.join(c)  # takes the slot `a` left
    live.join(a)
    block, _ = live.quotes(live.slots(pair), pair, "2026-12-03T10:00:00.000+08:00", False)
    assert block.price.tolist() == [a.last, b.last]
