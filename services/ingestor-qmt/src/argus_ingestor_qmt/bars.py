"""Klines and 分时 from QMT's native bars.

QMT pushes 1m, 5m and 1d bars, re-sending the forming bar with the same `time` on every change.
This module keeps each symbol's recent bars and answers, per wanted stream, the last closed bar
and the forming one: native periods as they are, 15m/30m/60m aggregated from 1m bars, and the
分时 line (one point per session minute, running VWAP) from 1m bars too.

A-share buckets follow the trading sessions, not the clock: 60m bars are 09:30–10:30, 10:30–11:30,
13:00–14:00, 14:00–15:00, and the opening-auction minute folds into the first bucket. Markets
without configured sessions (most futures) use clock-aligned buckets.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime

from argus_ingestor.bars import bucket_start_ms
from argus_protocol import BEIJING, MARKETS, Event, Kline, KlineEvent, Tick, TickEvent, market_of

from .normalize import Bar, iso_s

NATIVE_MS = {"1m": 60_000, "5m": 300_000, "1d": 86_400_000}
DERIVED_MIN = {"15m": 15, "30m": 30, "60m": 60}
AUCTION_MINUTES = 15  # a bar this close before the first session belongs to its first minute
KEEP = 2  # buckets answered per stream: the last closed one and the forming one


def native_periods(types: Iterable[tuple[str, str]]) -> set[str]:
    """The QMT bar periods to subscribe for the wanted (type, period) streams of one symbol."""
    out = set()
    for kind, period in types:
        if kind == "tick" or (kind == "kline" and period in DERIVED_MIN):
            out.add("1m")
        elif kind == "kline" and period in NATIVE_MS:
            out.add(period)
    return out


class Sessions:
    """Trading sessions in local minutes; maps a minute to its session-aligned bucket."""

    def __init__(self, sessions: list[tuple[int, int]], markets: Iterable[str]) -> None:
        self.sessions = sorted(sessions)
        self.markets = frozenset(markets)
        self.total = sum(e - s for s, e in self.sessions)

    def _index(self, minute: int) -> int | None:
        offset = 0
        for s, e in self.sessions:
            if s <= minute < e:
                return offset + minute - s
            offset += e - s
        if self.sessions and 0 < self.sessions[0][0] - minute <= AUCTION_MINUTES:
            return 0
        return None

    def _minute_at(self, index: int) -> int:
        for s, e in self.sessions:
            if index < e - s:
                return s + index
            index -= e - s
        raise ValueError("index past the last session")

    def bucket(self, market: str, open_ms: int, minutes: int) -> tuple[int, int]:
        """(start, end) in epoch ms of the `minutes`-long bucket holding the bar that opens at open_ms."""
        if market in self.markets and self.sessions:
            local = datetime.fromtimestamp(open_ms / 1000, BEIJING)
            idx = self._index(local.hour * 60 + local.minute)
            if idx is not None:
                midnight = int(local.replace(hour=0, minute=0, second=0, microsecond=0).timestamp() * 1000)
                first = idx // minutes * minutes
                last = min(first + minutes, self.total) - 1
                return midnight + self._minute_at(first) * 60_000, midnight + (self._minute_at(last) + 1) * 60_000
        start = bucket_start_ms(open_ms, minutes * 60, BEIJING)
        return start, start + minutes * 60_000


class SymbolBars:
    """One symbol's native bars and what was last published for each of its streams."""

    def __init__(
        self,
        symbol: str,
        sessions: Sessions,
        day_close_min: int,
        grace_ms: int,
        keep: int,
        day_end: Callable[[int], int | None] | None = None,
    ) -> None:
        self.symbol = symbol
        self.day_end = day_end  # a daily bar's open ms -> when it is final (the exchange calendar)
        self.market = market_of(symbol)
        info = MARKETS.get(self.market)
        self.vwap_from_amount = info is not None and info.kind == "equity"  # futures' amount has the multiplier
        self.sessions = sessions
        self.day_close_ms = day_close_min * 60_000
        self.grace_ms = grace_ms
        self.keep = keep
        self.series: dict[str, dict[int, Bar]] = {p: {} for p in NATIVE_MS}
        self.published: dict[tuple[str, str], dict[int, Kline | Tick]] = {}

    def add(self, period: str, bars: Iterable[Bar]) -> Bar | None:
        """Store bars (a re-sent bar replaces its earlier version); returns the newest one given."""
        s = self.series[period]
        newest = None
        for b in bars:
            s[b.open_ms] = b
            if newest is None or b.open_ms >= newest.open_ms:
                newest = b
        if len(s) > self.keep:
            for k in sorted(s)[: len(s) - self.keep]:
                del s[k]
        return newest

    def forget(self, streams: set[tuple[str, str]]) -> None:
        for key in [k for k in self.published if k not in streams]:
            del self.published[key]

    def events(self, streams: Iterable[tuple[str, str]], now_ms: int) -> list[Event]:
        """New or changed payloads of the last closed and the forming bucket of each stream."""
        out: list[Event] = []
        for kind, period in streams:
            items: list[tuple[int, Kline]] | list[tuple[int, Tick]]
            if kind == "kline" and period in NATIVE_MS:
                items = self._native(period, now_ms)
            elif kind == "kline" and period in DERIVED_MIN:
                items = self._derived(period, now_ms)
            elif kind == "tick":
                items = self._ticks(now_ms)
            else:
                continue
            seen = self.published.setdefault((kind, period), {})
            for start, payload in items:
                if seen.get(start) != payload:
                    seen[start] = payload
                    if isinstance(payload, Kline):
                        out.append(KlineEvent(symbol=self.symbol, kline=payload))
                    else:
                        out.append(TickEvent(symbol=self.symbol, tick=payload))
            if len(seen) > KEEP + 2:
                for k in sorted(seen)[: len(seen) - KEEP - 2]:
                    del seen[k]
        return out

    # -- the three kinds of stream --------------------------------------------------------
    def _closed(self, is_newest: bool, end_ms: int, now_ms: int) -> bool:
        return not is_newest or now_ms >= end_ms + self.grace_ms

    def _native(self, period: str, now_ms: int) -> list[tuple[int, Kline]]:
        s = self.series[period]
        keys = sorted(s)[-KEEP:]
        out = []
        for i, k in enumerate(keys):
            b = s[k]
            end = k + NATIVE_MS[period]
            if period == "1d":
                final = self.day_end(k) if self.day_end is not None else None
                end = final if final is not None else k + self.day_close_ms
            closed = self._closed(i == len(keys) - 1, end, now_ms)
            out.append((k, _kline(period, k, [b], closed)))
        return out

    def _groups(self, minutes: int) -> list[tuple[int, int, list[Bar]]]:
        """The last KEEP buckets of 1m bars: (start, end, bars oldest first)."""
        s = self.series["1m"]
        groups: list[tuple[int, int, list[Bar]]] = []
        for k in sorted(s, reverse=True):
            start, end = self.sessions.bucket(self.market, k, minutes)
            if groups and groups[-1][0] == start:
                groups[-1][2].append(s[k])
                continue
            if len(groups) == KEEP:
                break
            groups.append((start, end, [s[k]]))
        for g in groups:
            g[2].reverse()
        groups.reverse()
        return groups

    def _derived(self, period: str, now_ms: int) -> list[tuple[int, Kline]]:
        groups = self._groups(DERIVED_MIN[period])
        return [
            (start, _kline(period, start, bars, self._closed(i == len(groups) - 1, end, now_ms)))
            for i, (start, end, bars) in enumerate(groups)
        ]

    def _ticks(self, now_ms: int) -> list[tuple[int, Tick]]:
        groups = self._groups(1)
        s = self.series["1m"]
        out = []
        for i, (start, end, bars) in enumerate(groups):
            day = bucket_start_ms(start, 86400, BEIJING)
            cum_vol, cum_value = 0, 0.0
            for k, b in s.items():
                if day <= k < end:
                    cum_vol += b.volume
                    cum_value += b.amount if self.vwap_from_amount else b.close * b.volume
            close = bars[-1].close
            avg = cum_value / cum_vol if cum_vol else close
            tick = Tick(
                time=iso_s(start),
                price=close,
                avg_price=round(avg, 4),
                volume=sum(b.volume for b in bars),
                amount=round(sum(b.amount for b in bars), 2),
                closed=self._closed(i == len(groups) - 1, end, now_ms),
            )
            out.append((start, tick))
        return out


def _kline(period: str, start: int, bars: list[Bar], closed: bool) -> Kline:
    return Kline(
        period=period,
        open_time=iso_s(start),
        open=bars[0].open,
        high=max(b.high for b in bars),
        low=min(b.low for b in bars),
        close=bars[-1].close,
        volume=sum(b.volume for b in bars),
        amount=round(sum(b.amount for b in bars), 2),
        closed=closed,
    )
