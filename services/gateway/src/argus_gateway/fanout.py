"""Fan-out: NATS subjects to sessions, one subscription per stream, encode once per event.

Each `Topic` is one stream with the sessions that want it (reference-counted: the NATS
subscription exists while at least one session holds the stream). An event is decoded once,
its bytes built once per variant in use (`dataframe.EventFrames`), and the same bytes appended
to every session's outbox; the hub then flushes all dirty sessions once per loop turn
(`call_soon`), one transport write each, and moves queued replays in as sockets have room.

This is also the one place a session's subscriptions change (`add`, `remove`, `detach`), so the
session's stream set, the topics and the subscription gauge never disagree.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

import msgspec
from argus_protocol import Stream, Subjects, decode_event, event_period
from argus_protocol.messages import Gap
from argus_service.natswire import subscribe_now, unsubscribe_now
from nats.aio.client import Client

from .dataframe import EventFrames, gap_frame
from .metrics import GatewayMetrics
from .recall import entry_of
from .session import Session
from .topic import Topic

log = logging.getLogger("argus.fanout")

_CLOCK_EVERY = 64  # sessions flushed between looks at the clock
GATHER_FROM = 0.4  # CPU load (of one core) above which writes start to gather
LOAD_WINDOW = 0.1  # seconds over which that load is measured
GATHER_SPAN = 0.25  # load above GATHER_FROM at which gathering reaches max_gather (0.6 cost heavy 11 % more CPU)
BURST_GAP_US = 500  # events closer than this arrived together
MAX_GAP_US = 1_000_000  # a quiet spell (lunch, a night) counts as a second, so gathering recovers in a few bursts
LATENCY_SAMPLES = 32  # events per flush pass whose latency is observed, at most (evenly spread)
# Stamps kept for a flush that never finishes (a saturated loop always has sessions left dirty)
LATENCY_STAMPS_MAX = 4096
LATE_QUIET = 0.2  # seconds without late events that end a late burst
HISTORY_IDLE = 10.0  # seconds a topic keeps its compacted view after the last replay used it


class Clock:
    """Envelope timestamps, formatted at most once per millisecond (they are per frame)."""

    __slots__ = ("_ms", "_text", "us")

    def __init__(self) -> None:
        self._ms = -1
        self._text = b""
        self.us = 0  # epoch µs of the last now()

    def now(self) -> bytes:
        ns = time.time_ns()
        self.us = ns // 1000
        ms = ns // 1_000_000
        if ms != self._ms:
            self._ms = ms
            secs, milli = divmod(ms, 1000)
            self._text = (time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{milli:03d}+00:00").encode()
        return self._text


class Hub:
    def __init__(
        self,
        nc: Client | None,
        subjects: Subjects,
        metrics: GatewayMetrics,
        *,
        on_demand_change: Callable[[], None],
        limits: dict[str, int] | None = None,
        flush_budget: float = 0.004,
        flush_interval: float = 0.0,
        max_gather: float = 0.02,
        max_event_age: float = 5.0,
    ) -> None:
        self.nc = nc
        self.subjects = subjects
        self.metrics = metrics
        self.on_demand_change = on_demand_change
        self.limits = limits or {}  # per type: entries a compacted view keeps
        self.flush_budget = flush_budget  # seconds one flush pass may hold the loop
        self.flush_interval = flush_interval  # fixed gathering; 0: adaptive, up to max_gather
        self.max_gather = max_gather
        self.max_age_us = int(max_event_age * 1e6)  # older on arrival: not live (a burst NATS held back)
        self._late: set[Topic] = set()  # topics inside such a burst
        self._gather = 0.0  # seconds the next flush waits, from the gateway's recent CPU load
        self._input_us = time.time_ns() // 1000  # epoch µs of the last event in (none yet: the start)
        self._input_gap = 0.0  # µs between input bursts, smoothed (gaps under BURST_GAP_US are one burst)
        self._load_at = time.perf_counter()
        self._load_cpu = time.process_time()
        self.topics: dict[str, Topic] = {}
        self.clock = Clock()
        self.pump: Callable[[Session], None] | None = None  # moves queued replays into an outbox
        self._dirty: list[Session] = []
        self._behind: set[Session] = set()
        self._flush_scheduled = False
        self._event_ts: list[int] = []
        self._received = 0
        self._loop = asyncio.get_running_loop()
        self._retry_task = self._loop.create_task(self._retry_behind())

    # ---------------------------------------------------------------- subscription registry
    def add(self, session: Session, stream: Stream) -> Topic | None:
        """Attach a session to a stream without awaiting, so the caller can queue its SUBSCRIBED
        reply before any live frame; None if the session already held it."""
        subject = self.subjects.data(stream)
        topic = self.topics.get(subject)
        # The topic's own Stream: its sessions share one tuple and one symbol string (wide: ~1.1 KB a connection)
        if not session.add_stream(stream if topic is None else topic.stream):
            return None
        self.metrics.active_subscriptions.inc()
        if topic is not None:
            topic.add(session)
            return topic
        topic = Topic(subject, stream, self.limits.get(stream.type, 1000))
        self.topics[subject] = topic
        topic.add(session)
        self.metrics.nats_subjects.set(len(self.topics))
        self.on_demand_change()
        self._open(topic)
        return topic

    def _open(self, topic: Topic) -> None:
        """Subscribe now: the SUB is in the write queue before any store request about it."""

        if self.nc is None:
            return
        try:
            topic.sub = subscribe_now(self.nc, topic.subject, lambda msg: self.dispatch(topic, msg.data))
        except ConnectionError as e:  # closing: nothing will be delivered any more
            log.warning("nats subscribe failed", extra={"subject": topic.subject, "error": repr(e)})

    def remove(self, session: Session, stream: Stream) -> None:
        if not session.remove_stream(stream):
            return
        self.metrics.active_subscriptions.dec()
        subject = self.subjects.data(stream)
        topic = self.topics.get(subject)
        if topic is None:
            return
        topic.discard(session)
        if not topic.by_variant:
            del self.topics[subject]
            self.metrics.nats_subjects.set(len(self.topics))
            self.on_demand_change()
            if topic.sub is not None:
                unsubscribe_now(topic.sub)

    def detach(self, session: Session) -> None:
        """A closed connection: nothing more queues for it, and its streams are released."""
        session.closed = True
        session.cancel_timer()
        self._behind.discard(session)
        for stream in list(session.streams):
            self.remove(session, stream)
        session.discard_pending()

    def streams(self) -> list[str]:
        return [t.key for t in self.topics.values()]

    def topic_of(self, stream: Stream) -> Topic | None:
        return self.topics.get(self.subjects.data(stream))

    # ---------------------------------------------------------------- hot path
    def dispatch(self, topic: Topic, raw: bytes) -> None:
        self._received += 1  # counted into Prometheus once per flush, not per event
        try:
            event = decode_event(raw)
        except msgspec.MsgspecError:
            log.warning("undecodable event", extra={"subject": topic.subject})
            return
        kind_ok = type(event) is topic.kind  # apart from the test below: mypy would narrow `event` by it
        if not kind_ok or event.symbol != topic.stream.symbol or event_period(event) != topic.stream.period:
            self.metrics.dropped.labels("foreign").inc()  # a publisher on NATS that should not be there
            log.warning("event does not match its subject", extra={"subject": topic.subject, "symbol": event.symbol})
            return
        seq = event.seq
        last = topic.last_seq
        if last:
            if seq == last:
                return  # duplicate (e.g. replayed after an ingestor reconnect)
            if seq > last + 1:
                self.gap_all(topic, last + 1, seq - 1, "upstream")
            elif seq < last:  # renumbered: the ingestor lost its retained seqs and began again
                self.gap_all(topic, 1, seq - 1, "reset")
        topic.last_seq = seq
        topic.live += 1
        topic.remember(entry_of(event, raw))
        now = self.clock.now()
        us = self.clock.us
        gap = us - self._input_us
        self._input_us = us
        if gap > BURST_GAP_US:
            self._input_gap += (min(gap, MAX_GAP_US) - self._input_gap) / 8
        if event.ts and self.max_age_us and us - event.ts > self.max_age_us:
            if not topic.late_from:  # too late to be live: one GAP and the newest as a snapshot, after it
                topic.late_from = seq
                self._late.add(topic)
            topic.late_to = seq
            topic.late_at = self._loop.time()
            return
        if topic.late_from:
            self._end_late(topic)
        frames = EventFrames(event, raw, now)
        for variant, sessions in topic.by_variant.items():
            data = frames.get(variant)
            for s in sessions:
                s.push_data(data, topic)
        if event.ts:
            self._event_ts.append(event.ts)

    def _end_late(self, topic: Topic) -> None:
        """A burst of late events is over: clients hear of it as a GAP, then get its newest state."""
        self._late.discard(topic)
        first, last = topic.late_from, topic.late_to
        topic.late_from = topic.late_to = 0
        newest = topic.newest
        resend = topic.stream.type != "trade" and newest is not None and newest.seq == last  # a trade is no state
        gap_to = last - 1 if resend else last
        if gap_to >= first:
            self.gap_all(topic, first, gap_to, "late")
        if not resend or newest is None:
            return
        event = decode_event(newest.raw)
        event.snapshot = True
        frames = EventFrames(event, newest.raw, self.clock.now())
        key = topic.key
        for session in topic.sessions():
            if session.holds and key in session.holds:
                continue  # its pending replay carries the newest state
            session.push_frame(frames.get(session.single))

    def _adapt_gather(self) -> None:
        """Gathering that follows the load: below GATHER_FROM of a core the gateway writes at once;
        busier, the next writes wait up to max_gather so each send (~11 µs of CPU on loopback,
        whatever it carries: bench/sendfloor.py) carries more, unless the upstream's bursts come
        further apart than the wait. CPU time, not wall time: a core shared with NATS and the
        source is no signal."""
        now = time.perf_counter()
        span = now - self._load_at
        if span < LOAD_WINDOW:
            return
        cpu = time.process_time()
        load = (cpu - self._load_cpu) / span
        self._load_at, self._load_cpu = now, cpu
        over = (load - GATHER_FROM) / GATHER_SPAN
        wait = 0.0 if over <= 0 else self.max_gather * min(1.0, over)
        # holding writes pays only if more input comes within the hold: a source that steps every
        # 40 ms gains nothing from a 10 ms wait but the 10 ms
        self._gather = wait if wait * 1e6 > self._input_gap else 0.0

    def mark_dirty(self, session: Session) -> None:
        self._dirty.append(session)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            wait = self.flush_interval or self._gather
            if wait:  # let more of the upstream's events join each socket's next write
                self._loop.call_later(wait, self._flush)
            else:
                self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        dirty = self._dirty
        self._dirty = []
        frames = nbytes = writes = skipped = 0
        behind = self._behind
        pump = self.pump
        deadline = time.perf_counter() + self.flush_budget
        n = len(dirty)
        i = 0
        while i < n:
            end = min(n, i + _CLOCK_EVERY)
            for s in dirty[i:end]:
                if s.replays and pump is not None:
                    pump(s)
                f, b = s.flush()
                if f:
                    frames += f
                    nbytes += b
                    writes += 1
                if s.behind or s.replays:
                    behind.add(s)  # looked at again as its socket drains
                if s.skipped:
                    skipped += s.skipped
                    s.skipped = 0
            i = end
            if i < n and time.perf_counter() > deadline:
                # A pass over thousands of sockets must not hold the loop: NATS reads, handshakes
                # and pings run, then the rest goes first next turn (still dirty, so not re-added).
                self._dirty = dirty[i:] + self._dirty
                self._flush_scheduled = True
                self._loop.call_soon(self._flush)
                break
        self._adapt_gather()
        if frames:
            self.metrics.messages_sent.inc(frames)
            self.metrics.bytes_sent.inc(nbytes)
            self.metrics.writes.inc(writes)
        if skipped:
            self.metrics.dropped.labels("conflated").inc(skipped)
        if self._received:
            self.metrics.nats_messages.inc(self._received)
            self._received = 0
        # Observed once every dirty session is written; a loop that never catches up observes at the
        # cap instead (a lower bound for the sessions still behind) so the list stays bounded.
        if self._event_ts and (not self._dirty or len(self._event_ts) >= LATENCY_STAMPS_MAX):
            now_us = time.time_ns() // 1000
            observe = self.metrics.latency.observe
            stamps = self._event_ts
            for ts in stamps[:: len(stamps) // LATENCY_SAMPLES + 1]:  # an observe costs more than the fan-out
                observe((now_us - ts) / 1e6)
            self._event_ts = []

    async def _retry_behind(self) -> None:
        """Sessions that were behind, or have replays queued, get another chance as sockets drain;
        compacted views nobody replays from any more are let go."""
        swept = 0.0
        while True:
            await asyncio.sleep(0.05)
            skipped = 0
            for s in list(self._behind):
                if s.skipped:  # quotes conflated while behind: counted here, where behind ones are seen
                    skipped += s.skipped
                    s.skipped = 0
                if s.closed:
                    self._behind.discard(s)
                    continue
                if not s.dirty:
                    if s.replays and self.pump is not None:
                        self.pump(s)
                    f, b = s.flush()
                    if f:
                        self.metrics.messages_sent.inc(f)
                        self.metrics.bytes_sent.inc(b)
                        self.metrics.writes.inc()
                if not s.behind and not s.replays:
                    self._behind.discard(s)
            if skipped:
                self.metrics.dropped.labels("conflated").inc(skipped)
            now = self._loop.time()
            if self._late:
                for topic in [t for t in self._late if now - t.late_at > LATE_QUIET]:
                    self._end_late(topic)
            if now - swept >= 1.0:
                swept = now
                self._sweep(now)

    def _sweep(self, now: float) -> None:
        for topic in self.topics.values():
            if topic.history is not None and not topic.waiters and now - topic.used_at > HISTORY_IDLE:
                topic.history = None
                topic.blobs = {}

    def gap_all(self, topic: Topic, from_seq: int, to_seq: int, reason: str) -> None:
        s = topic.stream
        key = topic.key
        for session in topic.sessions():
            if session.holds and key in session.holds:  # the release after its replay tells it
                if reason == "reset":
                    session.renumbered(topic)
                continue
            session.push_frame(self.gap_frame(session, s.type, s.symbol, s.period, from_seq, to_seq, reason))

    def gap_frame(
        self, s: Session, dtype: str, symbol: str, period: str, from_seq: int, to_seq: int, reason: str
    ) -> bytes:
        self.metrics.gaps.labels(reason).inc()
        self.metrics.dropped.labels("gap").inc(max(0, to_seq - from_seq + 1))
        gap = Gap(symbol=symbol, type=dtype, from_seq=from_seq, to_seq=to_seq, reason=reason, period=period or None)
        return gap_frame(s.binary, gap, self.clock.now().decode())

    async def close(self) -> None:
        self._retry_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._retry_task
        for topic in list(self.topics.values()):
            if topic.sub is not None:
                unsubscribe_now(topic.sub)
        self.topics.clear()
