"""Drive a QmtSource in-process on the fake xtdata: recording context, settable clock, collection."""

from __future__ import annotations

import asyncio
from typing import Any

from argus_ingestor_qmt.source import QmtSource
from qmt_fake_xtdata import FakeXtData, ms
from sourceharness import Recorder, SourceHarness

DAY = "20250815"  # a Friday
FAST = {
    "backoff_initial": 0.05,
    "backoff_max": 0.2,
    "health_interval": 0.2,
    "call_timeout": 2.0,
    "roll_interval": 0.05,
}


class Clock:
    def __init__(self, hhmmss: str = "10:00:30") -> None:
        self.now = ms(DAY, hhmmss) / 1000

    def set(self, hhmmss: str) -> None:
        self.now = ms(DAY, hhmmss) / 1000

    def __call__(self) -> float:
        return self.now


class Harness(SourceHarness):
    def __init__(self, fake: FakeXtData, clock: Clock | None = None, **options: Any) -> None:
        self.fake = fake
        self.clock = clock or Clock()
        super().__init__(QmtSource({**FAST, **options}, xtdata=fake, clock=self.clock), Recorder("qmt"))

    def describe(self) -> str:
        return (
            f"events={[(e.symbol, e.__struct_config__.tag) for e in self.events][-8:]} "
            f"statuses={self.ctx.statuses[-5:]} calls={getattr(self.fake, 'calls', [])[-6:]}"
        )

    async def settle(self) -> None:
        """Let queued fake callbacks run and the loop drain them."""
        await asyncio.to_thread(self.fake.idle)
        for _ in range(5):
            await asyncio.sleep(0.01)

    async def connected(self) -> None:
        await self.until(lambda: self.source.connected and not self.source._dirty.is_set())
        await self.until(lambda: set(self.source.subs) == set(self.source._desired()))
