"""Snapshots, history and resume: what a SUBSCRIBE gets from retention before live data.

A SUBSCRIBE that asks for any of them becomes one `ReplayRequest` queued on its session: an item
per stream, executed in order once the streams' topics are loaded (see `recall.py`), as the
session's socket has room. Live events of a stream wait in the session (`Session.hold`) from the
SUBSCRIBE until that stream's replay is queued, then follow it without duplicate or hole: the
session drops what the replay already holds by `seq` and turns any hole into a GAP.

Selection is pure (`select`); the bytes are built by `dataframe.EventFrames`, once per topic,
selection and variant, and shared by every session that asks the same between two live events.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple

from argus_protocol import decode_event
from argus_protocol.messages import Envelope, Gap, Replayed, ReplayedStream, Status

from .dataframe import EventFrames
from .metrics import GatewayMetrics
from .recall import Recall
from .sources import GATEWAY
from .topic import Entry, Topic

if TYPE_CHECKING:
    from .session import GapFrame, Session

SNAPSHOT, HISTORY, DAY, RESUME = "snapshot", "history", "day", "resume"


class Want(NamedTuple):
    kind: str  # SNAPSHOT, HISTORY (n entries), DAY, RESUME (after seq n)
    n: int = 0

    @property
    def needs_history(self) -> bool:
        return self.kind != SNAPSHOT


class Selection(NamedTuple):
    entries: list[Entry]
    recovered: bool
    gap: Gap | None  # announced before the entries (resume past retention, or a reset)
    expect: int  # the seq live data should continue with (0: no expectation)


def _gap(topic: Topic, from_seq: int, to_seq: int, reason: str) -> Gap:
    s = topic.stream
    return Gap(symbol=s.symbol, type=s.type, from_seq=from_seq, to_seq=to_seq, reason=reason, period=s.period or None)


def select(topic: Topic, want: Want) -> Selection:
    """What one stream replays for one request, from the topic's newest value or compacted view."""
    newest = topic.newest
    if want.kind == SNAPSHOT or topic.stream.type == "quote" or topic.history is None:
        # quotes: history means the snapshot; a stream whose history could not be read: the newest
        entries = [newest] if newest is not None else []
        complete = topic.stream.type == "quote" or want.kind == SNAPSHOT
        if want.kind == RESUME:
            return _resume_newest(topic, entries, want.n, complete and bool(entries))
        expect = entries[-1].seq + 1 if entries else 0
        return Selection(entries, complete and bool(entries), None, expect if want.kind != SNAPSHOT else 0)
    view = topic.history
    if want.kind == HISTORY:
        chosen = view[-want.n :] if want.n else []
        recovered = len(chosen) >= want.n or bool(view and view[0].first <= 1)
        return Selection(chosen, recovered, None, chosen[-1].seq + 1 if chosen else 0)
    if want.kind == DAY:
        if not view:
            return Selection([], False, None, 0)
        day = view[-1].day
        i = len(view)
        while i > 0 and view[i - 1].day == day:
            i -= 1
        chosen = view[i:]
        recovered = i > 0 or view[0].first <= 1  # retention reaches back past the day's start
        return Selection(chosen, recovered, None, chosen[-1].seq + 1)
    return _resume_view(topic, view, want.n)


def _resume_newest(topic: Topic, entries: list[Entry], after: int, complete: bool) -> Selection:
    if not entries:
        return Selection([], False, None, after + 1)
    newest = entries[0]
    if newest.seq < after:  # the stream was renumbered since the client's seq: a reset
        return Selection(entries, False, _gap(topic, 1, newest.seq - 1, "reset"), newest.seq + 1)
    if newest.seq == after:
        return Selection([], True, None, after + 1)
    # quotes in between are superseded by the newest; other types lost them unless complete
    gap = None if complete else _gap(topic, after + 1, newest.seq - 1, "resume_unavailable")
    if gap is not None and gap.from_seq > gap.to_seq:
        gap = None
    return Selection(entries, complete or gap is None, gap, newest.seq + 1)


