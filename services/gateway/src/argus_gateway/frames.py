"""Server-to-client WebSocket frames built once and shared by every session.

Server frames are unmasked (RFC 6455 §5.1), so one event's frame bytes are identical for every
receiver: the gateway builds them once per encoding and each session only appends a reference.
Compressed frames (permessage-deflate, RFC 7692) are shared too: each message is deflated on its
own, without context takeover, which every client's inflater accepts whatever it negotiated.
"""

from __future__ import annotations

import struct
import zlib

_TEXT = 0x81  # FIN + text
_BINARY = 0x82  # FIN + binary
_RSV1 = 0x40  # "this message is compressed"
PING = bytes((0x89, 0))  # FIN + ping, no payload: a control frame is never compressed
_H16 = struct.Struct("!BBH")
_H64 = struct.Struct("!BBQ")
_SYNC_TAIL = b"\x00\x00\xff\xff"
DEFLATE_LEVEL = 1  # short JSON gains most of its saving at level 1, at a fraction of the CPU


def _header(op: int, n: int) -> bytes:
    if n < 126:
        return bytes((op, n))
    if n < 65536:
        return _H16.pack(op, 126, n)
    return _H64.pack(op, 127, n)


def ws_frame(payload: bytes, binary: bool) -> bytes:
    return _header(_BINARY if binary else _TEXT, len(payload)) + payload


def ws_deflate_frame(payload: bytes, binary: bool, window_bits: int = 15) -> bytes:
    """One compressed message; `window_bits` no larger than the client allowed the server."""
    c = zlib.compressobj(DEFLATE_LEVEL, zlib.DEFLATED, -window_bits)
    body = c.compress(payload) + c.flush(zlib.Z_SYNC_FLUSH)
    if body.endswith(_SYNC_TAIL):
        body = body[:-4]  # RFC 7692 §7.2.1: the sender removes the flush marker
    return _header((_BINARY if binary else _TEXT) | _RSV1, len(body)) + body


def json_array(items: list[bytes]) -> bytes:
    return b"[" + b",".join(items) + b"]"


def msgpack_array(items: list[bytes]) -> bytes:
    """A MessagePack array of already-encoded elements: a header, then the elements as they are."""
    n = len(items)
    if n < 16:
        head = bytes((0x90 | n,))
    elif n < 65536:
        head = b"\xdc" + n.to_bytes(2, "big")
    else:
        head = b"\xdd" + n.to_bytes(4, "big")
    return head + b"".join(items)
