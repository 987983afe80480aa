"""Fan-out: NATS subjects to sessions, one subscription per subject, encode once per event.

Each `Topic` is one data subject with the sessions that want it (reference-counted: the NATS
subscription exists while at least one session holds the stream). An event is decoded once,
framed once per encoding in use, and the same bytes are appended to every session's outbox; the
hub then flushes all dirty sessions once per loop turn (`call_soon`), one transport write each.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

import msgspec
from argus_protocol import Stream, Subjects, decode_event, encode_json, encode_msgpack
from argus_protocol.messages import Envelope, Gap
from argus_service.tasks import Background
from nats.aio.client import Client

from .frames import ws_deflate_frame, ws_frame
from .metrics import GatewayMetrics
from .session import DEFLATE, JSON_FRAME, MSGPACK_FRAME, Session

log = logging.getLogger("argus.fanout")

_CLOCK_EVERY = 64  # sessions flushed between looks at the clock
_DATA_HEAD = b'{"type":"DATA","data":'
_TS_HEAD = b',"timestamp":"'
_TAIL = b'"}'


def _json_envelope(event: Any, ts: bytes) -> bytes:
    """A DATA envelope around the decoded event, spliced rather than re-encoded as a whole."""
    return _DATA_HEAD + encode_json(event) + _TS_HEAD + ts + _TAIL


def _msgpack_envelope(raw: bytes, ts: bytes) -> bytes:
    """A DATA envelope around the ingestor's msgpack bytes as they came (no re-encode)."""
    return encode_msgpack(Envelope("DATA", msgspec.Raw(raw), ts.decode()))


class Topic:
    __slots__ = ("key", "last_raw", "last_seq", "live", "ready", "sessions", "stream", "sub", "subject")

    def __init__(self, subject: str, stream: Stream) -> None:
        self.subject = subject
        self.stream = stream
        self.key = stream.key
        self.sessions: dict[Session, None] = {}
        self.sub: Any = None
        self.last_seq = 0
        self.last_raw: bytes | None = None
        self.live = 0  # live events dispatched; tells a pending snapshot it has been overtaken
        self.ready: asyncio.Future[bool] | None = None


