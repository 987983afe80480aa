"""The live market: every live symbol's day in arrays, a step's symbols updated together.

`Instrument` (market.py) is a symbol's record and its walk one update at a time, which the past
walk uses; while a symbol is live its day lives here instead, so an update costs a share of a few
array operations rather than a dozen Python calls. A step draws exactly what `Instrument.step`
would (draws.py: the same words for the same update number) and applies the same model, so the
two walks agree to the tick (tests/mock). `store` writes a slot back into its Instrument when the
scalar side needs it (a quote looked at); `leave` does so for good.

Bars and 分时 stay in each Instrument's builders. A symbol whose bars nobody is sent right now
does not feed them every update: its minute is gathered here (`take`, `_gather`) and fed as one print
when the minute ends or when its bars are wanted, which the builders fold exactly as the
updates one by one (open of the first, extremes, close of the last, summed totals).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import tzinfo
from typing import Any

import numpy as np
import numpy.typing as npt
from argus_ingestor.bars import bucket_end_ms, bucket_start_ms
from argus_ingestor.quoteblock import QuoteBlock
from argus_protocol import Quote, Trade

from .draws import words_array
from .market import LEVELS, LIMIT, LOT, SPREAD, VOLATILITY, VOLUME_ROWS, Instrument, Ladders, Print, book_levels

I64 = npt.NDArray[np.int64]
_TRADE_ROWS = np.arange(3)[:, None]
_LOWEST, _HIGHEST = np.iinfo(np.int64).min, np.iinfo(np.int64).max
_LEVELS = np.arange(LEVELS)
_MOST_KEPT = 64  # slices of the update order whose slots are kept (25 steps a second at most, and urgent ones)
VOLUME_TABLE = np.array(VOLUME_ROWS, np.int64)  # market.VOLUME_ROWS, for a block's book at once

_COLUMNS = (
    "last", "open", "high", "low", "prev", "lo", "hi", "volume", "amount", "trade_no", "day_end", "look",
    "d_minute", "d_ts", "d_open", "d_high", "d_low", "d_close", "d_volume", "d_amount",
)  # fmt: skip


@dataclass(slots=True)
class Stepped:
    """One step's trades (position i for the i-th slot asked for; prices in ticks) and the minutes
    it ended; the day's new state is in the LiveMarket."""

    before: I64  # the last price before the update
    trades: I64  # 1-3
    prices: I64  # 3 × n: each trade's price (a trade past `trades` repeats the last)
    volumes: I64  # 3 × n (0 past `trades`)
    bits: I64  # 3 × n: each trade's 32 bits (the side of an unchanged price)
    trade_no: I64  # the trade count before this update: its trades are numbered from trade_no + 1
    # minutes gathered for symbols not fed every update that ended with this step: (position, print at, print)
    ended: list[tuple[int, int, Print]]
    _lists: list[Any] = field(default_factory=list)

    def trades_of(self, pos: int, when: str) -> list[Trade]:
        """The trades of position `pos`'s update, as `Instrument.step` numbers and sides them."""
        if not self._lists:  # as Python values once per step, and only when some trades are wanted
            self._lists = [a.tolist() for a in (self.trades, self.trade_no, self.before, *self.prices, *self.volumes)]
            self._lists.append([(b >> 31 & 1).tolist() for b in self.bits])
        counts, numbers, before, p0, p1, p2, v0, v1, v2, ups = self._lists
        prior = before[pos]
        done = numbers[pos]
        out: list[Trade] = []
        for i, (prices, volumes) in enumerate(((p0, v0), (p1, v1), (p2, v2))[: counts[pos]]):
            at = prices[pos]
            up = at > prior or (at == prior and ups[i][pos])
            out.append(
                Trade(
                    time=when, price=at / 100, volume=volumes[pos], side="B" if up else "S", trade_id=str(done + 1 + i)
                )
            )
            prior = at
        return out


