"""The extension point every data source implements.

A source turns one upstream (QMT, TDX, Yahoo, the mock market) into normalized Argus events. The
runner owns everything else: NATS, `seq`/`ts` stamping, encoding, demand, status heartbeats.

Lifecycle, driven by the runner:

1. ``await source.start(ctx)`` — connect upstream; `ctx` is how the source reports status and
   asks what JetStream already retains of a stream (`ctx.retained_seq(stream)`).
2. ``source.want(wanted)`` — called at once and on every demand change with the full set of
   streams to provide (demand union + always-on). Must not block; a source that needs I/O to
   follow it schedules that I/O itself.
3. ``async for batch in source.events()`` — the runner publishes each batch of events. Leave
   `seq` and `ts` alone (the runner stamps them); set `symbol`, `source` and the payload. A source
   that computes many quotes at once as arrays may hand them over as one `QuoteBlock` item of a
   batch (quoteblock.py): the runner writes their PUBs from the columns, no object per quote.
4. ``await source.stop()`` — release upstream resources; `events()` must then finish.

Register a source under the entry-point group ``argus.sources`` (see `registry.py`).
"""

from __future__ import annotations

import abc
import asyncio
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Any, Protocol

from argus_protocol import Event, Stream

from .past import HistoryAnswer, HistoryQuery, HistoryUnavailable
from .quoteblock import QuoteBlock

Batch = Sequence[Event | QuoteBlock]  # what `Source.events()` yields: events, and quotes as blocks


class WantedSet:
    """The streams a source should provide, indexed for the questions sources ask."""

    __slots__ = ("by_symbol", "streams")

    def __init__(self, streams: Iterable[Stream] = ()) -> None:
        self.streams: frozenset[Stream] = frozenset(streams)
        by_symbol: dict[str, set[Stream]] = {}
        for s in self.streams:
            by_symbol.setdefault(s.symbol, set()).add(s)
        self.by_symbol = by_symbol

    @property
    def symbols(self) -> frozenset[str]:
        return frozenset(self.by_symbol)

    def types_for(self, symbol: str) -> set[str]:
        return {s.type for s in self.by_symbol.get(symbol, ())}

    def periods_for(self, symbol: str) -> set[str]:
        return {s.period for s in self.by_symbol.get(symbol, ()) if s.type == "kline"}

    def wants(self, data_type: str, symbol: str, period: str = "") -> bool:
        return Stream(data_type, symbol, period) in self.streams

    def symbols_with(self, data_type: str) -> set[str]:
        return {s.symbol for s in self.streams if s.type == data_type}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, WantedSet) and other.streams == self.streams

    def __hash__(self) -> int:
        return hash(self.streams)

    def __len__(self) -> int:
        return len(self.streams)

    def __repr__(self) -> str:
        return f"WantedSet({len(self.streams)} streams, {len(self.by_symbol)} symbols)"


class SourceContext(Protocol):
    """What a source may ask of the runner."""

    name: str  # the source name stamped on events and status

    def status(
        self,
        state: str,
        *,
        symbol: str | None = None,
        reason: str | None = None,
        unsupported: list[str] | None = None,
    ) -> None:
        """Report the source's (or one symbol's) state: live, stale, down, halted, closed."""

    def count_error(self, kind: str) -> None:
        """Count an upstream error (surfaced as `ingestor_errors_total{kind}`)."""

    def retained_seq(self, stream: Stream) -> int:
        """The newest `seq` JetStream retains of `stream`, 0 when it retains nothing of it.

        A source that seeds history (the mock's past) asks this first and seeds only streams
        without retained events, so a restart does not publish a second past over the first.
        Valid from `start()` on; must be cheap and must not block (sources call it on the event
        loop, for each stream of every symbol they seed).
        """

    def lost(self, stream: Stream, count: int = 1) -> None:
        """`count` events of `stream` were lost upstream (an outage, a skipped page): the runner
        uses up that many `seq`s before the stream's next event, so gateways see the hole and
        announce `GAP reason=upstream`. Push-style sources call `EventQueue.lost` instead, which
        keeps the hole in order with the batches already queued."""


class Source(abc.ABC):
    """Subclass this, register it under `argus.sources`, and the runner does the rest."""

    #: entry-point name, also the `source` field of every event
    name: str = "source"

    def __init__(self, options: dict[str, Any] | None = None) -> None:
        self.options: dict[str, Any] = dict(options or {})

    @abc.abstractmethod
    async def start(self, ctx: SourceContext) -> None: ...

    @abc.abstractmethod
    async def stop(self) -> None: ...

    @abc.abstractmethod
    def want(self, wanted: WantedSet) -> None: ...

    @abc.abstractmethod
    def events(self) -> AsyncIterator[Batch]: ...

    async def history(self, query: HistoryQuery) -> HistoryAnswer:
        """Deep history from the upstream's own history API (bars, a day's 分时, trades, quotes),
        normalized like live events, oldest first. Optional: raise `HistoryUnavailable(reason)`
        for what the upstream cannot give. The runner validates, de-duplicates, caches and times it."""
        raise HistoryUnavailable("this source keeps no history")


class _Lost:
    """A loss marker queued between batches; reported when the runner reaches it."""

    __slots__ = ("count", "ctx", "stream")

    def __init__(self, ctx: SourceContext, stream: Stream, count: int) -> None:
        self.ctx, self.stream, self.count = ctx, stream, count


class EventQueue:
    """For sources fed by callbacks or pollers: `put` batches, `close` in `stop()`, and let
    `events()` return `batches()`."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[list[Event] | _Lost | None] = asyncio.Queue()

    def put(self, batch: list[Event]) -> None:
        if batch:
            self._queue.put_nowait(batch)

    def lost(self, ctx: SourceContext, stream: Stream, count: int = 1) -> None:
        """`ctx.lost(stream, count)` once every batch put before is published, so the hole sits
        after those events and before the ones put next."""
        if count > 0:
            self._queue.put_nowait(_Lost(ctx, stream, count))

    def close(self) -> None:
        self._queue.put_nowait(None)  # batches() ends after what was put before

    async def batches(self) -> AsyncIterator[list[Event]]:
        while (item := await self._queue.get()) is not None:
            if isinstance(item, _Lost):
                item.ctx.lost(item.stream, item.count)  # the runner asks for the next batch only after publishing
                continue
            yield item
