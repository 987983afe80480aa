"""Loading topics' retained state from JetStream, once per stream however many sessions ask.

Newest values are looked up in batches: every topic that needs one within a loop turn joins one
`multi_last` request per store (up to 1,024 subjects each). A history (the compacted view of a
bar, minute or trade stream) is one paged request per stream, a bounded number in flight. Either
way the askers wait on the topic, not on a request of their own, and later askers are served
from the topic's memory with no request at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import msgspec
from argus_protocol import Stream, Subjects, bar_mark, decode_event, place, stores
from argus_protocol.events import Event
from argus_protocol.retention import Place
from argus_service.config import RetentionConfig
from argus_service.retained import DirectGet, StoreError
from argus_service.tasks import Background

from .metrics import GatewayMetrics
from .topic import Entry, Topic

log = logging.getLogger("argus.recall")

HISTORY_IN_FLIGHT = 32  # history look-ups at once; the rest queue behind them
SEAM_RETRIES = 2  # re-reads when live events show the store had not caught up yet
NEWEST_TRIES = 3  # look-ups of a newest value before a snapshot request is told it is unavailable
NEWEST_RETRY_S = 0.25  # the first retry's delay; the next waits twice as long


def day_of(event: Event) -> str:
    """The exchange-local date an event belongs to (its bar, minute, trade or quote time)."""
    tag = event.__struct_config__.tag
    if tag == "kline":
        return event.kline.open_time[:10]  # type: ignore[union-attr]
    if tag == "tick":
        return event.tick.time[:10]  # type: ignore[union-attr]
    if tag == "trade":
        return event.trade.time[:10]  # type: ignore[union-attr]
    return event.quote.timestamp[:10]  # type: ignore[union-attr]


def entry_of(event: Event, raw: bytes) -> Entry:
    return Entry(event.seq, event.first_seq, bar_mark(event), day_of(event), raw)


def compact(raws: list[bytes]) -> list[Entry]:
    """Retained events (oldest first) to one entry per bar or minute, its newest version."""
    view: list[Entry] = []
    for raw in raws:
        try:
            entry = entry_of(decode_event(raw), raw)
        except msgspec.MsgspecError:
            continue
        if view and entry.seq <= view[-1].seq:
            continue  # an older numbering's leftover after a reset, or a repeat
        if view and entry.mark and view[-1].mark == entry.mark:
            view[-1] = entry
        else:
            view.append(entry)
    return view


def newest_of(found: dict[str, bytes], subjects: list[str]) -> Entry | None:
    """The newest event (by seq) among what the store answered for a stream's subjects."""
    best: Entry | None = None
    for subject in subjects:
        raw = found.get(subject)
        if raw is None:
            continue
        try:
            entry = entry_of(decode_event(raw), raw)
        except msgspec.MsgspecError:
            continue
        if best is None or entry.seq > best.seq:
            best = entry
    return best


def newest_spots(subjects: Subjects, stream: Stream) -> list[tuple[str, str]]:
    """(store kind, subject) pairs that may hold a stream's newest event."""
    where = place(subjects, stream)
    return [spot for spot in (where.newest, where.history) if spot is not None]


