"""Server-to-client WebSocket frames built once and shared by every session.

Server frames are unmasked (RFC 6455 §5.1), so one event's frame bytes are identical for every
receiver: the gateway builds them once per encoding and each session only appends a reference.
"""

from __future__ import annotations

import struct

_TEXT = 0x81  # FIN + text
_BINARY = 0x82  # FIN + binary
_H16 = struct.Struct("!BBH")
_H64 = struct.Struct("!BBQ")


def ws_frame(payload: bytes, binary: bool) -> bytes:
    op = _BINARY if binary else _TEXT
    n = len(payload)
    if n < 126:
        return bytes((op, n)) + payload
    if n < 65536:
        return _H16.pack(op, 126, n) + payload
    return _H64.pack(op, 127, n) + payload
