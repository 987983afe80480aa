"""The TDX wire format, server side: request framing, response headers and body encoders.

Written from the layout pytdx's parsers read, so the real pytdx client decodes what we send.
"""

from __future__ import annotations

import struct
import zlib
from datetime import datetime

MAGIC = 0x0074CBB1  # b1 cb 74 00
REQUEST_HEAD = 10  # 0c | seq(4) | type(1) | len(2) | len(2); len counts the command and body

CMD_SETUP1 = 0x000D
CMD_SETUP3 = 0x0FDB
CMD_QUOTES = 0x053E
CMD_BARS = 0x052D
CMD_MINUTES = 0x051D
CMD_TRANSACTIONS = 0x0FC5
CMD_XDXR = 0x000F
CMD_HISTORY_MINUTES = 0x0FB4
CMD_HISTORY_TRANSACTIONS = 0x0FB5
DATA_COMMANDS = {
    CMD_QUOTES: "quotes",
    CMD_BARS: "bars",
    CMD_MINUTES: "minutes",
    CMD_TRANSACTIONS: "transactions",
    CMD_XDXR: "xdxr",
    CMD_HISTORY_MINUTES: "history_minutes",
    CMD_HISTORY_TRANSACTIONS: "history_transactions",
}


def varint(value: int) -> bytes:
    """TDX's signed varint: 6 bits + sign in the first byte, then 7 bits per byte, low first."""
    sign = 0x40 if value < 0 else 0
    n = abs(value)
    first = (n & 0x3F) | sign
    n >>= 6
    out = bytearray()
    out.append(first | (0x80 if n else 0))
    while n:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
    return bytes(out)


def float32(value: float) -> bytes:
    """Volumes and amounts travel as IEEE-754 float32 (pytdx's get_volume reads them)."""
    return struct.pack("<f", value)


def parse_request_head(head: bytes) -> tuple[bytes, int, int]:
    """(seq bytes, packet type, length of command+body)."""
    if head[0] != 0x0C:
        raise ValueError(f"not a TDX request: {head.hex()}")
    seq = head[1:5]
    kind = head[5]
    (length, length2) = struct.unpack("<HH", head[6:10])
    if length != length2:
        raise ValueError("length fields differ")
    return seq, kind, length


def response(seq: bytes, command: int, body: bytes, compress_over: int = 64) -> bytes:
    """Header and body in one buffer; zlib exactly when the sizes differ."""
    payload = body
    if len(body) > compress_over:
        packed = zlib.compress(body)
        if len(packed) != len(body):
            payload = packed
    header = struct.pack("<IB4sBHHH", MAGIC, 0x0C, seq, 0, command, len(payload), len(body))
    return header + payload


def raw_price(price: float, decimals: int) -> int:
    return round(price * 10**decimals)


def servertime_raw(t: datetime) -> int:
    """pytdx renders HHMM + (fraction of the minute × 10000) as H:MM:SS.fff."""
    return t.hour * 1_000_000 + t.minute * 10_000 + round(t.second / 60 * 10_000)


def bar_datetime(category: int, t: datetime) -> bytes:
    if category < 4 or category in (7, 8):
        zipday = ((t.year - 2004) << 11) | (t.month * 100 + t.day)
        return struct.pack("<HH", zipday, t.hour * 60 + t.minute)
    return struct.pack("<I", t.year * 10000 + t.month * 100 + t.day)
