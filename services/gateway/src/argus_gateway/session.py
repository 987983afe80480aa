"""One client connection's outbound side: a bounded outbox written once per loop turn.

Frames are appended by reference (they are shared, built once per event); the fan-out hub calls
`flush()` for every dirty session once per event-loop turn, and the session writes all pending
frames to the transport in one call. When the transport's buffer is above the high-water mark
the client is *behind*: quotes then conflate (newest per stream), and other data counts against
`outbox_bytes`; past it a stream's frames are dropped and the client gets one `GAP` per stream
(or is closed with 4008, per `slow_consumer`).

Delivery options (PROTOCOL.md §1) change only what a session does with the shared bytes:
`batch` collects the turn's DATA envelopes into one array frame, `conflate_s` holds quotes and
releases the newest per stream once per interval, `deflate_bits` picks the compressed variant.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from argus_protocol import Stream, encode

from .frames import json_array, msgpack_array, ws_deflate_frame, ws_frame

if TYPE_CHECKING:
    from .fanout import Topic

# What a session takes from the hub for each event (see `Session.variant`).
JSON_FRAME, MSGPACK_FRAME, JSON_PAYLOAD, MSGPACK_PAYLOAD = 0, 1, 2, 3
DEFLATE = 4  # + binary, + window bits << 3: a compressed frame


class Session:
    __slots__ = (
        "batch",
        "batched",
        "behind",
        "binary",
        "closed",
        "conflate_ms",
        "deflate_bits",
        "dirty",
        "encoding",
        "fast",
        "gap_frame",
        "gaps",
        "grant",
        "held",
        "high_water",
        "id",
        "merged",
        "on_dirty",
        "on_slow",
        "outbox_bytes",
        "pending",
        "plain",
        "quotes",
        "remote",
        "size",
        "slow_close",
        "streams",
        "symbols",
        "timer",
        "transport",
        "variant",
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
        batch: bool = False,
        conflate_ms: int = 0,
        deflate_bits: int = 0,
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
        self.batch = batch
        self.conflate_ms = conflate_ms
        self.deflate_bits = deflate_bits
        if batch:
            self.variant = MSGPACK_PAYLOAD if self.binary else JSON_PAYLOAD
        elif deflate_bits:
            self.variant = DEFLATE + self.binary + (deflate_bits << 3)
        else:
            self.variant = MSGPACK_FRAME if self.binary else JSON_FRAME
        self.plain = not batch and not conflate_ms  # plain sessions take the one-branch fast path
        self.fast = self.plain
        self.pending: list[bytes] = []
        self.batched: list[bytes] = []  # DATA payloads of the array frame being collected
        self.merged = 0  # envelopes written inside array frames beyond one per frame
        self.held: dict[str, tuple[bytes, Topic]] = {}  # conflate_ms: newest quote per stream
        self.timer: asyncio.TimerHandle | None = None
        self.size = 0
        self.dirty = False
        self.behind = False
        self.closed = False
        self.quotes: dict[str, bytes] = {}
        self.gaps: dict[str, list[Any]] = {}
        self.streams: set[Stream] = set()
        self.symbols: dict[str, int] = {}
        self.grant: Any = None

    # ------------------------------------------------------------------ enqueue
    def push_data(self, data: bytes, topic: Topic) -> None:
        """Hot path: called once per event per subscribed session; never awaits, never encodes."""
        if self.fast:
            self.pending.append(data)
            self.size += len(data)
            if not self.dirty:
                self.dirty = True
                self.on_dirty(self)
            return
        if self.closed:
            return
        if self.conflate_ms and topic.stream.type == "quote":
            self.held[topic.key] = (data, topic)  # newest wins until the interval ends
            if self.timer is None:
                self.timer = asyncio.get_running_loop().call_later(self.conflate_ms / 1000, self._release)
            return
        self._admit(data, topic)

    def _admit(self, data: bytes, topic: Topic) -> None:
        if self.behind:
            self._push_behind(data, topic)
            return
        (self.batched if self.batch else self.pending).append(data)
        self.size += len(data)
        if not self.dirty:
            self.dirty = True
            self.on_dirty(self)

    def _release(self) -> None:
        """End of a conflation interval: the newest quote of each stream goes out."""
        self.timer = None
        held = self.held
        self.held = {}
        if self.closed:
            return
        for data, topic in held.values():
            self._admit(data, topic)

    def _push_behind(self, data: bytes, topic: Topic) -> None:
        key = topic.key
        if topic.stream.type == "quote":
            self.quotes[key] = data  # conflate: only the newest quote per stream waits
            return
        gap = self.gaps.get(key)
        if gap is not None:
            gap[4] = topic.last_seq  # this stream is already gapped until the next flush
            return
        if self.size + len(data) <= self.outbox_bytes:
            (self.batched if self.batch else self.pending).append(data)
            self.size += len(data)
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
        if self.batched:
            self._seal()  # DATA collected so far goes first: order on the wire is order of events
        self.pending.append(frame)
        self.size += len(frame)
        if not self.dirty:
            self.dirty = True
            self.on_dirty(self)

    def _seal(self) -> None:
        """Close the array frame being collected (batch=1)."""
        items = self.batched
        self.batched = []
        payload = msgpack_array(items) if self.binary else json_array(items)
        bits = self.deflate_bits
        self.pending.append(ws_deflate_frame(payload, self.binary, bits) if bits else ws_frame(payload, self.binary))
        self.merged += len(items) - 1

    # ------------------------------------------------------------------ write
    def flush(self) -> tuple[int, int]:
        """Write what may be written now; returns (messages, bytes) written."""
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
            self.fast = self.plain
            if self.batched:
                self._seal()
            frames = self.pending
            for gap in self.gaps.values():
                frames.append(self.gap_frame(self, gap[0], gap[1], gap[2], gap[3], gap[4], "slow_consumer"))
            if self.quotes:
                if self.batch:
                    self.batched.extend(self.quotes.values())
                    self._seal()
                else:
                    frames.extend(self.quotes.values())
        elif buffered > self.high_water:
            self.behind = True
            self.fast = False
            return 0, 0
        else:
            if self.batched:
                self._seal()
            frames = self.pending
        if not frames:
            return 0, 0
        nbytes = self.size if self.plain and not self.quotes and not self.gaps else sum(map(len, frames))
        t.writelines(frames)
        n = len(frames) + self.merged
        self._clear()
        return n, nbytes

    def write_now(self) -> None:
        """Before a close: put everything queued on the wire regardless of backpressure."""
        t = self.transport
        if self.batched:
            self._seal()
        if t is not None and not t.is_closing() and self.pending:
            t.writelines(self.pending)
        self._clear()

    def discard_pending(self) -> None:
        self._clear()

    def cancel_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.held = {}

    def _clear(self) -> None:
        self.pending = []
        self.size = 0
        self.merged = 0
        if self.batched:
            self.batched = []
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
        key = stream.key  # nothing waiting for this stream may follow its UNSUBSCRIBED
        if self.held:
            self.held.pop(key, None)
        if self.quotes:
            self.quotes.pop(key, None)
        if self.gaps:
            self.gaps.pop(key, None)
        left = self.symbols[stream.symbol] - 1
        if left:
            self.symbols[stream.symbol] = left
        else:
            del self.symbols[stream.symbol]
        return True