def _resume_view(topic: Topic, view: list[Entry], after: int) -> Selection:
    if not view:
        return Selection([], False, None, after + 1)
    if view[-1].seq < after:  # renumbered since: what is retained is a new numbering
        return Selection(list(view), False, _gap(topic, 1, view[0].first - 1, "reset"), view[-1].seq + 1)
    i = len(view)
    while i > 0 and view[i - 1].seq > after:
        i -= 1
    chosen = view[i:]
    if not chosen:
        return Selection([], True, None, after + 1)
    # Covered when an entry at or before the resume point is retained, or the oldest retained
    # bar began by the next seq: every bar, minute or trade since then is in the view.
    if i > 0 or chosen[0].first <= after + 1:
        return Selection(chosen, True, None, chosen[-1].seq + 1)
    gap = _gap(topic, after + 1, chosen[0].first - 1, "resume_unavailable")
    return Selection(chosen, False, gap, chosen[-1].seq + 1)


class ReplayRequest:
    """One SUBSCRIBE's replays, item by item, then (for history/resume) one REPLAYED."""

    __slots__ = ("asked", "items", "req_id", "results", "send_replayed", "waiting")

    def __init__(self, req_id: str | int | None, send_replayed: bool, items: list[tuple[Topic, Want]]) -> None:
        self.req_id = req_id
        self.send_replayed = send_replayed
        self.items: deque[tuple[Topic, Want]] = deque(items)
        self.results: dict[str, ReplayedStream] = {}
        self.waiting: set[Topic] = set()  # topics still loading
        self.asked: dict[Topic, int] = {}  # loads this request waited for, per topic


def replay_bytes(topic: Topic, want: Want, sel: Selection, variant: int, ts: bytes) -> tuple[bytes, int]:
    """The frames of a selection for one variant, joined (shared via the topic until it changes)."""
    if topic.blobs_version != topic.version:
        topic.blobs = {}
        topic.blobs_version = topic.version
    key = (want, variant)
    cached = topic.blobs.get(key)
    if cached is not None:
        blob: bytes = cached[0]
        n: int = cached[1]
        return blob, n
    parts = []
    mark_snapshot = want.kind == SNAPSHOT or topic.stream.type == "quote"
    mark_replay = want.kind != SNAPSHOT
    fkey = (variant, mark_snapshot, mark_replay)
    for entry in sel.entries:
        frames = entry.frames
        if frames is None:
            frames = entry.frames = {}
        frame = frames.get(fkey)
        if frame is None:  # each entry is framed once per variant, then shared by every replay of it
            event = decode_event(entry.raw)
            event.snapshot = mark_snapshot
            event.replay = mark_replay
            frame = frames[fkey] = EventFrames(event, entry.raw, ts).get(variant)
        parts.append(frame)
    blob = b"".join(parts)
    if len(topic.blobs) < 16:  # a few selections per version; resume points vary per client
        topic.blobs[key] = (blob, len(parts))
    return blob, len(parts)


