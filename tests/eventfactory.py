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
