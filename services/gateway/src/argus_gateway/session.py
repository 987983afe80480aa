"""One client connection's outbound side: a bounded outbox written once per loop turn.

Frames are appended by reference (they are shared, built once per event); the fan-out hub calls
`flush()` for every dirty session once per event-loop turn, and the session writes all pending
frames to the transport in one call. When the transport's buffer is above the high-water mark
the client is *behind*: quotes then conflate (newest per stream), and other data counts against
`outbox_bytes`; past it a stream's frames are dropped and the client gets one `GAP` per stream
(or is closed with 4008, per `slow_consumer`).

Replays (snapshots, history, resume) queue here as `ReplayRequest`s; the hub moves them into the
outbox as the socket has room (`replay.py`). While a stream's replay is pending its live events
are *held* (`hold`), counted against the same bound, and released after it (`release`).

Delivery options (PROTOCOL §1) change only what a session does with the shared bytes: `batch`
collects the turn's DATA envelopes into one array frame, `conflate_ms` holds quotes and releases
the newest per stream once per interval, `deflate_bits` picks the compressed variant.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from argus_protocol import Stream, encode

from .dataframe import variant_of
from .frames import json_array, msgpack_array, ws_deflate_frame, ws_frame

if TYPE_CHECKING:
    from .replay import ReplayRequest
    from .topic import Topic

GapFrame = Callable[["Session", str, str, str, int, int, str], bytes]


class _Hold:
    """Live events of one stream waiting behind its replay."""

    __slots__ = ("gap_from", "gap_to", "items")

    def __init__(self) -> None:
        self.items: list[tuple[int, bytes]] = []  # (seq, the bytes this session takes)
        self.gap_from = 0  # events dropped while the hold was over the outbox bound
        self.gap_to = 0


class Session:
    __slots__ = (
        "batch",
        "batched",
        "behind",
        "binary",
        "closed",
        "conflate_ms",
        "control",
        "deflate_bits",
        "dirty",
        "encoding",
        "fast",
        "gap_frame",
        "gaps",
        "grant",
        "held",
        "high_water",
        "holds",
        "id",
        "merged",
        "on_dirty",
        "on_slow",
        "outbox_bytes",
        "pending",
        "plain",
        "quote_gaps",
        "quotes",
        "remote",
        "replays",
        "single",
        "size",
        "skipped",
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
        gap_frame: GapFrame,
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
        self.variant = variant_of(self.binary, batch, deflate_bits)  # what live DATA it takes
        self.single = variant_of(self.binary, False, deflate_bits)  # replays travel one per frame
        self.plain = not batch and not conflate_ms  # plain sessions take the one-branch fast path
        self.fast = self.plain
        self.pending: list[bytes] = []
        self.batched: list[bytes] = []  # DATA payloads of the array frame being collected
        self.merged = 0  # envelopes written inside array frames beyond one per frame
        self.held: dict[str, tuple[bytes, Topic]] = {}  # conflate_ms: newest quote per stream
        self.timer: asyncio.TimerHandle | None = None
        self.size = 0
        self.control = 0  # bytes of control frames among them (queued since the last write)
        self.dirty = False
        self.behind = False
        self.closed = False
        self.quotes: dict[str, tuple[int, bytes]] = {}  # behind: the newest quote per stream, with its seq
        self.quote_gaps: dict[str, list[Any]] = {}  # quotes skipped while past the outbox bound
        self.skipped = 0  # quotes conflated away since the hub last counted them
        self.gaps: dict[str, list[Any]] = {}
        self.holds: dict[str, _Hold] = {}  # stream key -> live events waiting for its replay
        self.replays: list[ReplayRequest] = []  # mostly empty, a list: an empty deque is ~600 B a session
        self.streams: dict[Stream, None] = {}  # a dict, not a set: 352 B for 10 streams where a set takes 728
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
        if self.holds:
            hold = self.holds.get(topic.key)
            if hold is not None:
                self._hold(hold, data, topic)
                return
        if self.conflate_ms and topic.stream.type == "quote":
            self.held[topic.key] = (data, topic)  # newest wins until the interval ends
            if self.timer is None:
                self.timer = asyncio.get_running_loop().call_later(self.conflate_ms / 1000, self._release_conflated)
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

    def _release_conflated(self) -> None:
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
            prev = self.quotes.get(key)
            if prev is not None:  # conflated: only the newest quote per stream waits
                self.skipped += 1
                if self.gaps or self.size >= self.outbox_bytes:  # and past its bound: announced as lost
                    gap = self.quote_gaps.get(key)
                    if gap is None:
                        st = topic.stream
                        self.quote_gaps[key] = [st.type, st.symbol, st.period, prev[0], prev[0]]
                    else:
                        gap[4] = prev[0]
            self.quotes[key] = (topic.last_seq, data)
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
        self.control += len(frame)
        if self.behind and self.control > self.outbox_bytes:
            # Control frames (replies, ERROR, STATUS, GAP) cannot be dropped like data: once they
            # alone fill the bound, a client that is not reading is closed (4008).
            self.on_slow(self)
            return
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

    # ------------------------------------------------------------------ replays
    def queue_replay(self, req: ReplayRequest, keys: list[str]) -> None:
        """Queue a SUBSCRIBE's replays; live events of `keys` wait behind them from now on."""
        for key in keys:
            self.holds.setdefault(key, _Hold())
        self.fast = False
        self.replays.append(req)
        if not self.dirty:
            self.dirty = True
            self.on_dirty(self)

    def has_room(self) -> bool:
        """Whether more replay may join the outbox now (the socket drains and the bound holds)."""
        if self.closed or self.behind or self.size >= self.outbox_bytes:
            return False
        t = self.transport
        return t is not None and not t.is_closing() and t.get_write_buffer_size() <= self.high_water

    def _hold(self, hold: _Hold, data: bytes, topic: Topic) -> None:
        seq = topic.last_seq
        if hold.gap_from:
            hold.gap_to = seq  # over the bound: everything until the release is one GAP
            return
        items = hold.items
        if topic.stream.type == "quote" and items and items[-1][0]:
            self.size -= len(items[-1][1])
            items[-1] = (seq, data)  # only the newest quote is worth keeping
            self.size += len(data)
            return
        if self.size + len(data) > self.outbox_bytes:
            if self.slow_close:
                self.on_slow(self)
                return
            hold.gap_from = hold.gap_to = seq
            return
        items.append((seq, data))
        self.size += len(data)

    def renumbered(self, topic: Topic) -> None:
        """The stream's seq began again while its events are held: say so where it happened."""
        hold = self.holds.get(topic.key)
        if hold is not None and not hold.gap_from:
            hold.items.append((0, b""))

    def release(self, topic: Topic, after: int, expect: int) -> None:
        """The stream's replay is queued: its held live events follow, those up to `after` (already
        replayed) dropped; a hole from `expect` on, or between held events, becomes a GAP."""
        hold = self.holds.pop(topic.key, None)
        if not self.holds:
            self.holds = {}  # a dict keeps the table it grew to: an empty one for every idle session
            if not self.replays:
                self.fast = self.plain and not self.behind
        if hold is None or self.closed:
            return
        s = topic.stream
        check = s.type != "quote"  # quotes supersede each other: a skipped one is no loss
        reset = False
        for seq, data in hold.items:
            self.size -= len(data)
            if seq == 0:  # renumbered here: what follows is a new numbering
                reset, after, expect = True, 0, 0
                continue
            if seq <= after:
                continue
            if reset:
                self.push_frame(self.gap_frame(self, s.type, s.symbol, s.period, 1, seq - 1, "reset"))
                reset = False
            elif check and expect and seq > expect:
                self.push_frame(self.gap_frame(self, s.type, s.symbol, s.period, expect, seq - 1, "upstream"))
            expect = seq + 1
            self._admit(data, topic)
        if hold.gap_from:
            reason = "slow_consumer"
            self.push_frame(self.gap_frame(self, s.type, s.symbol, s.period, hold.gap_from, hold.gap_to, reason))

    def replays_done(self) -> None:
        if not self.replays and not self.holds:
            self.fast = self.plain and not self.behind

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
            self.fast = self.plain and not self.holds and not self.replays
            if self.batched:
                self._seal()
            frames = self.pending
            for gap in (*self.gaps.values(), *self.quote_gaps.values()):
                frames.append(self.gap_frame(self, gap[0], gap[1], gap[2], gap[3], gap[4], "slow_consumer"))
            if self.quotes:
                if self.batch:
                    self.batched.extend(data for _, data in self.quotes.values())
                    self._seal()
                else:
                    frames.extend(data for _, data in self.quotes.values())
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
        written = self._written_size() if self.holds else self.size  # outbox bytes leaving now (held ones stay)
        nbytes = sum(map(len, frames)) if (self.quotes or self.gaps or not self.plain) else written
        # one contiguous buffer: uvloop's writelines of 20 frames cost 9.4 µs a send, a join 6.0
        t.write(frames[0] if len(frames) == 1 else b"".join(frames))
        n = len(frames) + self.merged
        self._sent(written)
        if t.get_write_buffer_size() > self.high_water:  # the socket did not take it: behind from now on
            self.behind = True
            self.fast = False
        return n, nbytes

    def _written_size(self) -> int:
        held = 0
        for hold in self.holds.values():
            for _, data in hold.items:
                held += len(data)
        return self.size - held

    def _sent(self, written: int) -> None:
        """The outbox (`written` of its bytes) went to the socket; held events stay counted."""
        self.pending = []
        self.size -= written
        self.control = 0
        self.merged = 0
        if self.quotes:
            self.quotes = {}
        if self.gaps:
            self.gaps = {}
        if self.quote_gaps:
            self.quote_gaps = {}

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
        self.control = 0
        self.merged = 0
        if self.batched:
            self.batched = []
        if self.quotes:
            self.quotes = {}
        if self.gaps:
            self.gaps = {}
        if self.quote_gaps:
            self.quote_gaps = {}
        if self.holds:
            self.holds = {}
        if self.replays:
            self.replays = []

    # ------------------------------------------------------------------ subscriptions
    def add_stream(self, stream: Stream) -> bool:
        if stream in self.streams:
            return False
        self.streams[stream] = None
        self.symbols[stream.symbol] = self.symbols.get(stream.symbol, 0) + 1
        return True

    def remove_stream(self, stream: Stream) -> bool:
        if stream not in self.streams:
            return False
        del self.streams[stream]
        key = stream.key  # nothing waiting for this stream may follow its UNSUBSCRIBED
        if self.held:
            self.held.pop(key, None)
        if self.quotes:
            self.quotes.pop(key, None)
        if self.quote_gaps:
            self.quote_gaps.pop(key, None)
        if self.gaps:
            self.gaps.pop(key, None)
        hold = self.holds.pop(key, None)
        if hold is not None:
            self.size -= sum(len(d) for _, d in hold.items)
        left = self.symbols[stream.symbol] - 1
        if left:
            self.symbols[stream.symbol] = left
        else:
            del self.symbols[stream.symbol]
        return True