class Replayer:
    """Queues SUBSCRIBE replays on sessions and moves them into outboxes as sockets have room."""

    def __init__(
        self,
        recall: Recall,
        metrics: GatewayMetrics,
        clock: Callable[[], bytes],
        gap_frame: GapFrame,
        current: Callable[[Topic], bool],
    ) -> None:
        self.recall = recall
        self.metrics = metrics
        self.clock = clock
        self.gap_frame = gap_frame
        self.current = current  # the topic is still the hub's (not dropped and reopened)
        self._loop = asyncio.get_running_loop()

    def request(
        self, session: Session, req_id: str | int | None, items: list[tuple[Topic, Want]], send_replayed: bool
    ) -> None:
        req = ReplayRequest(req_id, send_replayed, items)
        if not session.replays and session.has_room() and all(self._at_hand(t, w) for t, w in items):
            # Snapshots already in memory and room on the socket (most of a subscribe wave once
            # the first look-ups are back): answered in this turn, beside SUBSCRIBED, nothing held.
            while req.items:
                topic, want = req.items.popleft()
                self._run(session, req, topic, want)
            self._finish(session, req)
            return
        session.queue_replay(req, [topic.key for topic, _ in items])
        for topic, want in items:
            self._ask(req, session, topic, want)

    def _at_hand(self, topic: Topic, want: Want) -> bool:
        """A one-entry answer the topic holds now (larger replays are paced through the queue)."""
        if want.needs_history and topic.stream.type != "quote":
            return False
        return topic.newest_known or not self.recall.enabled

    def _ask(self, req: ReplayRequest, session: Session, topic: Topic, want: Want) -> bool:
        """Make sure the topic holds what `want` needs; False (and queued as a waiter) if not yet."""
        topic.used_at = self._loop.time()
        if want.needs_history and topic.stream.type != "quote":
            ready = self.recall.want_history(topic)
        else:
            ready = self.recall.want_newest(topic)
        if not ready and topic not in req.waiting:
            req.waiting.add(topic)
            req.asked[topic] = req.asked.get(topic, 0) + 1
            topic.waiters.append((req, session))
        return ready

    def loaded(self, topic: Topic) -> None:
        """A topic's load finished (or failed): its waiting requests may go on."""
        waiters, topic.waiters = topic.waiters, []
        for req, session in waiters:
            req.waiting.discard(topic)
            if not req.waiting and not session.closed and not session.dirty:
                session.dirty = True
                session.on_dirty(session)

    def pump(self, session: Session) -> None:
        while session.replays and session.has_room():
            req = session.replays[0]
            if req.waiting:
                return  # its topics' loads mark the session dirty when they finish
            if req.items:
                topic, want = req.items[0]
                # a view let go while this request waited its turn is read again, once
                if req.asked.get(topic, 0) < 2 and not self._ask(req, session, topic, want):
                    return
                req.items.popleft()
                self._run(session, req, topic, want)
                continue
            session.replays.pop(0)
            self._finish(session, req)

    def _finish(self, session: Session, req: ReplayRequest) -> None:
        if req.send_replayed:
            session.send(Envelope("REPLAYED", Replayed(streams=req.results), self.clock().decode(), req.req_id))
        session.replays_done()

    def _run(self, session: Session, req: ReplayRequest, topic: Topic, want: Want) -> None:
        if topic.stream not in session.streams or not self.current(topic):
            return  # unsubscribed meanwhile: nothing of it may follow UNSUBSCRIBED
        topic.used_at = self._loop.time()
        sel = select(topic, want)
        if sel.gap is not None:
            g = sel.gap
            session.push_frame(
                self.gap_frame(session, g.type, g.symbol, g.period or "", g.from_seq, g.to_seq, g.reason)
            )
        blob, n = replay_bytes(topic, want, sel, session.single, self.clock())
        # the store did not answer (retried): the client is told, not left guessing
        told = ""
        if want.needs_history and topic.history is None and topic.history_unavailable:
            what = "its newest value and live data follow" if n else "live data follows"
            told = f"no history of {topic.key}: the retention store did not answer; {what}"
        elif not n and topic.newest_unavailable:
            told = f"no snapshot or history of {topic.key}: the retention store did not answer; live data follows"
        if told:
            now = self.clock().decode()
            status = Status(source=GATEWAY, state="stale", since=now, symbol=topic.stream.symbol, reason=told)
            session.send(Envelope("STATUS", status, now))
        if n:
            session.push_frame(blob)
            self.metrics.replayed.inc(n)
        if sel.entries:
            first, last = sel.entries[0].seq, sel.entries[-1].seq
        else:
            first, last = 0, (want.n if want.kind == RESUME else 0)
        session.release(topic, last, sel.expect)
        if req.send_replayed:
            req.results[topic.key] = ReplayedStream(from_seq=first, to_seq=last, count=n, recovered=sel.recovered)


__all__ = [
    "DAY",
    "HISTORY",
    "RESUME",
    "SNAPSHOT",
    "ReplayRequest",
    "Replayer",
    "Selection",
    "Want",
    "replay_bytes",
    "select",
]
