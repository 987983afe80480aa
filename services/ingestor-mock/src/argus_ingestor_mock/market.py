"""The simulated instrument: a random walk with a consistent book, volumes, bars and 分时.

Prices are held as integer ticks (0.01), so every published price sits exactly on the tick and
turnover adds up exactly. Everything about a symbol follows from its state and its own random
draws, keyed by the run's seed and the symbol: a run with `--seed` is repeatable symbol by symbol,
whatever else is wanted. An update's draws (draws.py: its trades and its book) depend only on the
update's number, so publishing or looking at quotes never changes the prices, and the live market
(live.py), which steps many symbols at once, walks exactly as `step` does; the past's aggregate
steps (`step_span`) draw from a generator of their own.

Per instrument, every update feeds the klines of all six periods and the 分时 line (cheap
accumulators); payloads are built only for what the caller asks for. The trading day rolls over
at local midnight: the last price becomes `prev_close`, cumulative volume and turnover restart.
"""

from __future__ import annotations

import math
import random
import zlib
from collections.abc import Collection
from datetime import datetime, tzinfo

from argus_ingestor.bars import KlineBuilder, MinuteLine, bucket_end_ms, bucket_start_ms
from argus_protocol import BEIJING, PERIODS, Kline, Quote, Tick, Trade

from .draws import MASK, symbol_key, words

TICK = 0.01
TICKS_PER_UNIT = 100
LOT = 100
LEVELS = 5
LIMIT = 0.10  # ±10% daily price limit around prev_close
VOLATILITY = 0.0008  # per trade, relative standard deviation
SPREAD = 6**0.5  # (u1 - u2) of two uniforms has standard deviation 1/sqrt(6)
LOTS_PER_TRADE = 25.5  # mean lots per trade: 1 + uniform 0..49
_LOTS_VAR = (50**2 - 1) / 12


def base_ticks(symbol: str) -> int:
    """A plausible, stable starting price in ticks for any symbol (5.00 .. 104.99)."""
    return 500 + zlib.crc32(symbol.encode()) % 10000


def base_price(symbol: str) -> float:
    return base_ticks(symbol) / TICKS_PER_UNIT


def local_iso(now_ms: int, tz: tzinfo) -> str:
    return datetime.fromtimestamp(now_ms / 1000, tz).isoformat(timespec="milliseconds")


class Print:
    """What one update traded: its trades (when asked for) and aggregate, in prices not ticks."""

    __slots__ = ("amount", "close", "high", "low", "open", "trades", "volume")

    def __init__(
        self, trades: list[Trade], open: float, high: float, low: float, close: float, volume: int, amount: float
    ) -> None:
        self.trades = trades
        self.open, self.high, self.low, self.close = open, high, low, close
        self.volume = volume
        self.amount = amount


