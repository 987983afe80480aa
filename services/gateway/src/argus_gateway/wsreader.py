"""Client-to-server WebSocket frames (RFC 6455 §5) read from a socket's bytes, one message at a time.

The reader holds what a connection has received and not yet read; `next()` returns the next
complete message (fragments joined, permessage-deflate inflated) or control frame, and raises
`Fault` with the close code a broken or hostile frame earns. A frame is refused by its header,
before its payload is buffered, so a declared size past `max_size` costs nothing; an inflated
message is bounded the same way while it inflates.
"""

from __future__ import annotations

import zlib

CONTINUATION, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
_DATA = (TEXT, BINARY)
_CONTROL = (CLOSE, PING, PONG)
_INFLATE_TAIL = b"\x00\x00\xff\xff"  # RFC 7692 §7.2.2: the receiver puts the flush marker back


class Fault(Exception):
    """A frame the connection must be failed for: `code` is the close code (1002, 1007, 1009)."""

    def __init__(self, code: int, why: str) -> None:
        super().__init__(why)
        self.code = code
        self.why = why


def unmask(payload: bytes | bytearray, mask: bytes) -> bytes:
    """XOR with the 4-byte mask, as one big-integer operation rather than a loop per byte."""
    n = len(payload)
    if not n:
        return b""
    key = (mask * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "little") ^ int.from_bytes(key, "little")).to_bytes(n, "little")


class FrameReader:
    __slots__ = ("buf", "compressed", "deflate", "max_size", "opcode", "parts", "size")

    def __init__(self, max_size: int, deflate: bool) -> None:
        self.max_size = max_size
        self.deflate = deflate  # permessage-deflate was negotiated: RSV1 marks a compressed message
        self.buf = bytearray()
        self.parts: list[bytes] | None = None  # a fragmented message's payloads so far
        self.opcode = 0  # its opcode
        self.compressed = False
        self.size = 0  # its bytes so far

    def feed(self, data: bytes) -> None:
        self.buf += data

    def next(self) -> tuple[int, bytes] | None:
        """The next message or control frame as (opcode, payload), or None until more bytes come."""
        while True:
            frame = self._frame()
            if frame is None:
                return None
            fin, rsv1, opcode, payload = frame
            if opcode in _CONTROL:
                return opcode, payload
            if opcode == CONTINUATION:
                if self.parts is None:
                    raise Fault(1002, "continuation frame without a message to continue")
                self.parts.append(payload)
            else:
                if self.parts is not None:
                    raise Fault(1002, "a new message began before the fragmented one ended")
                self.opcode, self.compressed, self.parts, self.size = opcode, rsv1, [payload], 0
            self.size += len(payload)
            if self.size > self.max_size:
                raise Fault(1009, f"message over {self.max_size} bytes")
            if not fin:
                continue
            parts, self.parts = self.parts, None
            message = parts[0] if len(parts) == 1 else b"".join(parts)
            if self.compressed:
                message = self._inflate(message)
            return self.opcode, message

    def _frame(self) -> tuple[bool, bool, int, bytes] | None:
        buf = self.buf
        have = len(buf)
        if have < 2:
            return None
        b0, b1 = buf[0], buf[1]
        fin, rsv1, opcode = bool(b0 & 0x80), bool(b0 & 0x40), b0 & 0x0F
        if b0 & 0x30:
            raise Fault(1002, "reserved bits RSV2/RSV3 set")
        if opcode not in _DATA and opcode not in _CONTROL and opcode != CONTINUATION:
            raise Fault(1002, f"unknown opcode {opcode}")
        if not b1 & 0x80:
            raise Fault(1002, "client frames must be masked")
        n = b1 & 0x7F
        at = 2
        if n == 126:
            if have < 4:
                return None
            n, at = int.from_bytes(buf[2:4], "big"), 4
        elif n == 127:
            if have < 10:
                return None
            n, at = int.from_bytes(buf[2:10], "big"), 10
        if opcode in _CONTROL:
            if not fin or n > 125:
                raise Fault(1002, "control frames are single frames of at most 125 bytes")
            if rsv1:
                raise Fault(1002, "a control frame cannot be compressed")
        elif rsv1 and (not self.deflate or opcode == CONTINUATION):
            raise Fault(1002, "RSV1 set without permessage-deflate on the message's first frame")
        if n > self.max_size - (self.size if opcode == CONTINUATION else 0):
            raise Fault(1009, f"frame over {self.max_size} bytes")
        end = at + 4 + n
        if have < end:
            return None
        payload = unmask(buf[at + 4 : end], bytes(buf[at : at + 4]))
        del buf[:end]
        return fin, rsv1, opcode, payload

    def _inflate(self, data: bytes) -> bytes:
        # A fresh inflater per message: the handshake asked for client_no_context_takeover, so an
        # idle connection keeps no zlib window (~40 KB) between its messages.
        d = zlib.decompressobj(-zlib.MAX_WBITS)
        try:
            out = d.decompress(data + _INFLATE_TAIL, self.max_size + 1)
        except zlib.error as e:
            raise Fault(1007, f"message does not inflate: {e}") from None
        if len(out) > self.max_size or d.unconsumed_tail:
            raise Fault(1009, f"message inflates past {self.max_size} bytes")
        return out
