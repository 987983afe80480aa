"""Gateway side of demand: announce the wanted streams on change and on a refresh timer."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from argus_protocol import DemandAnnouncement, Subjects, encode_msgpack
from argus_service.tasks import Background
from nats.aio.client import Client

log = logging.getLogger("argus.demand")

DEBOUNCE = 0.02  # coalesce a burst of subscriptions into one announcement


class DemandAnnouncer:
    def __init__(
        self,
        nc: Client,
        subjects: Subjects,
        gateway_id: str,
        refresh: float,
        ttl: float,
        streams: Callable[[], list[str]],
    ) -> None:
        self.nc = nc
        self.subject = subjects.demand(gateway_id)
        self.query_subject = subjects.demand_query()
        self.gateway_id = gateway_id
        self.refresh = refresh
        self.ttl = ttl
        self.streams = streams
        self._seq = 0
        self._pending: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[None] | None = None
        self._query_sub: Any = None
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
        self._seq += 1
        ann = DemandAnnouncement(
            gateway=self.gateway_id,
            seq=self._seq,
            ttl=self.ttl,
            streams=self.streams() if streams is None else streams,
        )
        if not self.nc.is_connected:
            return
        try:
            await self.nc.publish(self.subject, encode_msgpack(ann))
        except Exception as e:  # noqa: BLE001 - the refresh timer will try again
            log.warning("demand announce failed", extra={"error": repr(e)})

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
        await self.announce([])
