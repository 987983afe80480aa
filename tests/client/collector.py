"""Reads an ArgusClient as an application would, keeping every event in order."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from argus_client import ArgusClient, Connected, DataEvent, Disconnected


class Collector:
    def __init__(self, client: ArgusClient) -> None:
        self.client = client
        self.events: list[Any] = []
        self.stamps: list[float] = []  # monotonic time each event was read
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for ev in self.client:
            self.events.append(ev)
            self.stamps.append(time.monotonic())

    def of(self, cls: type) -> list[Any]:
        return [e for e in self.events if isinstance(e, cls)]

    @property
    def connects(self) -> list[Connected]:
        return self.of(Connected)

    @property
    def disconnects(self) -> list[Disconnected]:
        return self.of(Disconnected)

    def last_seq(self, key: str) -> int:
        return last_seq(self.events, key)

    async def until(self, what: Any, timeout: float = 15.0, message: str = "") -> None:
        """Wait until `what()` is true (checked every 50 ms)."""
        deadline = time.monotonic() + timeout
        while not what():
            if self.task.done():
                self.task.result()
                raise AssertionError(f"client ended while waiting: {message}")
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout}s: {message}; last events: {self.events[-5:]}")
            await asyncio.sleep(0.05)


def last_seq(events: list[Any], key: str) -> int:
    """The seq of the newest event of stream `key` in `events` (0: none)."""
    for e in reversed(events):
        if isinstance(e, DataEvent) and e.key == key:  # type: ignore[misc,arg-type]
            return int(e.seq)
    return 0
