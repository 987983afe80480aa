"""Yahoo streamer frames → `Pricing` structs, with yfinance's own subscribe format and protobuf decoder.

A frame is `{"type": "pricing", "message": "<base64 PricingData>"}`. yfinance's decoder returns
the protobuf as a dict (proto field names; int64 fields as strings, zero values omitted).
"""

from __future__ import annotations

from typing import Any

import msgspec
import orjson


class DecodeError(ValueError):
    """A frame that is not a pricing message we can read (counted, then skipped)."""


class Pricing(msgspec.Struct, frozen=True):
    """One decoded PricingData; a field Yahoo omitted (zero) is None."""

    id: str
    price: float | None = None
    time_ms: int | None = None
    market_hours: int = 0  # omitted = 0 = pre-market; 1 regular, 2 post, 3 extended
    day_volume: int | None = None
    day_high: float | None = None
    day_low: float | None = None
    open_price: float | None = None
    previous_close: float | None = None
    last_size: int | None = None
    bid: float | None = None
    bid_size: int | None = None
    ask: float | None = None
    ask_size: int | None = None


def subscribe_message(tickers: list[str]) -> str:
    """The frame yfinance's AsyncWebSocket.subscribe() sends: the whole list every time."""
    return orjson.dumps({"subscribe": tickers}).decode()


def unsubscribe_message(tickers: list[str]) -> str:
    return orjson.dumps({"unsubscribe": tickers}).decode()


_decoder: Any = None


def _yf_decode(b64: str) -> dict[str, Any]:
    global _decoder
    if _decoder is None:
        from yfinance.config import YfConfig
        from yfinance.live import BaseWebSocket

        YfConfig.debug.hide_exceptions = False  # raise, rather than log a traceback per bad frame
        _decoder = BaseWebSocket(url="", verbose=False)  # only its _decode_message is used; never connects
    out: dict[str, Any] = _decoder._decode_message(b64)
    return out


def decode_frame(text: str | bytes) -> Pricing | None:
    """The Pricing in one frame; None for frames that carry none (other types); DecodeError for garbage."""
    try:
        frame = orjson.loads(text)
    except orjson.JSONDecodeError as e:
        raise DecodeError(f"not JSON: {e}") from None
    if not isinstance(frame, dict):
        raise DecodeError("not a JSON object")
    if frame.get("type", "pricing") != "pricing":
        return None
    b64 = frame.get("message")
    if not isinstance(b64, str) or not b64:
        raise DecodeError("pricing frame without a message")
    try:
        fields = _yf_decode(b64)
    except Exception as e:  # noqa: BLE001 - yfinance raises whatever base64/protobuf raise
        raise DecodeError(f"undecodable message: {e!r}") from None
    if "error" in fields and "raw_base64" in fields:  # yfinance's answer when it hides exceptions
        raise DecodeError(f"undecodable message: {fields['error']}")
    return pricing_of(fields)


def _int(v: Any) -> int | None:
    if v is None:
        return None
    try:
        n = int(v)
    except (TypeError, ValueError):
        raise DecodeError(f"not an integer: {v!r}") from None
    return n or None


def _float(v: Any) -> float | None:
    if v is None:
        return None
    if not isinstance(v, int | float):
        raise DecodeError(f"not a number: {v!r}")
    return float(v) or None


def pricing_of(f: dict[str, Any]) -> Pricing:
    ident = f.get("id")
    if not isinstance(ident, str) or not ident:
        raise DecodeError("pricing message without id")
    return Pricing(
        id=ident,
        price=_float(f.get("price")),
        time_ms=_int(f.get("time")),
        market_hours=_int(f.get("market_hours")) or 0,
        day_volume=_int(f.get("day_volume")),
        day_high=_float(f.get("day_high")),
        day_low=_float(f.get("day_low")),
        open_price=_float(f.get("open_price")),
        previous_close=_float(f.get("previous_close")),
        last_size=_int(f.get("last_size")),
        bid=_float(f.get("bid")),
        bid_size=_int(f.get("bid_size")),
        ask=_float(f.get("ask")),
        ask_size=_int(f.get("ask_size")),
    )