class Recall:
    def __init__(
        self,
        get: DirectGet,
        subjects: Subjects,
        cfg: RetentionConfig,
        metrics: GatewayMetrics,
        on_loaded: Callable[[Topic], None],
    ) -> None:
        self.get = get
        self.subjects = subjects
        self.enabled = cfg.enabled
        self.metrics = metrics
        self.on_loaded = on_loaded
        self.names = {kind: store.name for kind, store in stores(subjects).items()}
        self._queued: list[Topic] = []
        self._loop = asyncio.get_running_loop()
        self._in_flight = asyncio.Semaphore(HISTORY_IN_FLIGHT)
        self._background = Background()

    # ---------------------------------------------------------------- asking
    def want_newest(self, topic: Topic) -> bool:
        """True when the topic's newest value is known now; else a batched look-up is under way
        and `on_loaded(topic)` follows."""
        if topic.newest_known or not self.enabled:
            return True
        if not topic.newest_loading:
            topic.newest_loading = True
            if not self._queued:
                self._loop.call_soon(self._send_newest)
            self._queued.append(topic)
        return False

    def want_history(self, topic: Topic) -> bool:
        """True when the topic holds its compacted view now; else it is being read."""
        if topic.history is not None or not self.enabled:
            return True
        if not topic.history_loading:
            topic.history_loading = True
            topic.recent = []
            self._background.spawn(self._load_history(topic))
        return False

    # ---------------------------------------------------------------- newest values
    def _send_newest(self) -> None:
        topics, self._queued = self._queued, []
        self._background.spawn(self._load_newest(topics))

    async def _load_newest(self, topics: list[Topic]) -> None:
        by_store: dict[str, list[str]] = {}
        wanted: dict[Topic, list[tuple[str, str]]] = {}  # topic -> (store name, subject) of its newest
        for t in topics:
            spots = wanted[t] = [(self.names[kind], subject) for kind, subject in newest_spots(self.subjects, t.stream)]
            for name, subject in spots:
                by_store.setdefault(name, []).append(subject)
        self.metrics.store_requests.labels("newest").inc(len(topics))
        calls = self.get.calls
        found: dict[str, bytes] = {}
        failed: set[str] = set()  # stores that did not answer
        answers = await asyncio.gather(
            *(self.get.last(name, subjects) for name, subjects in by_store.items()), return_exceptions=True
        )
        for name, answer in zip(by_store, answers, strict=True):
            if isinstance(answer, BaseException):
                failed.add(name)
                log.warning("newest values unavailable", extra={"store": name, "error": str(answer)})
            else:
                found.update(answer)
        self.metrics.store_calls.inc(self.get.calls - calls)
        if failed:
            self.metrics.store_errors.inc()
        for t, spots in wanted.items():
            t.adopt(newest_of(found, [subject for _, subject in spots]))
            if any(name in failed for name, _ in spots):
                t.newest_tries += 1
                if t.newest_tries < NEWEST_TRIES and not t.newest_known:
                    self._loop.call_later(NEWEST_RETRY_S * t.newest_tries, self._retry_newest, t)
                    continue  # still loading: its waiters wait for the next try
                t.newest_unavailable = not t.newest_known
            else:
                t.newest_known = True
                t.newest_unavailable = False
            t.newest_tries = 0
            t.newest_loading = False
            self.on_loaded(t)

    def _retry_newest(self, topic: Topic) -> None:
        if topic.newest_known:  # live data came meanwhile: that is the newest value
            topic.newest_loading = False
            topic.newest_tries = 0
            self.on_loaded(topic)
            return
        if not self._queued:
            self._loop.call_soon(self._send_newest)
        self._queued.append(topic)

    # ---------------------------------------------------------------- histories
    async def _read_view(self, topic: Topic) -> list[Entry]:
        where = place(self.subjects, topic.stream)
        kind, subject = where.history
        self.metrics.store_requests.labels("history").inc()
        calls = self.get.calls
        try:
            raws = await self.get.history(self.names[kind], subject, limit=topic.limit)
        finally:
            self.metrics.store_calls.inc(self.get.calls - calls)
        raws.extend(await self._read_forming(where))
        view = compact(raws)
        if len(view) > topic.limit:
            del view[: len(view) - topic.limit]
        return view

    async def _load_history(self, topic: Topic) -> None:
        async with self._in_flight:
            view: list[Entry] = []
            forming: Entry | None = None
            ok = True
            for attempt in range(SEAM_RETRIES + 1):
                try:
                    view = await self._read_view(topic)
                except StoreError as e:
                    log.warning("history unavailable", extra={"stream": topic.key, "error": str(e)})
                    self.metrics.store_errors.inc()
                    ok = False
                    with contextlib.suppress(StoreError):  # the forming bar's own store may still answer
                        stored = compact(await self._read_forming(place(self.subjects, topic.stream)))
                        forming = stored[-1] if stored else None
                    break
                recent = topic.recent or []
                newest = view[-1].seq if view else 0
                # Live events that came during the read and start past the store's newest: the
                # store had not stored the ones between yet. Read again rather than leave a hole.
                if not recent or not view or recent[0].seq <= newest + 1 or attempt == SEAM_RETRIES:
                    break
                await asyncio.sleep(0.02)
        recent = topic.recent or []
        topic.recent = None
        topic.history_loading = False
        topic.history_unavailable = not ok
        if ok:
            topic.history = view
            for entry in recent:
                if not view or entry.seq > view[-1].seq:
                    topic.remember(entry)
            topic.adopt(view[-1] if view else None)
            topic.newest_known = True
        else:
            topic.adopt(forming)  # without its history, the forming bar or minute is still sent
        self.on_loaded(topic)

    async def _read_forming(self, where: Place) -> list[bytes]:
        """The stored forming version of a bar or 分时 minute, raw (none for quotes and trades)."""
        if where.newest is None:
            return []
        kind, subject = where.newest
        calls = self.get.calls
        try:
            return list((await self.get.last(self.names[kind], [subject])).values())
        finally:
            self.metrics.store_calls.inc(self.get.calls - calls)
