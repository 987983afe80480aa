"""What JetStream retention holds, read for the HTTP API: a stream's compacted view, and the newest
event of many streams at once. The same direct gets (`DirectGet`) and the same compaction
(`recall.compact`, `recall.entry_of`) as the WebSocket replay, so both see one history."""

from __future__ import annotations

from collections.abc import Iterable

from argus_protocol import Event, Stream, Subjects, decode_event, place, stores
from argus_service.config import RetentionConfig
from argus_service.retained import DirectGet

from .recall import compact, newest_of, newest_spots


class Archive:
    def __init__(self, get: DirectGet, subjects: Subjects, cfg: RetentionConfig) -> None:
        self.get = get
        self.subjects = subjects
        self.enabled = cfg.enabled
        self.names = {kind: store.name for kind, store in stores(subjects).items()}
        self.limits = {kind: cfg.limits(kind)[0] for kind in ("tick", "kline", "trade")}

    async def view(self, stream: Stream) -> list[Event]:
        """The stream's compacted view, oldest first: one event per bar or minute (its newest
        version, the forming one last), every retained trade. Raises StoreError."""
        if not self.enabled:
            return []
        where = place(self.subjects, stream)
        kind, subject = where.history
        raws = await self.get.history(self.names[kind], subject, limit=self.limits.get(kind, 0))
        if where.newest is not None:
            forming = await self.get.last(self.names[where.newest[0]], [where.newest[1]])
            raws.extend(forming.values())
        return [decode_event(e.raw) for e in compact(raws)]

    async def newest(self, streams: Iterable[Stream]) -> dict[Stream, Event]:
        """The newest retained event of each stream that has one (batched per store). Raises StoreError."""
        if not self.enabled:
            return {}
        by_store: dict[str, list[str]] = {}
        spots: dict[Stream, list[str]] = {}
        for s in streams:
            found = newest_spots(self.subjects, s)
            spots[s] = [subject for _, subject in found]
            for kind, subject in found:
                by_store.setdefault(self.names[kind], []).append(subject)
        raw: dict[str, bytes] = {}
        for name, subjects in by_store.items():
            raw.update(await self.get.last(name, subjects))
        out: dict[Stream, Event] = {}
        for s, subjects in spots.items():
            best = newest_of(raw, subjects)
            if best is not None:
                out[s] = decode_event(best.raw)
        return out
