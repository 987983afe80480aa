"""Frames to messages and back, in JSON or MessagePack. A frame holds one envelope or, with
`batch=1`, an array of them; `data` is decoded into the struct its `type` names."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import msgspec

from .models import SERVER_TYPES, DataEvent

log = logging.getLogger("argus_client")

JSON = "json"
MSGPACK = "msgpack"


class Envelope(msgspec.Struct):
    type: str
    data: msgspec.Raw = msgspec.Raw(b"")
    id: str | int | None = None
    timestamp: str | None = None


Frame = Envelope | list[Envelope]


class Codec:
    """Decoders built once per encoding (msgspec decoders are reusable and fast)."""

    def __init__(self, encoding: str) -> None:
        if encoding not in (JSON, MSGPACK):
            raise ValueError(f"encoding must be {JSON!r} or {MSGPACK!r}, not {encoding!r}")
        self.encoding = encoding
        mod: Any = msgspec.msgpack if encoding == MSGPACK else msgspec.json
        self._mod = mod
        self._frame = mod.Decoder(Frame)
        self._data = mod.Decoder(DataEvent)
        self._by_type = {kind: mod.Decoder(t) for kind, t in SERVER_TYPES.items()}
        self._enc = mod.Encoder()

    def encode(self, kind: str, data: Any = None, req_id: str | int | None = None) -> bytes:
        msg: dict[str, Any] = {"type": kind}
        if data is not None:
            msg["data"] = data
        if req_id is not None:
            msg["id"] = req_id
        return bytes(self._enc.encode(msg))

    def messages(self, payload: bytes | str) -> Iterator[tuple[str, Any, str | int | None]]:
        """(type, typed data, id) per envelope in the frame; an unknown type yields its raw data,
        and a message that does not decode is logged and skipped."""
        try:
            frame = self._frame.decode(payload)
        except msgspec.MsgspecError as e:
            log.warning("undecodable frame from the gateway: %s", e)
            return
        for env in frame if isinstance(frame, list) else (frame,):
            try:
                if env.type == "DATA":
                    yield env.type, self._data.decode(env.data), env.id
                    continue
                dec = self._by_type.get(env.type)
                yield env.type, (dec.decode(env.data) if dec is not None else env.data), env.id
            except msgspec.MsgspecError as e:
                log.warning("undecodable %s from the gateway: %s", env.type, e)
