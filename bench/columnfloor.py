"""What a quote would cost a publisher that never makes a Python object per quote: the floor under
a columnar mock, beside bench/quotefloor.py's floor under the one it has.

Each symbol's PUB of a quote event is laid out once as a numpy record: the PUB line, the
MessagePack map's keys and markers as constant bytes, every number at a fixed offset (floats as
float64, integers as int64: MessagePack allows any width, and msgspec reads them all). A step then
gathers its symbols' records, writes each column of numbers into them at once (the prices, the
book, seq, ts), and takes the whole step's PUBs as one `tobytes()`. Measured back to back and
paced, as quotefloor is. Bench-only: Argus's runner still publishes one event object at a time;
this says what a columnar path through it could reach (issue 16's mock ≤ 5 µs per event).
"""

from __future__ import annotations

import random
import time
from typing import Any

import msgspec
import numpy as np
from argus_service.natswire import pub_prefix

from . import quotefloor

LEVELS = 5
SOURCE = "floor"
TIMESTAMP = "2026-12-02T10:00:00.000+08:00"  # the mock's timestamps are all this long
_QUOTE_FLOATS = ("price", "open", "high", "low", "prev_close")


def _key(name: str) -> bytes:
    return msgspec.msgpack.encode(name)


def layout(symbol_len: int) -> tuple[list[tuple[str, str]], dict[str, bytes], int]:
    """The record of one PUB's payload and CRLF (after its line): its fields, the constant bytes
    of those that never change, and the payload's length."""
    f8, i8 = b"\xcb", b"\xd3"  # MessagePack's float64 and int64 markers
    parts: list[bytes | tuple[str, str]] = [b"\x86" + _key("type") + _key("quote") + _key("quote") + b"\x8c"]
    for name in _QUOTE_FLOATS:
        parts += [_key(name) + f8, (name, ">f8")]
    parts += [_key("volume") + i8, ("volume", ">i8"), _key("amount") + f8, ("amount", ">f8")]
    parts.append(_key("timestamp") + msgspec.msgpack.encode(TIMESTAMP))
    book = (
        ("bid_prices", f8, ">f8"),
        ("bid_volumes", i8, ">i8"),
        ("ask_prices", f8, ">f8"),
        ("ask_volumes", i8, ">i8"),
    )
    for side, marker, fmt in book:
        parts.append(_key(side) + bytes([0x90 + LEVELS]))
        for i in range(LEVELS):
            parts += [marker, (f"{side}{i}", fmt)]
    parts += [_key("symbol") + bytes([0xA0 + symbol_len]), ("symbol", f"S{symbol_len}")]
    parts += [_key("source") + msgspec.msgpack.encode(SOURCE) + _key("seq") + i8, ("seq", ">i8")]
    parts += [_key("ts") + i8, ("ts", ">i8"), b"\r\n"]
    fields: list[tuple[str, str]] = []
    const: dict[str, bytes] = {}
    for part in parts:
        if isinstance(part, tuple):
            fields.append(part)
        elif fields and fields[-1][0] in const:  # constants that follow each other: one field
            name = fields[-1][0]
            const[name] += part
            fields[-1] = (name, f"S{len(const[name])}")
        else:
            name = f"c{len(const)}"
            const[name] = part
            fields.append((name, f"S{len(part)}"))
    return fields, const, np.dtype(fields).itemsize - 2


class ColumnPublisher:
    """Every symbol's record made once; a step fills the numbers of the symbols it updates."""

    def __init__(self, names: list[str]) -> None:
        lengths = {len(s) for s in names}
        assert len(lengths) == 1, "one layout per symbol length; a market's codes share one"
        fields, const, payload = layout(lengths.pop())
        lines = [pub_prefix(f"quote.{s}") + b"%d\r\n" % payload for s in names]  # all one length
        rows = np.zeros(len(names), np.dtype([("line", f"S{len(lines[0])}"), *fields]))
        for name, value in const.items():
            rows[name] = value
        rows["symbol"] = [s.encode() for s in names]
        rows["line"] = lines
        self.rows = rows
        self.seq = np.zeros(len(names), np.int64)

    def step(self, idx: np.ndarray, columns: dict[str, np.ndarray], ts: int) -> bytes:
        """The PUBs of the symbols at `idx` with this step's numbers, as one buffer."""
        rec = self.rows[idx]  # a copy: the constant bytes come along
        for name, values in columns.items():
            rec[name] = values
        self.seq[idx] += 1
        rec["seq"] = self.seq[idx]
        rec["ts"] = ts
        return rec.tobytes()


def steps(per_step: int, count: int, period: float, symbols: int = 1000) -> tuple[float, bytes]:
    """CPU seconds per quote over `count` steps, `period` seconds apart (0: back to back), and the
    last step's PUBs."""
    rnd = random.Random(1)
    names = [f"{i:06d}.SZ" for i in range(1, symbols + 1)]
    pub = ColumnPublisher(names)
    touches = np.array([rnd.randrange(500, 10_000) for _ in names], np.int64)
    volume_rows = np.array([[rnd.randrange(1, 65) * 100 for _ in range(LEVELS)] for _ in range(4096)], np.int64)
    numbers = np.random.default_rng(1).uniform(5, 100, (8, per_step))
    spent = 0.0
    done = 0
    blob = b""
    for k in range(count):
        if period:
            time.sleep(period)
        first = (k * per_step) % symbols
        cpu = time.thread_time()
        idx = (first + np.arange(per_step)) % symbols
        cols: dict[str, np.ndarray] = {n: numbers[i] + k for i, n in enumerate(_QUOTE_FLOATS)}
        cols["amount"] = numbers[5] + k
        cols["volume"] = (numbers[6] * 1000).astype(np.int64)
        touch = touches[idx]
        bids, asks = volume_rows[idx * 7 & 4095], volume_rows[idx * 13 & 4095]
        for i in range(LEVELS):
            cols[f"bid_prices{i}"] = (touch - i) / 100
            cols[f"ask_prices{i}"] = (touch + 1 + i) / 100
            cols[f"bid_volumes{i}"] = bids[:, i]
            cols[f"ask_volumes{i}"] = asks[:, i]
        blob = pub.step(idx, cols, k)
        spent += time.thread_time() - cpu
        done += per_step
    return spent / done, blob


def measure(
    per_step: int = 500, count: int = 100, period: float = 0.05, symbols: int = 1000, core: int | None = 0
) -> dict[str, Any]:
    """µs per quote back to back and at `period` seconds between steps, on `core`."""
    return quotefloor.measure(per_step, count, period, symbols, core, walk=steps)


if __name__ == "__main__":
    print(measure())
