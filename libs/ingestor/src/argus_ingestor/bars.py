"""Building klines and 分时 (minute line) points from trades, for sources that have none.

Both builders take trades as (epoch ms, price, volume, amount) and return only what changed: a
bar that just closed (`closed=True`, exactly once) and the forming bar, re-sent on every change.
Bars align to the market's local time: minutes and hours on the clock, `1d` at local midnight.

Cheap enough to feed every trade of every symbol: a trade updates one minute accumulator; each
finished minute is folded into the longer periods once. Callers that publish only some periods
pass `emit=` and pay for building only those payloads, while all periods stay consistent (a
stream joined mid-bar gets the whole bar, not the part since it was joined).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from datetime import datetime, timedelta, timezone, tzinfo

from argus_protocol import BEIJING, PERIOD_SECONDS, Kline, Tick

_MINUTE = 60_000
_DAY = 86_400_000


class _Bar:
    __slots__ = ("amount", "close", "end_ms", "high", "iso", "low", "open", "start_ms", "volume")

    def __init__(self, start_ms: int, end_ms: int, price: float) -> None:
        self.start_ms = start_ms
        self.end_ms = end_ms
        self.open = self.high = self.low = self.close = price
        self.volume = 0
        self.amount = 0.0
        self.iso: str | None = None


def _utc_offset_ms(tz: tzinfo, ts_ms: int) -> int:
    if isinstance(tz, timezone):  # fixed offset (Beijing): no date needed, and this runs often
        fixed = tz.utcoffset(None)
        return int(fixed.total_seconds() * 1000)
    offset = datetime.fromtimestamp(ts_ms / 1000, tz).utcoffset() or timedelta(0)
    return int(offset.total_seconds() * 1000)


def bucket_start_ms(ts_ms: int, period_s: int, tz: tzinfo) -> int:
    """Start of the period containing ts_ms, aligned in local time."""
    off = _utc_offset_ms(tz, ts_ms)
    span = period_s * 1000
    return (ts_ms + off) // span * span - off


def bucket_end_ms(start_ms: int, period_s: int, tz: tzinfo) -> int:
    """End of the period starting at start_ms (a local day may last 23 or 25 hours)."""
    span = period_s * 1000
    if span >= _DAY and not isinstance(tz, timezone):
        return bucket_start_ms(start_ms + span + 2 * 3_600_000, period_s, tz)
    return start_ms + span


def iso_ms(ts_ms: int, tz: tzinfo) -> str:
    return datetime.fromtimestamp(ts_ms / 1000, tz).isoformat(timespec="seconds")


class KlineBuilder:
    """Klines for the given periods (each a whole number of minutes) from trades.

    `emit` (default: every period) names the periods whose payloads to return; the others keep
    accumulating silently. A period's closed bar is returned only if the period is in `emit` at
    the moment it closes.
    """

    def __init__(self, periods: Iterable[str], tz: tzinfo = BEIJING) -> None:
        self.tz = tz
        self.periods = list(periods)
        for p in self.periods:
            if p not in PERIOD_SECONDS:
                raise ValueError(f"unknown period {p!r}")
            if PERIOD_SECONDS[p] % 60:
                raise ValueError(f"period {p!r} is not a whole number of minutes")
        self._emit_minute = "1m" in self.periods
        self._longer = [p for p in self.periods if p != "1m"]
        self._minute: _Bar | None = None
        self._agg: dict[str, _Bar] = {}  # longer periods: the minutes of the current bar folded so far
        self._floor = 0  # trades before this were closed over: ignored rather than reopening a bar

    def add(
        self, ts_ms: int, price: float, volume: int, amount: float, emit: Collection[str] | None = None
    ) -> list[Kline]:
        return self.add_print(ts_ms, price, price, price, price, volume, amount, emit)

    def add_print(
        self,
        ts_ms: int,
        open: float,
        high: float,
        low: float,
        close: float,
        volume: int,
        amount: float,
        emit: Collection[str] | None = None,
        closed: Collection[str] | None = None,
    ) -> list[Kline]:
        """Several trades at one instant, as their open/high/low/close and totals. `closed` (default
        `emit`) names the periods whose finished bars to return, forming ones or not."""
        m = self._minute
        out: list[Kline] = []
        if m is None or ts_ms >= m.end_ms:
            if ts_ms < self._floor:
                return out
            self._advance(ts_ms, emit if closed is None else closed, out)
            start = bucket_start_ms(ts_ms, 60, self.tz)
            m = self._minute = _Bar(start, start + _MINUTE, open)
            self._floor = start
        elif ts_ms < m.start_ms:
            return out  # a late trade for a minute already closed
        if high > m.high:
            m.high = high
        if low < m.low:
            m.low = low
        m.close = close
        m.volume += volume
        m.amount += amount
        if emit is None:
            emit = self.periods
        if emit:
            out.extend(self._forming(p) for p in emit if p in self._agg or (p == "1m" and self._emit_minute))
        return out

    def roll(
        self, now_ms: int, emit: Collection[str] | None = None, closed: Collection[str] | None = None
    ) -> list[Kline]:
        """Close bars whose period has ended although no trade came (a quiet symbol, a lunch break)."""
        if closed is not None:
            emit = closed
        out: list[Kline] = []
        m = self._minute
        if m is not None and now_ms >= m.end_ms:
            self._close_minute(emit, out)
        self._close_aggs(now_ms, emit, out)
        floor = bucket_start_ms(now_ms, 60, self.tz)
        if floor > self._floor and self._minute is None:
            self._floor = floor
        return out

    def forming(self, emit: Collection[str] | None = None) -> list[Kline]:
        periods = self.periods if emit is None else emit
        if self._minute is None:
            bars = [(p, self._agg.get(p)) for p in periods]
            return [self._kline(p, b, closed=False) for p, b in bars if b is not None and b.open is not None]
        return [self._forming(p) for p in periods if p in self._agg or (p == "1m" and self._emit_minute)]

    # internals ----------------------------------------------------------------------------
    def _advance(self, ts_ms: int, emit: Collection[str] | None, out: list[Kline]) -> None:
        """A trade in a new minute: close the old minute, the periods it ended, open the new ones."""
        if self._minute is not None:
            self._close_minute(emit, out)
        self._close_aggs(ts_ms, emit, out)
        agg = self._agg
        tz = self.tz
        for p in self._longer:
            if p not in agg:
                secs = PERIOD_SECONDS[p]
                start = bucket_start_ms(ts_ms, secs, tz)
                bar = agg[p] = _Bar(start, bucket_end_ms(start, secs, tz), 0.0)
                bar.open = None  # type: ignore[assignment]  # empty until its first minute folds in

    def _close_minute(self, emit: Collection[str] | None, out: list[Kline]) -> None:
        m = self._minute
        assert m is not None
        self._minute = None
        if self._emit_minute and (emit is None or "1m" in emit):
            out.append(self._kline("1m", m, closed=True))
        for bar in self._agg.values():
            if bar.open is None:
                bar.open, bar.high, bar.low = m.open, m.high, m.low
            else:
                if m.high > bar.high:
                    bar.high = m.high
                if m.low < bar.low:
                    bar.low = m.low
            bar.close = m.close
            bar.volume += m.volume
            bar.amount += m.amount

    def _close_aggs(self, now_ms: int, emit: Collection[str] | None, out: list[Kline]) -> None:
        for p in [p for p, bar in self._agg.items() if now_ms >= bar.end_ms]:
            bar = self._agg.pop(p)
            if bar.open is not None and (emit is None or p in emit):
                out.append(self._kline(p, bar, closed=True))

    def _forming(self, p: str) -> Kline:
        m = self._minute
        assert m is not None
        if p == "1m":
            return self._kline(p, m, closed=False)
        bar = self._agg[p]
        if bar.open is None:
            open_, high, low = m.open, m.high, m.low
        else:
            open_ = bar.open
            high = m.high if m.high > bar.high else bar.high
            low = m.low if m.low < bar.low else bar.low
        return Kline(
            period=p,
            open_time=self._iso(bar),
            open=open_,
            high=high,
            low=low,
            close=m.close,
            volume=bar.volume + m.volume,
            amount=round(bar.amount + m.amount, 2),
            closed=False,
        )

    def _iso(self, bar: _Bar) -> str:
        if bar.iso is None:
            bar.iso = iso_ms(bar.start_ms, self.tz)
        return bar.iso

    def _kline(self, period: str, bar: _Bar, closed: bool) -> Kline:
        return Kline(
            period=period,
            open_time=self._iso(bar),
            open=bar.open,
            high=bar.high,
            low=bar.low,
            close=bar.close,
            volume=bar.volume,
            amount=round(bar.amount, 2),
            closed=closed,
        )


class MinuteLine:
    """分时: one point per minute with the day's running VWAP; resets at local midnight.

    `emit=False` keeps the line (and its VWAP) current without building payloads.
    """

    def __init__(self, tz: tzinfo = BEIJING) -> None:
        self.tz = tz
        self._day_end = -1
        self._cum_volume = 0
        self._cum_amount = 0.0
        self._minute: _Bar | None = None
        self._floor = 0

    def add(
        self, ts_ms: int, price: float, volume: int, amount: float, emit: bool = True, closed: bool | None = None
    ) -> list[Tick]:
        """`closed` (default `emit`): return the finished minute's point even when forming ones are not."""
        m = self._minute
        out: list[Tick] = []
        if m is None or ts_ms >= m.end_ms:
            if ts_ms < self._floor:
                return out
            if m is not None:
                self._minute = None
                if emit if closed is None else closed:
                    out.append(self._tick(m, closed=True))
            if ts_ms >= self._day_end:
                day = bucket_start_ms(ts_ms, 86400, self.tz)
                self._day_end = bucket_end_ms(day, 86400, self.tz)
                self._cum_volume = 0
                self._cum_amount = 0.0
            start = bucket_start_ms(ts_ms, 60, self.tz)
            m = self._minute = _Bar(start, start + _MINUTE, price)
            self._floor = start
        elif ts_ms < m.start_ms:
            return out
        m.close = price
        m.volume += volume
        m.amount += amount
        self._cum_volume += volume
        self._cum_amount += amount
        if emit:
            out.append(self._tick(m, closed=False))
        return out

    def roll(self, now_ms: int, emit: bool = True) -> list[Tick]:
        m = self._minute
        if m is not None and now_ms >= m.end_ms:
            self._minute = None
            self._floor = m.end_ms
            return [self._tick(m, closed=True)] if emit else []
        return []

    def forming(self) -> list[Tick]:
        return [] if self._minute is None else [self._tick(self._minute, closed=False)]

    def _tick(self, m: _Bar, closed: bool) -> Tick:
        avg = self._cum_amount / self._cum_volume if self._cum_volume else m.close
        if m.iso is None:
            m.iso = iso_ms(m.start_ms, self.tz)
        return Tick(
            time=m.iso,
            price=m.close,
            avg_price=round(avg, 4),
            volume=m.volume,
            amount=round(m.amount, 2),
            closed=closed,
        )