class Instrument:
    __slots__ = (
        "_prev_t",
        "amount_t",
        "bars",
        "day_end",
        "draws",
        "hi_t",
        "high_t",
        "key",
        "ladders",
        "last_t",
        "line",
        "lo_t",
        "look",
        "low_t",
        "open_t",
        "rng",
        "symbol",
        "trade_no",
        "tz",
        "volume",
    )

    def __init__(self, symbol: str, seed: int | None, tz: tzinfo = BEIJING, ladders: Ladders | None = None) -> None:
        self.symbol = symbol
        self.ladders = ladders if ladders is not None else Ladders()
        self.tz = tz
        if seed is None:
            self.rng = random.Random()
            self.key = random.getrandbits(64)
        else:
            self.rng = random.Random(zlib.crc32(f"{seed}:{symbol}".encode()))  # the past's aggregate walk
            self.key = symbol_key(seed, symbol)  # the live walk's draws (draws.py)
        self.draws = 0  # updates stepped: the live walk's place in its draws
        self.look = words(self.key, MASK)[0] >> 39  # the book's bits before any update
        self.prev_close_t = base_ticks(symbol)
        self.open_t = self.last_t = self.high_t = self.low_t = self.prev_close_t
        self.volume = 0
        self.amount_t = 0  # turnover in ticks × shares: exact
        self.trade_no = 0
        self.day_end = -1
        self.bars = KlineBuilder(PERIODS, tz)
        self.line = MinuteLine(tz)

    # prices as published ------------------------------------------------------------------
    @property
    def last(self) -> float:
        return self.last_t / TICKS_PER_UNIT

    @property
    def prev_close(self) -> float:
        return self.prev_close_t / TICKS_PER_UNIT

    @property
    def amount(self) -> float:
        return self.amount_t / TICKS_PER_UNIT

    def _new_day(self, now_ms: int) -> None:
        day = bucket_start_ms(now_ms, 86400, self.tz)
        if self.day_end >= 0:  # not the first day of this instrument: yesterday's close carries over
            self.prev_close_t = self.last_t
        self.day_end = bucket_end_ms(day, 86400, self.tz)
        self.volume = 0
        self.amount_t = 0

    @property
    def prev_close_t(self) -> int:
        return self._prev_t

    @prev_close_t.setter
    def prev_close_t(self, ticks: int) -> None:
        """Also the day's ±10% price limits, which follow from it."""
        self._prev_t = ticks
        self.lo_t = ticks - int(ticks * LIMIT)
        self.hi_t = ticks + int(ticks * LIMIT)

    def step(self, now_ms: int, when: str | None = None, trades: bool = True) -> Print:
        """Trade 1-3 times around a random walk bounded by the ±10% daily limit.

        `when` is now_ms formatted in the market's time; callers updating many symbols at one
        instant format it once. `trades=False` skips building the Trade payloads (the walk, the
        trade ids and the totals are the same either way).
        """
        if now_ms >= self.day_end:
            self._new_day(now_ms)
        lo, hi = self.lo_t, self.hi_t
        last = self.last_t
        scale = last * VOLATILITY * SPREAD / 4096.0
        drawn = words(self.key, self.draws)  # 8 bits pick 1-3 trades, 32 bits per trade, 25 the book
        self.draws += 1
        w0 = drawn[0]
        self.look = w0 >> 40 | (drawn[2] >> 63) << 24
        n = 1 + ((w0 & 0xFF) * 3 >> 8)
        price = last
        first = high = low = volume = amount_t = 0
        prints: list[tuple[int, int, int]] = []  # (price, volume, bits) of each trade, when they are wanted
        for i in range(n):
            r = drawn[i] >> 8 & 0xFFFFFFFF
            # a cheap bell-ish move (difference of two 12-bit uniforms), rounded to the tick
            p = price + int(((r & 0xFFF) - (r >> 12 & 0xFFF)) * scale + 1_000_000.5) - 1_000_000
            price = lo if p < lo else hi if p > hi else p
            vol = (1 + ((r >> 24 & 0x7F) * 50 >> 7)) * LOT
            if trades:
                prints.append((price, vol, r))
            if i == 0:
                first = high = low = price
            elif price > high:
                high = price
            elif price < low:
                low = price
            volume += vol
            amount_t += price * vol
        done = self.trade_no
        self.trade_no = done + n
        out: list[Trade] = []
        if trades:
            if when is None:
                when = local_iso(now_ms, self.tz)
            before = last
            for i, (at, lots, bits) in enumerate(prints, done + 1):
                side = "B" if at > before else "S" if at < before else ("B" if bits >> 31 & 1 else "S")
                out.append(Trade(time=when, price=at / 100, volume=lots, side=side, trade_id=str(i)))  # type: ignore[arg-type]
                before = at
        return self._book_print(out, first, high, low, price, volume, amount_t)

    def _book_print(
        self, trades: list[Trade], first: int, high: int, low: int, last: int, volume: int, amount_t: int
    ) -> Print:
        """One update's trading into the day (open, extremes, last, totals), and as a Print, in prices."""
        if self.volume == 0:
            self.open_t = self.high_t = self.low_t = first
        if high > self.high_t:
            self.high_t = high
        if low < self.low_t:
            self.low_t = low
        self.last_t = last
        self.volume += volume
        self.amount_t += amount_t
        return Print(trades, first / 100, high / 100, low / 100, last / 100, volume, amount_t / 100)

    def step_span(self, now_ms: int, updates: float) -> Print:
        """What `updates` consecutive `step()`s would trade, drawn at once (the past walk's step).

        The aggregate follows the same model: 1-3 trades per update, each a move of `VOLATILITY`
        and 1-50 lots, clamped to the daily limit; high and low are the extremes of a Brownian
        bridge from the first trade to the last. No Trade payloads; the day's totals, the walk and
        the trade ids advance as if the trades had happened.
        """
        if now_ms >= self.day_end:
            self._new_day(now_ms)
        gauss = self.rng.gauss
        rand = self.rng.random
        lo, hi = self.lo_t, self.hi_t
        last = self.last_t
        trades = max(1, round(2 * updates + gauss(0.0, 1.0) * (updates * 2 / 3) ** 0.5))
        step = last * VOLATILITY
        first = min(hi, max(lo, last + round(gauss(0.0, step))))
        sigma2 = step * step * trades
        close = min(hi, max(lo, first + round(gauss(0.0, sigma2**0.5))))
        d = close - first
        high = first + round((d + math.sqrt(d * d - 2 * sigma2 * math.log(1.0 - rand()))) / 2)
        low = first + round((d - math.sqrt(d * d - 2 * sigma2 * math.log(1.0 - rand()))) / 2)
        high = min(hi, max(high, first, close))
        low = max(lo, min(low, first, close))
        lots = max(trades, round(trades * LOTS_PER_TRADE + gauss(0.0, 1.0) * (trades * _LOTS_VAR) ** 0.5))
        volume = lots * LOT
        amount_t = (first + high + low + close) // 4 * volume  # a VWAP on the tick, within the range
        self.trade_no += trades
        return self._book_print([], first, high, low, close, volume, amount_t)

    def feed(
        self, now_ms: int, printed: Print, periods: Collection[str] = (), tick: bool = False, keep: bool = False
    ) -> tuple[list[Kline], list[Tick]]:
        """Feed an update into the klines and 分时; return the payloads of `periods` (and `tick`),
        and with `keep` every finished bar and minute too, so retention holds the whole day."""
        klines = self.bars.add_print(
            now_ms,
            printed.open,
            printed.high,
            printed.low,
            printed.close,
            printed.volume,
            printed.amount,
            periods,
            PERIODS if keep else None,
        )
        ticks = self.line.add(now_ms, printed.close, printed.volume, printed.amount, tick, keep or tick)
        return klines, ticks

    def roll(
        self, now_ms: int, periods: Collection[str] = (), tick: bool = False, keep: bool = False
    ) -> tuple[list[Kline], list[Tick]]:
        """Close bars and the 分时 minute that ended without trades (market closed, symbol idle)."""
        return self.bars.roll(now_ms, periods, PERIODS if keep else None), self.line.roll(now_ms, tick or keep)

    def quote(self, when: str, book: bool = True) -> Quote:
        """The quote after the last update (its book drawn with that update: looking draws nothing)."""
        last = self.last_t
        # without depth (a source like Yahoo's, an index feed): empty levels, which are not sent
        if book:
            bid_prices, bid_volumes, ask_prices, ask_volumes = book_levels(
                last, self.lo_t, self.hi_t, self.look, self.ladders
            )
        else:
            bid_prices, bid_volumes, ask_prices, ask_volumes = [], [], [], []
        return Quote(
            price=last / 100,
            open=self.open_t / 100,
            high=self.high_t / 100,
            low=self.low_t / 100,
            prev_close=self._prev_t / 100,
            volume=self.volume,
            amount=self.amount_t / 100,
            timestamp=when,
            bid_prices=bid_prices,
            bid_volumes=bid_volumes,
            ask_prices=ask_prices,
            ask_volumes=ask_volumes,
        )


