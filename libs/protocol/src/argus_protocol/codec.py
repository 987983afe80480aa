"""JSON and MessagePack codecs, built once and shared (msgspec encoders are reusable)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timezone
from typing import Any

import msgspec

from .events import Event
from .messages import ClientEnvelope

_json_enc = msgspec.json.Encoder()
_mp_enc = msgspec.msgpack.Encoder()
_event_dec = msgspec.msgpack.Decoder(Event)
_env_json_dec = msgspec.json.Decoder(ClientEnvelope)
_env_mp_dec = msgspec.msgpack.Decoder(ClientEnvelope)

JSON = "json"
MSGPACK = "msgpack"
ENCODINGS = (JSON, MSGPACK)


def encode_json(obj: Any) -> bytes:
    return _json_enc.encode(obj)


def encode_msgpack(obj: Any) -> bytes:
    return _mp_enc.encode(obj)


def encode(obj: Any, encoding: str) -> bytes:
    return _mp_enc.encode(obj) if encoding == MSGPACK else _json_enc.encode(obj)


def encode_event(event: Event) -> bytes:
    """The NATS wire form of an event."""
    return _mp_enc.encode(event)


def encode_event_into(event: Event, buffer: bytearray) -> None:
    """`encode_event` into `buffer` (replacing what it held): a publisher reusing one buffer
    makes no bytes object per event."""
    _mp_enc.encode_into(event, buffer)


def decode_event(payload: bytes) -> Event:
    """Raises msgspec.DecodeError / ValidationError on a malformed payload."""
    return _event_dec.decode(payload)


def decode_client(payload: bytes | str, encoding: str) -> ClientEnvelope:
    """Decode an inbound envelope; raises msgspec.DecodeError or ValidationError."""
    if encoding == MSGPACK and isinstance(payload, (bytes, bytearray, memoryview)):
        return _env_mp_dec.decode(payload)
    return _env_json_dec.decode(payload)


def now_us() -> int:
    return time.time_ns() // 1000


def iso_from_us(ts_us: int, tz: timezone = UTC) -> str:
    return datetime.fromtimestamp(ts_us / 1e6, tz).isoformat(timespec="milliseconds")


def iso_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")
