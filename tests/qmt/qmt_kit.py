"""Drive a QmtSource in-process on the fake xtdata: recording context, settable clock, collection."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from typing import Any

from argus_ingestor import WantedSet
from argus_ingestor_qmt.source import QmtSource
from argus_protocol import Event, Stream
from qmt_fake_xtdata import FakeXtData, ms

DAY = "20250815"  # a Friday
FAST = {
    "backoff_initial": 0.05,
    "backoff_max": 0.2,
    "health_interval": 0.2,
    "call_timeout": 2.0,
    "roll_interval": 0.05,
}


class Recorder:
    name = "qmt"

    def __init__(self) -> None:
        self.statuses: list[dict[str, Any]] = []
        self.errors: Counter[str] = Counter()

    def status(
        self, state: str, *, symbol: str | None = None, reason: str | None = None, unsupported: list[str] | None = None
    ) -> None:
        self.statuses.append({"state": state, "symbol": symbol, "reason": reason, "unsupported": unsupported})

    def count_error(self, kind: str) -> None:
        self.errors[kind] += 1

    def last(self, symbol: str | None = None) -> dict[str, Any] | None:
        mine = [s for s in self.statuses if s["symbol"] == symbol]
        return mine[-1] if mine else None


class Clock:
    def __init__(self, hhmmss: str = "10:00:30") -> None:
        self.now = ms(DAY, hhmmss) / 1000

    def set(self, hhmmss: str) -> None:
        self.now = ms(DAY, hhmmss) / 1000

    def __call__(self) -> float:
        return self.now


class Harness:
    def __init__(self, fake: FakeXtData, clock: Clock | None = None, **options: Any) -> None:
        self.fake = fake
        self.clock = clock or Clock()
        self.ctx = Recorder()
        self.source = QmtSource({**FAST, **options}, xtdata=fake, clock=self.clock)
        self.events: list[Event] = []
        self._pump: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Harness:
        await self.source.start(self.ctx)
        self._pump = asyncio.create_task(self._collect())
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.source.stop()
        if self._pump is not None:
            await asyncio.wait_for(self._pump, 5)

    async def _collect(self) -> None:
        async for batch in self.source.events():
            self.events.extend(batch)

    def want(self, *streams: tuple[str, ...]) -> None:
        self.source.want(WantedSet(Stream(*s) for s in streams))

    def of(self, kind: str, symbol: str | None = None, period: str | None = None) -> list[Any]:
        out = []
        for e in self.events:
            if e.__struct_config__.tag != kind or symbol not in (None, e.symbol):
                continue
            payload = getattr(e, kind)
            if period is not None and payload.period != period:
                continue
            out.append(payload)
        return out

    async def until(self, cond: Callable[[], Any], timeout: float = 5.0) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not cond():
            if loop.time() > deadline:
                raise AssertionError(
                    f"timed out; events={[(e.symbol, e.__struct_config__.tag) for e in self.events][-8:]} "
                    f"statuses={self.ctx.statuses[-5:]} calls={getattr(self.fake, 'calls', [])[-6:]}"
                )
            await asyncio.sleep(0.01)

    async def settle(self) -> None:
        """Let queued fake callbacks run and the loop drain them."""
        await asyncio.to_thread(self.fake.idle)
        for _ in range(5):
            await asyncio.sleep(0.01)

    async def connected(self) -> None:
        await self.until(lambda: self.source.connected and not self.source._dirty.is_set())
        await self.until(lambda: set(self.source.subs) == set(self.source._desired()))
