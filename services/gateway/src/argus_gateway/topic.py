"""A topic: one stream's NATS subscription, its sessions, and what the gateway knows of its state.

The sessions are kept per *variant* (what bytes they take for an event), so the hub builds each
variant's bytes once per event and hands the same object to every session of it. Besides the
newest event, a topic may hold the stream's *compacted view* (one entry per bar, minute or trade,
oldest first) while replays need it: loaded once from JetStream, then kept current by live events.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from argus_protocol import KlineEvent, QuoteEvent, Stream, TickEvent, TradeEvent

EVENT_TYPES: dict[str, type] = {"quote": QuoteEvent, "tick": TickEvent, "kline": KlineEvent, "trade": TradeEvent}

if TYPE_CHECKING:
    from .session import Session


class Entry:
    """One retained event: its seq, the first seq of its bar or minute, what marks that bar or
    minute (open time; "" for quotes and trades), its trading day, and its MessagePack bytes."""

    __slots__ = ("day", "first", "frames", "mark", "raw", "seq")

    def __init__(self, seq: int, first: int, mark: str, day: str, raw: bytes) -> None:
        self.seq = seq
        self.first = first or seq
        self.mark = mark
        self.day = day
        self.raw = raw
        self.frames: dict[tuple[int, bool, bool], bytes] | None = None  # replay frames built so far


class Topic:
    __slots__ = (
        "blobs",
        "blobs_version",
        "by_variant",
        "history",
        "history_loading",
        "history_unavailable",
        "key",
        "kind",
        "last_seq",
        "late_at",
        "late_from",
        "late_to",
        "limit",
        "live",
        "newest",
        "newest_known",
        "newest_loading",
        "newest_tries",
        "newest_unavailable",
        "recent",
        "stream",
        "sub",
        "subject",
        "used_at",
        "waiters",
    )

    def __init__(self, subject: str, stream: Stream, limit: int) -> None:
        self.subject = subject
        self.stream = stream
        self.key = stream.key
        self.kind = EVENT_TYPES[stream.type]  # the one event class this subject may carry
        self.late_from = self.late_to = 0  # a burst of events too old to be live, by seq
        self.late_at = 0.0
        self.limit = limit  # most entries the compacted view keeps (the store's per-subject count)
        # Its sessions, by variant only: one table more for all of them cost ~0.6 KB a connection in wide
        self.by_variant: dict[int, dict[Session, None]] = {}
        self.sub: Any = None
        self.last_seq = 0  # newest seq seen, live or from the store
        self.live = 0  # live events dispatched
        self.newest: Entry | None = None
        self.newest_known = False  # the store was asked (or live data came): `newest` is the truth
        self.newest_loading = False
        self.newest_tries = 0  # failed look-ups in a row (the store did not answer)
        self.newest_unavailable = False  # gave up asking: a snapshot request is told so
        self.history: list[Entry] | None = None  # compacted view, while loaded
        self.history_loading = False
        self.history_unavailable = False  # the last read of it failed: a history request is told so
        self.recent: list[Entry] | None = None  # live entries that arrive while history loads
        self.waiters: list[Any] = []  # replay requests waiting for a load
        self.used_at = 0.0  # loop time a replay last used the history
        self.blobs: dict[tuple[Any, ...], Any] = {}  # shared replay bytes, valid for one version
        self.blobs_version = -1

    # ---------------------------------------------------------------- sessions
    def sessions(self) -> Iterator[Session]:
        for group in self.by_variant.values():
            yield from group

    def add(self, session: Session) -> None:
        self.by_variant.setdefault(session.variant, {})[session] = None

    def discard(self, session: Session) -> None:
        group = self.by_variant.get(session.variant)
        if group is not None:
            group.pop(session, None)
            if not group:
                del self.by_variant[session.variant]

    # ---------------------------------------------------------------- state
    def adopt(self, entry: Entry | None) -> None:
        """A stored event becomes the newest unless something as new was seen; live data goes on from it
        (a hole up to the first live event becomes a GAP)."""
        if entry is None or entry.seq < self.last_seq or (self.newest is not None and entry.seq <= self.newest.seq):
            return
        self.newest = entry
        self.last_seq = entry.seq

    def remember(self, entry: Entry) -> None:
        """A live or fetched event joins the state: newest always, the compacted view if held."""
        self.newest = entry
        self.newest_known = True
        if self.recent is not None:
            self.recent.append(entry)
        view = self.history
        if view is None:
            return
        if view and entry.mark and view[-1].mark == entry.mark:
            view[-1] = entry  # a newer version of the same bar or minute
        else:
            view.append(entry)
            if len(view) > self.limit + 64:  # trimmed in steps, not on every append
                del view[: len(view) - self.limit]

    @property
    def version(self) -> int:
        return self.live
