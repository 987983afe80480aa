"""One client connection's outbound side: a bounded outbox written once per loop turn.

Frames are appended by reference (they are shared, built once per event); the fan-out hub calls
`flush()` for every dirty session once per event-loop turn, and the session writes all pending
frames to the transport in one call. When the transport's buffer is above the high-water mark
the client is *behind*: quotes then conflate (newest per stream), and other data counts against
`outbox_bytes`; past it a stream's frames are dropped and the client gets one `GAP` per stream
(or is closed with 4008, per `slow_consumer`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from argus_protocol import Stream, encode

from .frames import ws_frame

if TYPE_CHECKING:
    from .fanout import Topic


class Session:
    __slots__ = (
        "behind",
        "binary",
        "closed",
        "dirty",
        "encoding",
        "gap_frame",
        "gaps",
        "grant",
        "high_water",
        "id",
        "meta",
        "on_dirty",
        "on_slow",
        "outbox_bytes",
        "pending",
        "quotes",
        "remote",
        "size",
        "slow_close",
        "streams",
        "symbols",
        "transport",
    )

    def __init__(
        self,
        session_id: str,
        transport: asyncio.Transport | Any,
        encoding: str,
        *,
        outbox_bytes: int,
        high_water: int,
        slow_close: bool,
        on_dirty: Callable[[Session], None],
        on_slow: Callable[[Session], None],
        gap_frame: Callable[[Session, str, str, str, int, int, str], bytes],
        remote: str = "",
    ) -> None:
        self.id = session_id
        self.transport = transport
        self.encoding = encoding
        self.binary = encoding == "msgpack"
        self.outbox_bytes = outbox_bytes
        self.high_water = high_water
        self.slow_close = slow_close
        self.on_dirty = on_dirty
        self.on_slow = on_slow
        self.gap_frame = gap_frame
        self.remote = remote
        self.pending: list[bytes] = []
        self.size = 0
        self.dirty = False
        self.behind = False
        self.closed = False
        self.quotes: dict[str, bytes] = {}
        self.gaps: dict[str, list[Any]] = {}
        self.streams: set[Stream] = set()
        self.symbols: dict[str, int] = {}
        self.grant: Any = None
        self.meta: dict[str, Any] = {}

    # ------------------------------------------------------------------ enqueue
    def push_data(self, frame: bytes, topic: Topic) -> None:
        """Hot path: called once per event per subscribed session; never awaits, never encodes."""
        if not self.behind:
            self.pending.append(frame)
            self.size += len(frame)
            if not self.dirty:
                self.dirty = True
                self.on_dirty(self)
            return
        self._push_behind(frame, topic)

    def _push_behind(self, frame: bytes, topic: Topic) -> None:
        if self.closed:
            return
        key = topic.key
        if topic.stream.type == "quote":
            self.quotes[key] = frame  # conflate: only the newest quote per stream waits
            return
        gap = self.gaps.get(key)
        if gap is not None:
            gap[4] = topic.last_seq  # this stream is already gapped until the next flush
            return
        if self.size + len(frame) <= self.outbox_bytes:
            self.pending.append(frame)
            self.size += len(frame)
            return
        if self.slow_close:
            self.on_slow(self)
            return
        s = topic.stream
        self.gaps[key] = [s.type, s.symbol, s.period, topic.last_seq, topic.last_seq]

    def send(self, payload_obj: Any) -> None:
        """Queue a control message (ERROR, SUBSCRIBED, STATUS...), encoded for this session."""
        self.push_frame(ws_frame(encode(payload_obj, self.encoding), self.binary))

    def push_frame(self, frame: bytes) -> None:
        if self.closed:
            return
        self.pending.append(frame)
        self.size += len(frame)
        if not self.dirty:
            self.dirty = True
            self.on_dirty(self)

    # ------------------------------------------------------------------ write
    def flush(self) -> tuple[int, int]:
        """Write what may be written now; returns (frames, bytes) written."""
        self.dirty = False
        t = self.transport
        if self.closed or t is None or t.is_closing():
            self._clear()
            return 0, 0
        buffered = t.get_write_buffer_size()
        if self.behind:
            if buffered > self.high_water // 2:
                return 0, 0
            self.behind = False
            frames = self.pending
            for gap in self.gaps.values():
                frames.append(self.gap_frame(self, gap[0], gap[1], gap[2], gap[3], gap[4], "slow_consumer"))
            frames.extend(self.quotes.values())
        elif buffered > self.high_water:
            self.behind = True
            return 0, 0
        else:
            frames = self.pending
        if not frames:
            return 0, 0
        nbytes = sum(map(len, frames)) if self.quotes or self.gaps else self.size
        t.writelines(frames)
        n = len(frames)
        self._clear()
        return n, nbytes

    def write_now(self) -> None:
        """Before a close: put everything queued on the wire regardless of backpressure."""
        t = self.transport
        if t is not None and not t.is_closing() and self.pending:
            t.writelines(self.pending)
        self._clear()

    def discard_pending(self) -> None:
        self._clear()

    def _clear(self) -> None:
        self.pending = []
        self.size = 0
        if self.quotes:
            self.quotes = {}
        if self.gaps:
            self.gaps = {}

    # ------------------------------------------------------------------ subscriptions
    def add_stream(self, stream: Stream) -> bool:
        if stream in self.streams:
            return False
        self.streams.add(stream)
        self.symbols[stream.symbol] = self.symbols.get(stream.symbol, 0) + 1
        return True

    def remove_stream(self, stream: Stream) -> bool:
        if stream not in self.streams:
            return False
        self.streams.discard(stream)
        left = self.symbols[stream.symbol] - 1
        if left:
            self.symbols[stream.symbol] = left
        else:
            del self.symbols[stream.symbol]
        return True