def touch(last: int, lo: int, look: int) -> int:
    """The best bid: the last trade sits at the touch, bid1 at it or one tick below (the look's
    top bit); at limit-down buyers still bid the limit price (跌停)."""
    b = last - (look >> 24)
    floor = lo if lo > 5 else 5
    return b if b >= floor else floor


def book_levels(
    last: int, lo: int, hi: int, look: int, ladders: Ladders
) -> tuple[list[float], list[int], list[float], list[int]]:
    """A quote's five levels a side; levels past the ±10% limit cannot hold orders and are left out
    (at limit-up no one asks). Volumes are two of the shared columns, picked by 12 bits each."""
    b = touch(last, lo, look)
    bid_volumes = VOLUME_ROWS[look & 0xFFF]
    ask_volumes = VOLUME_ROWS[look >> 12 & 0xFFF]
    if b - 4 >= lo and b + 5 <= hi:  # the whole book inside the limits: the usual case
        bid_prices, ask_prices = ladders.at(b)
        return bid_prices, bid_volumes, ask_prices, ask_volumes
    bid_prices = [(b - i) / 100 for i in range(LEVELS) if b - i >= lo]
    ask_prices = [(b + 1 + i) / 100 for i in range(LEVELS) if b + 1 + i <= hi]
    return bid_prices, bid_volumes[: len(bid_prices)], ask_prices, ask_volumes[: len(ask_prices)]


class Ladders:
    """The five bid and five ask prices at each touch, built once and shared by every quote at it
    (and by every instrument of a source): a quote's lists are never changed after it is built."""

    __slots__ = ("_at",)

    MOST = 20_000  # touches kept (~10 MB at most; a day's prices use a few thousand); past it, start again

    def __init__(self) -> None:
        self._at: dict[int, tuple[list[float], list[float]]] = {}

    def at(self, bid: int) -> tuple[list[float], list[float]]:
        got = self._at.get(bid)
        if got is None:
            if len(self._at) >= self.MOST:
                self._at.clear()
            got = self._at[bid] = (
                [(bid - i) / 100 for i in range(LEVELS)],
                [(bid + 1 + i) / 100 for i in range(LEVELS)],
            )
        return got


def _volume_rows() -> tuple[list[int], ...]:
    """4,096 five-level volume columns (1-64 lots a level), drawn once: a book's side is one of them,
    picked by 12 of its bits, so a quote costs two look-ups instead of ten draws."""
    draw = random.Random(0x5EED).randrange
    return tuple([(draw(64) + 1) * LOT for _ in range(LEVELS)] for _ in range(4096))


VOLUME_ROWS = _volume_rows()  # read-only: quotes share these lists
