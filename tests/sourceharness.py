"""Drive any Source in-process: a recording SourceContext and event collection (TDX, QMT, Yahoo)."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from typing import Any

from argus_ingestor import Batch, QuoteBlock, Source, WantedSet
from argus_protocol import Event, Stream


def as_events(batch: Batch) -> list[Event]:
    """A batch as the events it carries: a block of quotes as its QuoteEvents, in place."""
    out: list[Event] = []
    for item in batch:
        if isinstance(item, QuoteBlock):
            out.extend(item.events())
        else:
            out.append(item)
    return out


class Recorder:
    """The runner's side of SourceContext, keeping what the source reported."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.statuses: list[dict[str, Any]] = []
        self.errors: Counter[str] = Counter()
        self.losses: list[tuple[Stream, int]] = []  # ctx.lost(stream, count) calls, in order
        self.retained: dict[Stream, int] = {}  # what JetStream holds: a test fills it; 0 otherwise

    def retained_seq(self, stream: Stream) -> int:
        return self.retained.get(stream, 0)

    def status(
        self, state: str, *, symbol: str | None = None, reason: str | None = None, unsupported: list[str] | None = None
    ) -> None:
        self.statuses.append({"state": state, "symbol": symbol, "reason": reason, "unsupported": unsupported})

    def count_error(self, kind: str) -> None:
        self.errors[kind] += 1

    def lost(self, stream: Stream, count: int = 1) -> None:
        self.losses.append((stream, count))

    def states(self, symbol: str | None = None) -> list[str]:
        return [s["state"] for s in self.statuses if s["symbol"] == symbol]

    def last(self, symbol: str | None = None) -> dict[str, Any] | None:
        mine = [s for s in self.statuses if s["symbol"] == symbol]
        return mine[-1] if mine else None


class SourceHarness:
    """`async with` starts the source and collects every batch it yields into `events`."""

    def __init__(self, source: Source, ctx: Recorder) -> None:
        self.source = source
        self.ctx = ctx
        self.events: list[Event] = []
        self.batches: list[list[Event]] = []  # as yielded (a block as its quotes): what goes out together
        self._pump: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Any:
        await self.source.start(self.ctx)
        self._pump = asyncio.create_task(self._collect())
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.source.stop()
        if self._pump is not None:
            await asyncio.wait_for(self._pump, 5)

    async def _collect(self) -> None:
        async for batch in self.source.events():
            events = as_events(batch)
            self.batches.append(events)
            self.events.extend(events)

    def want(self, *streams: tuple[str, ...]) -> None:
        self.source.want(WantedSet(Stream(*s) for s in streams))

    def events_of(self, kind: str, symbol: str | None = None) -> list[Event]:
        return [e for e in self.events if e.__struct_config__.tag == kind and symbol in (None, e.symbol)]

    def of(self, kind: str, symbol: str | None = None, period: str | None = None) -> list[Any]:
        """Payloads of the given type (and symbol, and kline period) in arrival order."""
        payloads = [getattr(e, kind) for e in self.events_of(kind, symbol)]
        return payloads if period is None else [p for p in payloads if p.period == period]

    def describe(self) -> str:
        """What a timed-out wait prints."""
        return f"events={self.events[-5:]} statuses={self.ctx.statuses[-5:]}"

    async def until(self, cond: Callable[[], Any], timeout: float = 5.0) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not cond():
            if loop.time() > deadline:
                raise AssertionError(f"timed out; {self.describe()}")
            await asyncio.sleep(0.01)
