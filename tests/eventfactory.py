"""Real Argus events for tests that play the ingestor's part on NATS."""

from __future__ import annotations

import itertools

from argus_protocol import Quote, QuoteEvent, Subjects, Trade, TradeEvent, encode_event, now_us

_ids = itertools.count(1)


def unique_symbol(prefix: str = "T") -> str:
    """A fresh valid symbol so tests sharing one nats-server never see each other's data."""
    return f"{prefix}{next(_ids):05d}{now_us() % 100000:05d}.SZ"


def quote(symbol: str, seq: int, price: float = 10.0) -> bytes:
    return encode_event(
        QuoteEvent(
            symbol=symbol,
            source="test",
            seq=seq,
            ts=now_us(),
            quote=Quote(
                price=price,
                open=10.0,
                high=max(10.0, price),
                low=min(10.0, price),
                prev_close=10.0,
                volume=100 * seq,
                amount=1000.0 * seq,
                timestamp="2026-11-23T10:00:00+08:00",
                bid_prices=[price - 0.01 * i for i in range(1, 6)],
                bid_volumes=[100] * 5,
                ask_prices=[price + 0.01 * i for i in range(1, 6)],
                ask_volumes=[100] * 5,
            ),
        )
    )


def trade(symbol: str, seq: int, pad: int = 0) -> bytes:
    return encode_event(
        TradeEvent(
            symbol=symbol,
            source="test",
            seq=seq,
            ts=now_us(),
            trade=Trade(
                time="2026-11-23T10:00:00+08:00", price=10.0, volume=100, side="B", trade_id=f"{seq}" + "x" * pad
            ),
        )
    )


def subject(kind: str, symbol: str) -> str:
    from argus_protocol import Stream

    return Subjects().publish(Stream(kind, symbol))


def kline(
    symbol: str, seq: int, open_time: str, closed: bool, first_seq: int, close: float = 10.0, period: str = "1m"
) -> bytes:
    from argus_protocol import Kline, KlineEvent

    return encode_event(
        KlineEvent(
            symbol=symbol,
            source="test",
            seq=seq,
            first_seq=first_seq,
            ts=now_us(),
            kline=Kline(
                period=period,
                open_time=open_time,
                open=10.0,
                high=max(10.0, close),
                low=min(10.0, close),
                close=close,
                volume=100 * seq,
                amount=1000.0 * seq,
                closed=closed,
            ),
        )
    )


def tick(symbol: str, seq: int, time: str, closed: bool, first_seq: int, price: float = 10.0) -> bytes:
    from argus_protocol import Tick, TickEvent

    return encode_event(
        TickEvent(
            symbol=symbol,
            source="test",
            seq=seq,
            first_seq=first_seq,
            ts=now_us(),
            tick=Tick(time=time, price=price, avg_price=price, volume=100, amount=1000.0, closed=closed),
        )
    )


def bar_subject(kind: str, symbol: str, closed: bool, period: str = "1m") -> str:
    from argus_protocol import Stream

    return Subjects().publish(Stream(kind, symbol, period if kind == "kline" else ""), closed=closed)


class BarPlayer:
    """Plays an ingestor's bar or 分时 stream: versions of each bar on .forming, the last on .closed."""

    def __init__(self, nc, kind: str, symbol: str, period: str = "1m") -> None:  # type: ignore[no-untyped-def]
        self.nc = nc
        self.kind = kind
        self.symbol = symbol
        self.period = period
        self.seq = 0
        self.bars: list[tuple[str, int, int]] = []  # (open time, first seq, closing seq) of finished bars

    def _event(self, when: str, closed: bool, first: int) -> bytes:
        if self.kind == "kline":
            return kline(self.symbol, self.seq, when, closed, first, 10.0 + self.seq / 100, self.period)
        return tick(self.symbol, self.seq, when, closed, first, 10.0 + self.seq / 100)

    async def bar(self, when: str, versions: int = 3, close: bool = True) -> None:
        first = self.seq + 1
        for i in range(versions):
            self.seq += 1
            last = close and i == versions - 1
            await self.nc.publish(
                bar_subject(self.kind, self.symbol, last, self.period), self._event(when, last, first)
            )
        if close:
            self.bars.append((when, first, self.seq))
