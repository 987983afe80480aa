"""The one way a DATA frame is built, whether the event is live, a snapshot or a replay.

An event is decoded once; `EventFrames` builds its JSON and MessagePack envelopes at most once
each, on first need, and from them the bytes each *variant* of session takes (a framed message, a
bare payload for `batch=1` arrays, a deflated frame). Live dispatch asks once per variant in use
and shares the bytes with every session of that variant; replays do the same per stream.
"""

from __future__ import annotations

import msgspec
from argus_protocol import Event, encode_json, encode_msgpack
from argus_protocol.messages import Envelope, Gap

from .frames import ws_deflate_frame, ws_frame

# What a session takes for each event (see Session.variant).
JSON_FRAME, MSGPACK_FRAME, JSON_PAYLOAD, MSGPACK_PAYLOAD = 0, 1, 2, 3
DEFLATE = 4  # + binary, + window bits << 3: a compressed frame

_DATA_HEAD = b'{"type":"DATA","data":'
_TS_HEAD = b',"timestamp":"'
_TAIL = b'"}'


def variant_of(binary: bool, batch: bool, deflate_bits: int) -> int:
    if batch:
        return MSGPACK_PAYLOAD if binary else JSON_PAYLOAD
    if deflate_bits:
        return DEFLATE + binary + (deflate_bits << 3)
    return MSGPACK_FRAME if binary else JSON_FRAME


class EventFrames:
    """One event's envelopes and frames. `raw` is the ingestor's MessagePack, passed through as it
    came when the event is unmarked; a snapshot or replay (marked by the caller on `event`)
    is encoded from the struct."""

    __slots__ = ("_json", "_msgpack", "event", "raw", "ts")

    def __init__(self, event: Event, raw: bytes, ts: bytes) -> None:
        self.event = event
        self.raw = raw
        self.ts = ts  # envelope timestamp, ISO-8601 bytes
        self._json: bytes | None = None
        self._msgpack: bytes | None = None

    def payload(self, binary: bool) -> bytes:
        if binary:
            if self._msgpack is None:
                ev = self.event
                data = ev if (ev.snapshot or ev.replay) else msgspec.Raw(self.raw)
                self._msgpack = encode_msgpack(Envelope("DATA", data, self.ts.decode()))
            return self._msgpack
        if self._json is None:
            # spliced rather than encoding the envelope as a whole
            self._json = _DATA_HEAD + encode_json(self.event) + _TS_HEAD + self.ts + _TAIL
        return self._json

    def get(self, variant: int) -> bytes:
        binary = bool(variant & 1)
        payload = self.payload(binary)
        if variant < JSON_PAYLOAD:
            return ws_frame(payload, binary)
        if variant < DEFLATE:
            return payload
        return ws_deflate_frame(payload, binary, variant >> 3)


def gap_frame(binary: bool, gap: Gap, ts: str) -> bytes:
    env = Envelope("GAP", gap, ts)
    return ws_frame(encode_msgpack(env) if binary else encode_json(env), binary)
