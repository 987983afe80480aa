"""Events and client messages round-trip through both encodings in the shapes PROTOCOL.md gives."""

from __future__ import annotations

import msgspec
import pytest
from argus_protocol import (
    Kline,
    KlineEvent,
    Quote,
    QuoteEvent,
    Trade,
    TradeEvent,
    decode_client,
    decode_event,
    encode_event,
    encode_json,
    stream_key,
)
from argus_protocol.messages import Subscribe


def quote_event() -> QuoteEvent:
    return QuoteEvent(
        symbol="000001.SZ",
        source="mock",
        seq=812,
        ts=1732350000123456,
        quote=Quote(
            price=10.5,
            open=10.2,
            high=10.6,
            low=10.1,
            prev_close=10.3,
            volume=1000,
            amount=10500.0,
            timestamp="2024-01-01T12:00:00+08:00",
            bid_prices=[10.49, 10.48, 10.47, 10.46, 10.45],
            bid_volumes=[100, 200, 300, 400, 500],
            ask_prices=[10.5, 10.51, 10.52, 10.53, 10.54],
            ask_volumes=[100, 200, 300, 400, 500],
        ),
    )


def test_event_roundtrip_msgpack() -> None:
    ev = quote_event()
    back = decode_event(encode_event(ev))
    assert back == ev
    assert stream_key(back) == "quote:000001.SZ"


def test_event_json_is_the_data_of_a_client_DATA_message() -> None:
    data = msgspec.json.decode(encode_json(quote_event()))
    assert data["type"] == "quote"
    assert data["symbol"] == "000001.SZ"
    assert data["seq"] == 812 and data["ts"] == 1732350000123456
    assert data["quote"]["price"] == 10.5 and len(data["quote"]["bid_prices"]) == 5
    assert "snapshot" not in data  # only snapshots say so


def test_kline_and_trade_stream_keys() -> None:
    k = KlineEvent(
        symbol="600000.SH", kline=Kline("5m", "2024-01-01T09:30:00+08:00", 1, 2, 0.5, 1.5, 100, 150.0, False)
    )
    t = TradeEvent(symbol="600000.SH", trade=Trade("2024-01-01T09:30:01+08:00", 1.5, 100, "B", "t1"))
    assert stream_key(decode_event(encode_event(k))) == "kline:600000.SH:5m"
    assert stream_key(decode_event(encode_event(t))) == "trade:600000.SH"


def test_malformed_event_payload_raises() -> None:
    with pytest.raises(msgspec.MsgspecError):
        decode_event(b"\x93\x01\x02")
    with pytest.raises(msgspec.MsgspecError):
        decode_event(msgspec.msgpack.encode({"type": "depth", "symbol": "x"}))


def test_client_envelope_both_encodings() -> None:
    msg = {"type": "SUBSCRIBE", "id": 7, "data": {"symbols": ["000001.SZ"], "extra": 1}}
    for raw, enc in ((msgspec.json.encode(msg), "json"), (msgspec.msgpack.encode(msg), "msgpack")):
        env = decode_client(raw, enc)
        assert env.type == "SUBSCRIBE" and env.id == 7
        sub = msgspec.convert(env.data, Subscribe)
        assert sub.symbols == ["000001.SZ"]
        assert sub.data_types == ["quote"] and sub.periods == ["1m"] and sub.snapshot is True
