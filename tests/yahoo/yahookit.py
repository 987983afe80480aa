"""Drive a YahooSource in-process: a recording SourceContext, a settable clock, event collection."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from typing import Any

from argus_ingestor import WantedSet
from argus_ingestor_yahoo.source import YahooSource
from argus_protocol import Event, Stream
from yahoo_fixtures import NOW

FAST = {
    "poll_interval": 0.3,
    "poll_timeout": 5.0,
    "stale_after": 30.0,
    "resubscribe_interval": 30.0,
    "heartbeat": 5.0,
    "backoff_initial": 0.05,
    "backoff_max": 0.2,
    "schedule": "always",
}


class Recorder:
    """The runner's side of SourceContext, keeping what the source reported."""

    name = "yahoo"

    def __init__(self) -> None:
        self.statuses: list[dict[str, Any]] = []
        self.errors: Counter[str] = Counter()

    def status(
        self, state: str, *, symbol: str | None = None, reason: str | None = None, unsupported: list[str] | None = None
    ) -> None:
        self.statuses.append({"state": state, "symbol": symbol, "reason": reason})

    def count_error(self, kind: str) -> None:
        self.errors[kind] += 1

    def states(self, symbol: str | None = None) -> list[str]:
        return [s["state"] for s in self.statuses if s["symbol"] == symbol]


class Clock:
    def __init__(self, now: datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class Harness:
    def __init__(self, ws_url: str, chart_url: str, cache_dir: str, clock: Clock | None = None, **options: Any) -> None:
        self.clock = clock or Clock()
        self.ctx = Recorder()
        opts = {**FAST, "ws_url": ws_url, "chart_url": chart_url, "cache_dir": cache_dir, **options}
        self.source = YahooSource(opts, clock=self.clock)
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

    def of(self, kind: str, symbol: str | None = None) -> list[Any]:
        """Payloads of the given type (and symbol) in arrival order."""
        return [getattr(e, kind) for e in self.events if e.__struct_config__.tag == kind and symbol in (None, e.symbol)]

    def events_of(self, kind: str, symbol: str | None = None) -> list[Event]:
        return [e for e in self.events if e.__struct_config__.tag == kind and symbol in (None, e.symbol)]

    async def until(self, cond: Callable[[], Any], timeout: float = 5.0) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not cond():
            if loop.time() > deadline:
                raise AssertionError(f"timed out; events={self.events[-5:]} statuses={self.ctx.statuses[-5:]}")
            await asyncio.sleep(0.01)
