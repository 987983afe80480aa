"""The simulated instrument: a random walk with a consistent book, volumes, bars and 分时.

Everything about a symbol follows from its state and its own random generator, seeded from the
run's seed and the symbol, so a run with `--seed` is repeatable symbol by symbol.
"""

from __future__ import annotations

import math
import random
import zlib
from datetime import datetime, tzinfo

from argus_ingestor.bars import KlineBuilder, MinuteLine
from argus_protocol import BEIJING, PERIODS, Quote, Trade

TICK = 0.01
LOT = 100
LEVELS = 5


def base_price(symbol: str) -> float:
    """A plausible, stable starting price for any symbol (5.00 .. 104.99)."""
    return round(5 + (zlib.crc32(symbol.encode()) % 10000) / 100, 2)


def local_iso(now_ms: int, tz: tzinfo) -> str:
    return datetime.fromtimestamp(now_ms / 1000, tz).isoformat(timespec="milliseconds")


def _round(price: float) -> float:
    return round(round(price / TICK) * TICK, 2)


class Print:
    """What one update traded: the trades and their aggregate for the bar builders."""

    __slots__ = ("amount", "price", "trades", "volume")

    def __init__(self) -> None:
        self.trades: list[Trade] = []
        self.volume = 0
        self.amount = 0.0
        self.price = 0.0


class Instrument:
    __slots__ = (
        "amount",
        "bars",
        "high",
        "last",
        "line",
        "low",
        "open",
        "prev_close",
        "rng",
        "symbol",
        "trade_no",
        "tz",
        "volume",
    )

    def __init__(self, symbol: str, seed: int | None, tz: tzinfo = BEIJING) -> None:
        self.symbol = symbol
        self.tz = tz
        key = f"{seed}:{symbol}".encode()
        self.rng = random.Random(zlib.crc32(key) if seed is not None else None)
        self.prev_close = base_price(symbol)
        self.open = self.last = self.high = self.low = self.prev_close
        self.volume = 0
        self.amount = 0.0
        self.trade_no = 0
        self.bars = KlineBuilder(PERIODS, tz)
        self.line = MinuteLine(tz)

    def step(self, now_ms: int, when: str | None = None) -> Print:
        """Trade 1-3 times around a random walk bounded by the ±10% daily limit.

        `when` is now_ms formatted in the market's time; callers updating many symbols at one
        instant format it once.
        """
        rng = self.rng
        rand = rng.random
        out = Print()
        lo, hi = _round(self.prev_close * 0.9), _round(self.prev_close * 1.1)
        if when is None:
            when = local_iso(now_ms, self.tz)
        for _ in range(1 + int(rand() * 3)):
            price = _round(min(hi, max(lo, self.last * math.exp(rng.gauss(0, 0.0008)))))
            volume = (1 + int(rand() * 50)) * LOT
            side = "B" if price > self.last else "S" if price < self.last else ("B" if rand() < 0.5 else "S")
            self.trade_no += 1
            self.last = price
            out.trades.append(Trade(time=when, price=price, volume=volume, side=side, trade_id=str(self.trade_no)))  # type: ignore[arg-type]
            out.volume += volume
            out.amount += price * volume
        if self.volume == 0:
            self.open = self.high = self.low = out.trades[0].price
        self.high = max(self.high, *(t.price for t in out.trades))
        self.low = min(self.low, *(t.price for t in out.trades))
        self.volume += out.volume
        self.amount += out.amount
        out.price = self.last
        return out

    def quote(self, now_ms: int, when: str | None = None) -> Quote:
        rand = self.rng.random
        # The last trade sits at the touch: bid1 just below it (or at it), ask1 one tick above bid1.
        bid1 = _round(self.last - TICK) if rand() < 0.5 else self.last
        return Quote(
            price=self.last,
            open=self.open,
            high=self.high,
            low=self.low,
            prev_close=self.prev_close,
            volume=self.volume,
            amount=round(self.amount, 2),
            timestamp=when if when is not None else local_iso(now_ms, self.tz),
            bid_prices=[_round(bid1 - TICK * i) for i in range(LEVELS)],
            bid_volumes=[(1 + int(rand() * 200)) * LOT for _ in range(LEVELS)],
            ask_prices=[_round(bid1 + TICK * (i + 1)) for i in range(LEVELS)],
            ask_volumes=[(1 + int(rand() * 200)) * LOT for _ in range(LEVELS)],
        )