class LiveMarket:
    __slots__ = ("_draws", "_free", "_kept", "_keys", "_ladders", "_slot", "_tz", *_COLUMNS)

    # one entry per slot: the day (prices in ticks, amount in ticks × shares) ...
    last: I64
    open: I64
    high: I64
    low: I64
    prev: I64
    lo: I64  # the day's limits
    hi: I64
    volume: I64
    amount: I64
    trade_no: I64
    day_end: I64
    look: I64  # the book's bits of the last update
    # ... and the updates gathered since the symbol's bars were last fed (d_minute -1: none)
    d_minute: I64
    d_ts: I64
    d_open: I64
    d_high: I64
    d_low: I64
    d_close: I64
    d_volume: I64
    d_amount: I64

    def __init__(self, tz: tzinfo, ladders: Ladders, capacity: int = 64) -> None:
        self._tz = tz
        self._ladders = ladders
        self._slot: dict[str, int] = {}
        self._kept: dict[tuple[int, str], tuple[list[str], I64]] = {}  # slots(): a step's slice -> its slots
        self._free: list[int] = []
        self._keys = np.zeros(0, np.uint64)
        self._draws = np.zeros(0, np.uint64)
        for name in _COLUMNS:
            setattr(self, name, np.zeros(0, np.int64))
        self._grow(capacity)

    def __len__(self) -> int:
        return len(self._slot)

    def __contains__(self, symbol: str) -> bool:
        return symbol in self._slot

    def slots(self, symbols: list[str]) -> I64:
        """The slots of `symbols`, read-only. A step's slice of the update order repeats every
        second: its array is kept until a symbol joins or leaves (500 look-ups a step, on a core
        whose caches the gateway had meanwhile, cost ~0.4 µs a quote)."""
        key = (len(symbols), symbols[0] if symbols else "")
        kept = self._kept.get(key)
        if kept is not None and kept[0] == symbols:
            return kept[1]
        found = np.fromiter(map(self._slot.__getitem__, symbols), np.int64, len(symbols))
        found.flags.writeable = False
        if len(self._kept) >= _MOST_KEPT:
            self._kept.clear()
        self._kept[key] = (list(symbols), found)
        return found

    def _grow(self, capacity: int) -> None:
        have = len(self._keys)
        self._keys = np.resize(self._keys, capacity)
        self._draws = np.resize(self._draws, capacity)
        for name in _COLUMNS:
            setattr(self, name, np.resize(getattr(self, name), capacity))
        self._free.extend(range(capacity - 1, have - 1, -1))

    # joining and leaving ----------------------------------------------------------------------
    def join(self, inst: Instrument) -> None:
        """The symbol's day goes on here from the state its Instrument holds."""
        if inst.symbol in self._slot:
            return
        if not self._free:
            self._grow(2 * len(self._keys))
        i = self._slot[inst.symbol] = self._free.pop()
        self._kept.clear()  # a slot taken: kept slices may hold what it was before
        self._keys[i] = inst.key
        self._draws[i] = inst.draws
        self.last[i], self.open[i], self.high[i], self.low[i] = inst.last_t, inst.open_t, inst.high_t, inst.low_t
        self.prev[i], self.lo[i], self.hi[i] = inst.prev_close_t, inst.lo_t, inst.hi_t
        self.volume[i], self.amount[i], self.trade_no[i] = inst.volume, inst.amount_t, inst.trade_no
        self.day_end[i], self.look[i] = inst.day_end, inst.look
        self._empty(i)

    def leave(self, inst: Instrument) -> None:
        """Back to its Instrument (its gathered minute fed to its builders, silently)."""
        i = self._slot.pop(inst.symbol, None)
        if i is None:
            return
        self._store(i, inst)
        gathered = self._take(i)
        if gathered is not None:
            inst.feed(gathered[0], gathered[1])
        self._free.append(i)
        self._kept.clear()

    def store(self, inst: Instrument) -> None:
        """Write the symbol's day into its Instrument (a quote looked at, bars rolled)."""
        self._store(self._slot[inst.symbol], inst)

    def _store(self, i: int, inst: Instrument) -> None:
        inst.draws = int(self._draws[i])
        inst.last_t, inst.open_t, inst.high_t, inst.low_t = (
            int(self.last[i]), int(self.open[i]), int(self.high[i]), int(self.low[i]),
        )  # fmt: skip
        inst.prev_close_t = int(self.prev[i])
        inst.volume, inst.amount_t, inst.trade_no = int(self.volume[i]), int(self.amount[i]), int(self.trade_no[i])
        inst.day_end, inst.look = int(self.day_end[i]), int(self.look[i])

    def take(self, symbol: str) -> tuple[int, Print] | None:
        """The symbol's gathered updates as one print (and when the last was), emptied; None if none."""
        return self._take(self._slot[symbol])

    def _take(self, i: int) -> tuple[int, Print] | None:
        if self.d_minute[i] < 0:
            return None
        taken = (
            int(self.d_ts[i]),
            _print(self.d_open[i], self.d_high[i], self.d_low[i], self.d_close[i], self.d_volume[i], self.d_amount[i]),
        )
        self._empty(i)
        return taken

    def _empty(self, i: int) -> None:
        """Nothing gathered: set so that the next update's values replace these (`_gather`)."""
        self.d_minute[i] = self.d_open[i] = -1
        self.d_high[i], self.d_low[i] = _LOWEST, _HIGHEST
        self.d_volume[i] = self.d_amount[i] = 0

    # a step ---------------------------------------------------------------------------------
    def step(self, s: I64, now_ms: int) -> Stepped:
        """Update the symbols in slots `s` (no slot twice) once each, as `Instrument.step` would."""
        new_day = self.day_end[s] <= now_ms
        if new_day.any():
            self._new_day(s[new_day], now_ms)
        lo, hi, last = self.lo[s], self.hi[s], self.last[s]
        drawn = words_array(self._keys[s], self._draws[s])  # 3 × n
        self._draws[s] += np.uint64(1)
        w0 = drawn[0]
        trades = (1 + ((w0 & np.uint64(0xFF)) * np.uint64(3) >> np.uint64(8))).astype(np.int64)
        scale = last * VOLATILITY * SPREAD / 4096.0  # the same float operations, in the same order
        # all three trades' moves and volumes at once (rows), then walked in order, clamped each time
        bits = (drawn >> np.uint64(8) & np.uint64(0xFFFFFFFF)).astype(np.int64)
        moves = (((bits & 0xFFF) - (bits >> 12 & 0xFFF)) * scale + 1_000_000.5).astype(np.int64) - 1_000_000
        on = _TRADE_ROWS < trades  # trade i happens when the update has more than i
        volumes = (1 + ((bits >> 24 & 0x7F) * 50 >> 7)) * LOT * on
        prices = np.empty_like(moves)
        price = last
        for i in range(3):
            price = prices[i] = np.where(on[i], np.clip(price + moves[i], lo, hi), price)  # past the last: unchanged
        first = prices[0]
        high, low = prices.max(axis=0), prices.min(axis=0)
        volume = volumes.sum(axis=0)
        amount = (prices * volumes).sum(axis=0)
        # the day so far (Instrument._book_print)
        fresh = self.volume[s] == 0
        self.open[s] = np.where(fresh, first, self.open[s])
        self.high[s] = np.maximum(np.where(fresh, first, self.high[s]), high)
        self.low[s] = np.minimum(np.where(fresh, first, self.low[s]), low)
        self.last[s] = price
        self.volume[s] += volume
        self.amount[s] += amount
        trade_no = self.trade_no[s]
        self.trade_no[s] = trade_no + trades
        self.look[s] = (w0 >> np.uint64(40) | (drawn[2] >> np.uint64(63)) << np.uint64(24)).astype(np.int64)
        ended = self._gather(s, now_ms, first, high, low, price, volume, amount)
        return Stepped(last, trades, prices, volumes, bits, trade_no, ended)

    def quotes(self, s: I64, symbols: list[str], when: str, book: bool) -> tuple[QuoteBlock, list[tuple[int, Quote]]]:
        """The quotes of slots `s` (`symbols`) as they stand (Instrument.quote, for many at once): one
        block, but for those whose book the ±10 % limit cuts short: (position, Quote) each."""
        levels = _LEVELS if book else _LEVELS[:0]  # without depth (a source like Yahoo's): no levels
        look = self.look[s]
        touch = np.maximum(self.last[s] - (look >> 24), np.maximum(self.lo[s], 5))  # market.touch
        partial: list[tuple[int, Quote]] = []
        if book:
            whole = (touch - 4 >= self.lo[s]) & (touch + 5 <= self.hi[s])
            if not whole.all():
                partial = [(pos, self._cut_quote(int(s[pos]), when)) for pos in np.flatnonzero(~whole).tolist()]
                s, touch, look = s[whole], touch[whole], look[whole]
                symbols = [sym for sym, keep in zip(symbols, whole.tolist(), strict=True) if keep]
        depth = len(levels)
        block = QuoteBlock(
            symbols=symbols,
            timestamp=when,
            price=self.last[s] / 100,
            open=self.open[s] / 100,
            high=self.high[s] / 100,
            low=self.low[s] / 100,
            prev_close=self.prev[s] / 100,
            volume=self.volume[s],
            amount=self.amount[s] / 100,
            bid_prices=(touch[:, None] - levels) / 100,
            bid_volumes=VOLUME_TABLE[look & 0xFFF, :depth],
            ask_prices=(touch[:, None] + 1 + levels) / 100,
            ask_volumes=VOLUME_TABLE[look >> 12 & 0xFFF, :depth],
        )
        return block, partial

    def _cut_quote(self, i: int, when: str) -> Quote:
        """Slot i's quote with the book the price limits leave (market.book_levels)."""
        bid_prices, bid_volumes, ask_prices, ask_volumes = book_levels(
            int(self.last[i]), int(self.lo[i]), int(self.hi[i]), int(self.look[i]), self._ladders
        )
        return Quote(
            price=int(self.last[i]) / 100,
            open=int(self.open[i]) / 100,
            high=int(self.high[i]) / 100,
            low=int(self.low[i]) / 100,
            prev_close=int(self.prev[i]) / 100,
            volume=int(self.volume[i]),
            amount=int(self.amount[i]) / 100,
            timestamp=when,
            bid_prices=bid_prices,
            bid_volumes=bid_volumes,
            ask_prices=ask_prices,
            ask_volumes=ask_volumes,
        )

    def _gather(
        self, s: I64, now_ms: int, first: I64, high: I64, low: I64, close: I64, volume: I64, amount: I64
    ) -> list[tuple[int, int, Print]]:
        """Add this update to each symbol's gathered minute; hand back the minutes it ended."""
        minute = bucket_start_ms(now_ms, 60, self._tz)
        had = self.d_minute[s]
        ended: list[tuple[int, int, Print]] = []
        for pos in np.flatnonzero((had >= 0) & (had != minute)).tolist():
            gathered = self._take(int(s[pos]))
            assert gathered is not None
            ended.append((pos, *gathered))
        d_open = self.d_open[s]
        self.d_open[s] = np.where(d_open < 0, first, d_open)
        self.d_high[s] = np.maximum(self.d_high[s], high)
        self.d_low[s] = np.minimum(self.d_low[s], low)
        self.d_close[s] = close
        self.d_volume[s] += volume
        self.d_amount[s] += amount
        self.d_minute[s] = minute
        self.d_ts[s] = now_ms
        return ended

    def _new_day(self, s: I64, now_ms: int) -> None:
        """Instrument._new_day for these slots: yesterday's close carries over, totals restart."""
        carry = s[self.day_end[s] >= 0]  # not the symbol's first day
        self.prev[carry] = self.last[carry]
        prev = self.prev[s]
        self.lo[s] = prev - (prev * LIMIT).astype(np.int64)
        self.hi[s] = prev + (prev * LIMIT).astype(np.int64)
        self.day_end[s] = bucket_end_ms(bucket_start_ms(now_ms, 86400, self._tz), 86400, self._tz)
        self.volume[s] = 0
        self.amount[s] = 0


def _print(first: int, high: int, low: int, close: int, volume: int, amount_t: int) -> Print:
    return Print(
        [], int(first) / 100, int(high) / 100, int(low) / 100, int(close) / 100, int(volume), int(amount_t) / 100
    )
