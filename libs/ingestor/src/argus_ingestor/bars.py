"""Building klines and 分时 (minute line) points from trades, for sources that have none.

Both builders take trades as (epoch ms, price, volume, amount) and return only what changed: a
bar that just closed (`closed=True`, exactly once) and the forming bar, re-sent on every change.
Bars align to the market's local time: minutes and hours on the clock, `1d` at local midnight.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta, timezone, tzinfo

from argus_protocol import BEIJING, PERIOD_SECONDS, Kline, Tick


class _Bar:
    __slots__ = ("amount", "close", "high", "low", "open", "start_ms", "volume")

    def __init__(self, start_ms: int, price: float) -> None:
        self.start_ms = start_ms
        self.open = self.high = self.low = self.close = price
        self.volume = 0
        self.amount = 0.0


def _utc_offset_ms(tz: tzinfo, ts_ms: int) -> int:
    if isinstance(tz, timezone):  # fixed offset (Beijing): no date needed, and this runs per trade
        fixed = tz.utcoffset(None)
        return int(fixed.total_seconds() * 1000)
    offset = datetime.fromtimestamp(ts_ms / 1000, tz).utcoffset() or timedelta(0)
    return int(offset.total_seconds() * 1000)


def bucket_start_ms(ts_ms: int, period_s: int, tz: tzinfo) -> int:
    """Start of the period containing ts_ms, aligned in local time."""
    off = _utc_offset_ms(tz, ts_ms)
    span = period_s * 1000
    return (ts_ms + off) // span * span - off


def iso_ms(ts_ms: int, tz: tzinfo) -> str:
    return datetime.fromtimestamp(ts_ms / 1000, tz).isoformat(timespec="seconds")


class KlineBuilder:
    def __init__(self, periods: Iterable[str], tz: tzinfo = BEIJING) -> None:
        self.tz = tz
        self.periods = list(periods)
        for p in self.periods:
            if p not in PERIOD_SECONDS:
                raise ValueError(f"unknown period {p!r}")
        self._bars: dict[str, _Bar] = {}

    def add(self, ts_ms: int, price: float, volume: int, amount: float) -> list[Kline]:
        out: list[Kline] = []
        for p in self.periods:
            start = bucket_start_ms(ts_ms, PERIOD_SECONDS[p], self.tz)
            bar = self._bars.get(p)
            if bar is not None and start > bar.start_ms:
                out.append(self._kline(p, bar, closed=True))
                bar = None
            if bar is None:
                bar = self._bars[p] = _Bar(start, price)
            elif start < bar.start_ms:
                continue  # a late trade for a bar already closed: ignore rather than reopen it
            if price > bar.high:
                bar.high = price
            if price < bar.low:
                bar.low = price
            bar.close = price
            bar.volume += volume
            bar.amount += amount
            out.append(self._kline(p, bar, closed=False))
        return out

    def roll(self, now_ms: int) -> list[Kline]:
        """Close bars whose period has ended although no trade came (e.g. a quiet symbol)."""
        out = []
        for p, bar in list(self._bars.items()):
            if now_ms >= bar.start_ms + PERIOD_SECONDS[p] * 1000 and not _spans_local_day(
                p, bar.start_ms, now_ms, self.tz
            ):
                out.append(self._kline(p, bar, closed=True))
                del self._bars[p]
        return out

    def forming(self) -> list[Kline]:
        return [self._kline(p, b, closed=False) for p, b in self._bars.items()]

    def _kline(self, period: str, bar: _Bar, closed: bool) -> Kline:
        return Kline(
            period=period,
            open_time=iso_ms(bar.start_ms, self.tz),
            open=bar.open,
            high=bar.high,
            low=bar.low,
            close=bar.close,
            volume=bar.volume,
            amount=round(bar.amount, 2),
            closed=closed,
        )


def _spans_local_day(period: str, start_ms: int, now_ms: int, tz: tzinfo) -> bool:
    # A daylight-saving change can make a local day 23 or 25 hours; trust the bucket function.
    return period == "1d" and bucket_start_ms(now_ms, 86400, tz) == start_ms


class MinuteLine:
    """分时: one point per minute with the day's running VWAP; resets at local midnight."""

    def __init__(self, tz: tzinfo = BEIJING) -> None:
        self.tz = tz
        self._day = -1
        self._cum_volume = 0
        self._cum_amount = 0.0
        self._minute: _Bar | None = None

    def add(self, ts_ms: int, price: float, volume: int, amount: float) -> list[Tick]:
        out: list[Tick] = []
        day = bucket_start_ms(ts_ms, 86400, self.tz)
        if day != self._day:
            if self._minute is not None:
                out.append(self._tick(self._minute, closed=True))
                self._minute = None
            self._day = day
            self._cum_volume = 0
            self._cum_amount = 0.0
        start = bucket_start_ms(ts_ms, 60, self.tz)
        m = self._minute
        if m is not None and start > m.start_ms:
            out.append(self._tick(m, closed=True))
            m = None
        if m is None:
            m = self._minute = _Bar(start, price)
        elif start < m.start_ms:
            return out
        m.close = price
        m.volume += volume
        m.amount += amount
        self._cum_volume += volume
        self._cum_amount += amount
        out.append(self._tick(m, closed=False))
        return out

    def roll(self, now_ms: int) -> list[Tick]:
        m = self._minute
        if m is not None and now_ms >= m.start_ms + 60_000:
            self._minute = None
            return [self._tick(m, closed=True)]
        return []

    def _tick(self, m: _Bar, closed: bool) -> Tick:
        avg = self._cum_amount / self._cum_volume if self._cum_volume else m.close
        return Tick(
            time=iso_ms(m.start_ms, self.tz),
            price=m.close,
            avg_price=round(avg, 4),
            volume=m.volume,
            amount=round(m.amount, 2),
            closed=closed,
        )
