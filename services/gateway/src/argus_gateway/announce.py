"""Gateway side of demand: announce the wanted streams on change and on a refresh timer.

A set too large for one NATS message goes out in parts below the server's `max_payload` (all with
one `seq`; ingestors take the set once every part is in). A publish that fails re-announces the last
set that went out whole, so the ingestors' copy of it does not expire while the gateway retries.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from argus_protocol import DemandAnnouncement, Subjects, encode_msgpack
from argus_service.tasks import Background
from nats.aio.client import Client

from .metrics import GatewayMetrics

log = logging.getLogger("argus.demand")

DEBOUNCE = 0.02  # coalesce a burst of subscriptions into one announcement
HEADROOM = 1024  # bytes left under max_payload for the announcement's other fields and NATS framing
KEY_OVERHEAD = 3  # MessagePack string header of a stream key (keys are under 256 bytes)


def split_streams(streams: list[str], budget: int) -> list[list[str]]:
    """Pieces of `streams` whose encoded keys each take at most `budget` bytes (at least one piece)."""
    parts: list[list[str]] = []
    part: list[str] = []
    used = 0
    for key in streams:
        size = len(key) + KEY_OVERHEAD
        if part and used + size > budget:
            parts.append(part)
            part, used = [], 0
        part.append(key)
        used += size
    parts.append(part)
    return parts


class DemandAnnouncer:
    def __init__(
        self,
        nc: Client,
        subjects: Subjects,
        gateway_id: str,
        refresh: float,
        ttl: float,
        streams: Callable[[], list[str]],
        metrics: GatewayMetrics | None = None,
    ) -> None:
        self.nc = nc
        self.subject = subjects.demand(gateway_id)
        self.query_subject = subjects.demand_query()
        self.gateway_id = gateway_id
        self.refresh = refresh
        self.ttl = ttl
        self.streams = streams
        self.metrics = metrics
        self._seq = 0
        self._good: list[str] | None = None  # the last set every part of which was published
        self._pending: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[None] | None = None
        self._query_sub: Any = None
        self._lock = asyncio.Lock()  # one announcement's parts at a time
        self._background = Background()

    async def start(self) -> None:
        self._query_sub = await self.nc.subscribe(self.query_subject, cb=self._on_query)
        self._task = asyncio.create_task(self._refresh_loop())
        await self.announce()

    def changed(self) -> None:
        if self._pending is None:
            loop = asyncio.get_running_loop()
            self._pending = loop.call_later(DEBOUNCE, self._fire)

    def _fire(self) -> None:
        self._pending = None
        self._background.spawn(self.announce())

    async def announce(self, streams: list[str] | None = None) -> None:
        if not self.nc.is_connected:
            return
        async with self._lock:
            await self._announce(self.streams() if streams is None else streams)

    async def _announce(self, wanted: list[str]) -> None:
        try:
            await self._publish(wanted)
        except Exception as e:  # noqa: BLE001 - the refresh timer will try again
            self._failed(e)
            good = self._good
            if good is None or good == wanted:
                return
            try:  # keep the last good set alive at the ingestors while the new one cannot go out
                await self._publish(good)
            except Exception as again:  # noqa: BLE001
                self._failed(again)
            return
        self._good = wanted

    async def _publish(self, streams: list[str]) -> None:
        self._seq += 1
        budget = max(4096, self.nc.max_payload - HEADROOM)
        parts = split_streams(streams, budget)
        for i, keys in enumerate(parts):
            ann = DemandAnnouncement(
                gateway=self.gateway_id, seq=self._seq, ttl=self.ttl, streams=keys, part=i, parts=len(parts)
            )
            await self.nc.publish(self.subject, encode_msgpack(ann))
        if self.metrics is not None:
            self.metrics.demand_streams.set(len(streams))
            self.metrics.demand_parts.set(len(parts))

    def _failed(self, e: BaseException) -> None:
        if self.metrics is not None:
            self.metrics.demand_errors.inc()
        log.warning("demand announce failed", extra={"error": repr(e)[:300]})

    async def _on_query(self, msg) -> None:  # type: ignore[no-untyped-def]
        await self.announce()

    async def _refresh_loop(self) -> None:
        while True:
            await asyncio.sleep(self.refresh)
            await self.announce()

    async def withdraw(self) -> None:
        """Clean shutdown: an empty set makes ingestors drop our wants at once."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._pending is not None:
            self._pending.cancel()
        if self.nc.is_connected:
            try:
                async with self._lock:
                    await self._publish([])
            except Exception as e:  # noqa: BLE001 - the ttl withdraws it instead
                self._failed(e)