class Clock:
    """Envelope timestamps, formatted at most once per millisecond (they are per frame)."""

    __slots__ = ("_ms", "_text")

    def __init__(self) -> None:
        self._ms = -1
        self._text = b""

    def now(self) -> bytes:
        ns = time.time_ns()
        ms = ns // 1_000_000
        if ms != self._ms:
            self._ms = ms
            secs, milli = divmod(ms, 1000)
            self._text = (time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{milli:03d}+00:00").encode()
        return self._text


class Hub:
    def __init__(
        self,
        nc: Client,
        subjects: Subjects,
        metrics: GatewayMetrics,
        *,
        snapshot_stream: str,
        on_demand_change: Callable[[], None],
        flush_budget: float = 0.004,
        flush_interval: float = 0.0,
    ) -> None:
        self.nc = nc
        self.subjects = subjects
        self.metrics = metrics
        self.snapshot_stream = snapshot_stream
        self.on_demand_change = on_demand_change
        self.flush_budget = flush_budget  # seconds one flush pass may hold the loop
        self.flush_interval = flush_interval
        self.topics: dict[str, Topic] = {}
        self.clock = Clock()
        self._dirty: list[Session] = []
        self._behind: set[Session] = set()
        self._flush_scheduled = False
        self._event_ts: list[int] = []
        self._received = 0
        self._loop = asyncio.get_running_loop()
        self._background = Background()
        self._retry_task = self._loop.create_task(self._retry_behind())

    # ---------------------------------------------------------------- subscription registry
    def add(self, session: Session, stream: Stream) -> tuple[Topic, bool]:
        """Attach a session to a stream's topic without awaiting, so the caller can queue its
        SUBSCRIBED reply before any live frame; returns (topic, created)."""
        subject = self.subjects.data(stream)
        topic = self.topics.get(subject)
        if topic is not None:
            topic.sessions[session] = None
            return topic, False
        topic = Topic(subject, stream)
        self.topics[subject] = topic
        topic.sessions[session] = None
        topic.ready = self._loop.create_future()
        self.metrics.nats_subjects.set(len(self.topics))
        self.on_demand_change()
        self._background.spawn(self._open(topic))
        return topic, True

    async def _open(self, topic: Topic) -> None:
        async def on_msg(msg: Any) -> None:
            self.dispatch(topic, msg.data)

        try:
            sub = await self.nc.subscribe(
                topic.subject, cb=on_msg, pending_msgs_limit=200_000, pending_bytes_limit=256 * 1024 * 1024
            )
        except Exception as e:  # noqa: BLE001 - NATS away: nats-py resubscribes what it holds
            log.warning("nats subscribe failed", extra={"subject": topic.subject, "error": repr(e)})
            if topic.ready is not None and not topic.ready.done():
                topic.ready.set_result(False)
            return
        if self.topics.get(topic.subject) is topic:
            topic.sub = sub
        else:  # everyone left while we were subscribing
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
        if topic.ready is not None and not topic.ready.done():
            topic.ready.set_result(True)

    def remove(self, session: Session, stream: Stream) -> None:
        subject = self.subjects.data(stream)
        topic = self.topics.get(subject)
        if topic is None:
            return
        topic.sessions.pop(session, None)
        if not topic.sessions:
            del self.topics[subject]
            self.metrics.nats_subjects.set(len(self.topics))
            self.on_demand_change()
            if topic.sub is not None:
                self._background.spawn(self._unsubscribe(topic.sub))

    async def _unsubscribe(self, sub: Any) -> None:
        with contextlib.suppress(Exception):
            await sub.unsubscribe()

    def streams(self) -> list[str]:
        return [t.key for t in self.topics.values()]

    # ---------------------------------------------------------------- hot path
    def dispatch(self, topic: Topic, raw: bytes) -> None:
        self._received += 1  # counted into Prometheus once per flush, not per event
        try:
            event = decode_event(raw)
        except msgspec.MsgspecError:
            log.warning("undecodable event", extra={"subject": topic.subject})
            return
        seq = event.seq
        last = topic.last_seq
        if last:
            if seq == last:
                return  # duplicate (e.g. replayed after an ingestor reconnect)
            if seq > last + 1:
                self.gap_all(topic, last + 1, seq - 1, "upstream")
            # seq < last: the ingestor restarted and its sequence began again; take it as is.
        topic.last_seq = seq
        topic.last_raw = raw
        topic.live += 1
        ts = self.clock.now()
        # Each variant is built on first need and shared; the envelope payloads (JSON, msgpack)
        # are encoded at most once per event, whichever variants wrap them.
        json_env = msgpack_env = text = binary = None
        others: dict[int, bytes] | None = None
        for s in topic.sessions:
            v = s.variant
            if v == JSON_FRAME:
                if text is None:
                    if json_env is None:
                        json_env = _json_envelope(event, ts)
                    text = ws_frame(json_env, False)
                s.push_data(text, topic)
            elif v == MSGPACK_FRAME:
                if binary is None:
                    if msgpack_env is None:
                        msgpack_env = _msgpack_envelope(raw, ts)
                    binary = ws_frame(msgpack_env, True)
                s.push_data(binary, topic)
            else:  # batch payloads (the session wraps a turn's worth in one array) or deflated frames
                if others is None:
                    others = {}
                data = others.get(v)
                if data is None:
                    if v & 1:
                        if msgpack_env is None:
                            msgpack_env = _msgpack_envelope(raw, ts)
                        env = msgpack_env
                    else:
                        if json_env is None:
                            json_env = _json_envelope(event, ts)
                        env = json_env
                    data = others[v] = env if v < DEFLATE else ws_deflate_frame(env, bool(v & 1), v >> 3)
                s.push_data(data, topic)
        if event.ts:
            self._event_ts.append(event.ts)

    def mark_dirty(self, session: Session) -> None:
        self._dirty.append(session)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            if self.flush_interval:  # let the rest of an upstream burst join this write
                self._loop.call_later(self.flush_interval, self._flush)
            else:
                self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        dirty = self._dirty
        self._dirty = []
        frames = nbytes = writes = 0
        behind = self._behind
        deadline = time.perf_counter() + self.flush_budget
        n = len(dirty)
        i = 0
        while i < n:
            end = min(n, i + _CLOCK_EVERY)
            for s in dirty[i:end]:
                f, b = s.flush()
                if f:
                    frames += f
                    nbytes += b
                    writes += 1
                if s.behind:
                    behind.add(s)
            i = end
            if i < n and time.perf_counter() > deadline:
                # A pass over thousands of sockets must not hold the loop: NATS reads, handshakes
                # and pings run, then the rest goes first next turn (still dirty, so not re-added).
                self._dirty = dirty[i:] + self._dirty
                self._flush_scheduled = True
                self._loop.call_soon(self._flush)
                break
        if frames:
            self.metrics.messages_sent.inc(frames)
            self.metrics.bytes_sent.inc(nbytes)
            self.metrics.writes.inc(writes)
        if self._received:
            self.metrics.nats_messages.inc(self._received)
            self._received = 0
        if self._event_ts and not self._dirty:
            now_us = time.time_ns() // 1000
            observe = self.metrics.latency.observe
            for ts in self._event_ts:
                observe((now_us - ts) / 1e6)
            self._event_ts = []

    async def _retry_behind(self) -> None:
        """Sessions that were behind get another chance as their socket drains."""
        while True:
            await asyncio.sleep(0.05)
            if not self._behind:
                continue
            for s in list(self._behind):
                if s.closed:
                    self._behind.discard(s)
                    continue
                if not s.dirty:
                    f, b = s.flush()
                    if f:
                        self.metrics.messages_sent.inc(f)
                        self.metrics.bytes_sent.inc(b)
                        self.metrics.writes.inc()
                if not s.behind:
                    self._behind.discard(s)

    def gap_all(self, topic: Topic, from_seq: int, to_seq: int, reason: str) -> None:
        for s in topic.sessions:
            s.push_frame(
                self.gap_frame(s, topic.stream.type, topic.stream.symbol, topic.stream.period, from_seq, to_seq, reason)
            )

    def gap_frame(
        self, s: Session, dtype: str, symbol: str, period: str, from_seq: int, to_seq: int, reason: str
    ) -> bytes:
        self.metrics.gaps.labels(reason).inc()
        self.metrics.dropped.labels("gap").inc(max(0, to_seq - from_seq + 1))
        gap = Gap(symbol=symbol, type=dtype, from_seq=from_seq, to_seq=to_seq, reason=reason, period=period or None)
        env = Envelope("GAP", gap, self.clock.now().decode())
        return ws_frame(encode_msgpack(env) if s.binary else encode_json(env), s.binary)

    # ---------------------------------------------------------------- snapshots
    async def load_stored(self, topic: Topic) -> None:
        """Fill a topic's last value from JetStream when nothing live has arrived yet."""
        if not self.snapshot_stream or topic.last_raw is not None:
            return
        if topic.ready is not None:
            await topic.ready  # our SUB precedes the lookup, so nothing newer slips between
        try:
            msg = await self.nc.jetstream().get_last_msg(self.snapshot_stream, topic.subject, direct=True)
            seq = decode_event(msg.data).seq if msg.data else 0
        except Exception:  # noqa: BLE001 - no message yet, no stream, JetStream away, or garbage
            return
        if topic.last_raw is None and seq and self.topics.get(topic.subject) is topic:
            # Later joiners get it from memory; a hole up to the first live event becomes a GAP.
            topic.last_raw = msg.data
            topic.last_seq = seq

    def detach(self, session: Session) -> None:
        session.closed = True
        session.cancel_timer()
        self._behind.discard(session)

    async def close(self) -> None:
        self._retry_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._retry_task
        for topic in list(self.topics.values()):
            if topic.sub is not None:
                with contextlib.suppress(Exception):
                    await topic.sub.unsubscribe()
        self.topics.clear()
