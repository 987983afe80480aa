"""Many quotes as columns: how a vectorised source hands over a step's quotes, and how the runner
writes their PUBs with no Python object per quote.

A `QuoteBlock` is n quotes taken at one instant, each with the same number of book levels a side,
as numpy columns. `BlockWriter.pubs` writes them as the MessagePack map msgspec writes for the same
`QuoteEvent`: the same keys in the same order, floats as float64. Each quote is one numpy record:
the PUB line and the map's keys, markers and source are constant bytes, and every number sits at a
fixed offset. A block's records are filled a column at a time and taken as one `tobytes()`. An
integer column takes the narrowest MessagePack width that holds all of its values, so a value may
be written wider than msgspec would write it alone; every MessagePack reader accepts that (the
spec allows any width). `QuoteBlock.events()` gives the same quotes as `QuoteEvent` objects: the
reference that tests decode the PUBs against.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import msgspec
import numpy as np
import numpy.typing as npt
from argus_protocol import Quote, QuoteEvent

F8 = npt.NDArray[np.float64]
I8 = npt.NDArray[np.int64]
MAX_LEVELS = 15  # a fixarray's header holds up to 15 items
_SCALARS = ("price", "open", "high", "low", "prev_close", "volume", "amount")
_BOOK = ("bid_prices", "bid_volumes", "ask_prices", "ask_volumes")


@dataclass(slots=True)
class QuoteBlock:
    """n quotes of one instant (`timestamp`, the quotes' own time) from `source` ("": the
    runner's name). Row i is `symbols[i]`'s quote; symbols and timestamp are ASCII, as Argus's all
    are. The book columns are n × levels, 0 to 15 levels, the same on both sides (0: quotes
    without a book, whose empty levels are not sent)."""

    symbols: list[str]
    timestamp: str
    price: F8
    open: F8
    high: F8
    low: F8
    prev_close: F8
    volume: I8
    amount: F8
    bid_prices: F8
    bid_volumes: I8
    ask_prices: F8
    ask_volumes: I8
    source: str = ""

    def __len__(self) -> int:
        return len(self.symbols)

    @property
    def levels(self) -> int:
        return int(self.bid_prices.shape[1])

    def events(self) -> list[QuoteEvent]:
        """The block as event objects (seq and ts not stamped)."""
        cols = [getattr(self, name).tolist() for name in (*_SCALARS, *_BOOK)]
        return [
            QuoteEvent(
                symbol=sym,
                source=self.source,
                quote=Quote(
                    price=p,
                    open=o,
                    high=h,
                    low=lw,
                    prev_close=pc,
                    volume=v,
                    amount=a,
                    timestamp=self.timestamp,
                    bid_prices=bp,
                    bid_volumes=bv,
                    ask_prices=ap,
                    ask_volumes=av,
                ),
            )
            for sym, p, o, h, lw, pc, v, a, bp, bv, ap, av in zip(self.symbols, *cols, strict=True)
        ]


def _packed(value: str | int) -> bytes:
    return msgspec.msgpack.encode(value)


def int_width(values: npt.NDArray[np.int64]) -> tuple[bytes, str]:
    """The MessagePack marker and big-endian numpy format that hold every value of a column."""
    if not values.size:
        return b"", "u1"
    lo, hi = int(values.min()), int(values.max())
    if lo < 0:
        return b"\xd3", ">i8"
    if hi < 128:
        return b"", "u1"  # positive fixint: the value is the byte
    for marker, fmt, top in ((b"\xcc", "u1", 1 << 8), (b"\xcd", ">u2", 1 << 16), (b"\xce", ">u4", 1 << 32)):
        if hi < top:
            return marker, fmt
    return b"\xcf", ">u8"


@dataclass(frozen=True, slots=True)
class _Field:
    """Numbers at a fixed offset: one, or `levels` of them each after its `marker` (a book side)."""

    name: str
    fmt: str
    levels: int = 0
    marker: bytes = b""


_Part = bytes | _Field


class _Layout:
    """One record layout: its dtype, a record holding its constant bytes, its payload's length."""

    __slots__ = ("dtype", "payload", "template")

    def __init__(self, parts: list[_Part], pub_len: int) -> None:
        fields: list[tuple[str, Any]] = []
        consts: dict[str, bytes] = {}
        markers: dict[str, bytes] = {}
        for part in parts:
            if isinstance(part, bytes):
                if fields and fields[-1][0] in consts:  # constants that follow each other: one field
                    name = fields[-1][0]
                    consts[name] += part
                    fields[-1] = (name, f"S{len(consts[name])}")
                else:
                    name = f"_c{len(consts)}"
                    consts[name] = part
                    fields.append((name, f"S{len(part)}"))
            elif part.levels and part.marker:
                markers[part.name] = part.marker
                fields.append((part.name, ([("m", "S1"), ("v", part.fmt)], (part.levels,))))
            elif part.levels:
                fields.append((part.name, (part.fmt, (part.levels,))))
            else:
                fields.append((part.name, part.fmt))
        self.payload = np.dtype(fields).itemsize - 2  # the CRLF after it is the last constant
        tail = b"%d\r\n" % self.payload  # ends the PUB line after the subject's prefix
        self.dtype = np.dtype([("pub", f"S{pub_len}"), ("_tail", f"S{len(tail)}"), *fields])
        consts["_tail"] = tail
        template = np.zeros((), self.dtype)
        for name, value in consts.items():
            template[name] = value
        for name, marker in markers.items():
            template[name]["m"] = marker
        self.template = template.tobytes()  # a block's records start as copies of it


class BlockWriter:
    """Writes blocks' PUBs; one per publisher, keeping the layouts it has made."""

    MOST_LAYOUTS = 256  # seq and volume widths, symbol lengths, sources: a handful in practice

    def __init__(self) -> None:
        self._layouts: dict[tuple[Any, ...], _Layout] = {}

    def pubs(
        self, block: QuoteBlock, rows: Sequence[int], prefixes: Sequence[bytes], seqs: Sequence[int], ts: int
    ) -> tuple[bytes, int, int]:
        """The PUBs of `block`'s `rows`, each with its subject's `pub_prefix` and seq, as one
        buffer in the order given; with the bytes of their payloads and the longest payload."""
        if not rows:
            return b"", 0, 0
        shape = block.bid_prices.shape
        if (
            len(shape) != 2
            or shape[0] != len(block)
            or shape[1] > MAX_LEVELS
            or any(getattr(block, name).shape != shape for name in _BOOK)
        ):
            raise ValueError(f"a block's book has 0..{MAX_LEVELS} levels, the same on both sides, a row per quote")
        if any(getattr(block, name).dtype.kind not in "iu" for name in ("volume", "bid_volumes", "ask_volumes")):
            raise ValueError("a block's volumes are integer columns")
        symbols = block.symbols
        if len(set(map(len, symbols))) == 1 and len(set(map(len, prefixes))) == 1:
            return self._write(block, rows, prefixes, seqs, ts)
        # symbols of several lengths: one layout each, their PUBs put back in the order given
        groups: dict[tuple[int, int], list[int]] = {}
        for k, (i, p) in enumerate(zip(rows, prefixes, strict=True)):
            groups.setdefault((len(symbols[i]), len(p)), []).append(k)
        placed: list[bytes] = [b""] * len(rows)
        total = longest = 0
        for ks in groups.values():
            blob, size, most = self._write(
                block, [rows[k] for k in ks], [prefixes[k] for k in ks], [seqs[k] for k in ks], ts
            )
            width = len(blob) // len(ks)
            for j, k in enumerate(ks):
                placed[k] = blob[j * width : (j + 1) * width]
            total += size
            longest = max(longest, most)
        return b"".join(placed), total, longest

    def _write(
        self, block: QuoteBlock, rows: Sequence[int], prefixes: Sequence[bytes], seqs: Sequence[int], ts: int
    ) -> tuple[bytes, int, int]:
        """`pubs` for rows whose symbols (and prefixes) are all one length."""
        idx = np.asarray(rows, np.intp)
        whole = len(idx) == len(block) and bool((idx == np.arange(len(idx))).all())
        take: Any = slice(None) if whole else idx  # every row in order: the columns as they are
        seq = np.asarray(seqs, np.int64)
        layout = self._layout(block, block.symbols[rows[0]], len(prefixes[0]), seq, ts)
        rec = np.frombuffer(bytearray(layout.template * len(rows)), layout.dtype)  # a byte copy: fast
        rec["pub"] = prefixes
        rec["symbol"] = block.symbols if whole else [block.symbols[i] for i in rows]
        if block.timestamp:
            rec["timestamp"] = block.timestamp
        rec["seq"] = seq
        rec["ts"] = ts
        for name in _SCALARS:
            rec[name] = getattr(block, name)[take]
        if block.levels:
            for name in _BOOK:
                values = getattr(block, name)[take]
                if rec.dtype[name].base.names:  # each level after its marker
                    rec[name]["v"] = values
                else:
                    rec[name] = values
        return rec.tobytes(), layout.payload * len(rows), layout.payload

    def _layout(self, block: QuoteBlock, symbol: str, pub_len: int, seq: I8, ts: int) -> _Layout:
        # the whole block's volume columns: rows left out can only make a width wider, never wrong
        widths = (
            int_width(seq),
            int_width(np.array([ts], np.int64)),
            int_width(block.volume),
            *(int_width(getattr(block, f"{side}_volumes")) for side in ("bid", "ask") if block.levels),
        )
        key = (widths, block.levels, len(symbol), pub_len, block.source, len(block.timestamp))
        layout = self._layouts.get(key)
        if layout is None:
            if len(self._layouts) >= self.MOST_LAYOUTS:
                self._layouts.clear()
            layout = self._layouts[key] = _Layout(_parts(block, symbol, widths), pub_len)
        return layout


def _parts(block: QuoteBlock, symbol: str, widths: tuple[tuple[bytes, str], ...]) -> list[_Part]:
    """A quote event's MessagePack map as msgspec writes it: constant bytes and number fields."""
    levels = block.levels
    (seq_marker, seq_fmt), (ts_marker, ts_fmt), (vol_marker, vol_fmt), *book = widths
    source = _packed("source") + _packed(block.source) if block.source else b""  # "" is not sent, as msgspec omits it
    parts: list[_Part] = [
        bytes([0x80 + (6 if source else 5)]) + _packed("type") + _packed("quote"),
        _packed("quote") + bytes([0x80 + (12 if levels else 8)]),
    ]
    for name in ("price", "open", "high", "low", "prev_close"):
        parts += [_packed(name) + b"\xcb", _Field(name, ">f8")]
    parts += [_packed("volume") + vol_marker, _Field("volume", vol_fmt)]
    parts += [_packed("amount") + b"\xcb", _Field("amount", ">f8")]
    parts += [_packed("timestamp"), *_string("timestamp", block.timestamp)]
    for side, (marker, fmt) in zip(("bid", "ask") if levels else (), book, strict=True):
        header = bytes([0x90 + levels])
        parts += [_packed(f"{side}_prices") + header, _Field(f"{side}_prices", ">f8", levels, b"\xcb")]
        parts += [_packed(f"{side}_volumes") + header, _Field(f"{side}_volumes", fmt, levels, marker)]
    parts += [
        _packed("symbol"),
        *_string("symbol", symbol),
        source + _packed("seq") + seq_marker,
        _Field("seq", seq_fmt),
        _packed("ts") + ts_marker,
        _Field("ts", ts_fmt),
    ]
    parts.append(b"\r\n")
    return parts


def _string(name: str, like: str) -> list[_Part]:
    """A string field as long as `like`: its MessagePack header, then its bytes (none when empty)."""
    packed = _packed(like)
    header = packed[: len(packed) - len(like)]  # fixstr, str8 or str16: whatever msgspec writes
    return [header, _Field(name, f"S{len(like)}")] if like else [header]
