"""The runner: drives one Source and publishes its events to NATS.

It stamps `seq` (per stream) and `ts` (publish time, epoch µs) on each event, encodes it once
(MessagePack) and publishes it to the event's subject (a source's `QuoteBlock` of many quotes is
written from its columns instead, each quote stamped alike: quoteblock.py); follows demand;
publishes status and its heartbeat; and survives NATS restarts (nats-py reconnects and buffers;
events that cannot be buffered are dropped *with* their seq consumed, so gateways see the hole
and announce a GAP).

`seq` never goes backwards across restarts: before the source starts, the runner reads the newest
retained event of every stream from JetStream and continues each stream from it (and a bar or
minute's `first_seq` from its retained forming version). Only when retention was lost does a
stream start at 1 again, which gateways announce as `GAP reason=reset`.

It publishes a stream only while it has the right to (`_Right`): this replica holds the source's
lease (lease.py) and, for markets under failover (failover.py), this source holds the market
group's lease. Taking a right re-reads the retained heads, so the streams go on from the last
event the previous publisher wrote; events made while withholding use up one seq, which clients
see as a GAP, and a STATUS says who took over from whom.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from functools import partial

from argus_protocol import (
    BARRED,
    DemandQuery,
    Event,
    SourceStatus,
    Stream,
    Subjects,
    bar_mark,
    decode_event,
    encode_event_into,
    encode_msgpack,
    market_of,
    now_us,
    stores,
)
from argus_service.config import Config
from argus_service.jetstream import ensure_streams
from argus_service.natsconn import connect_nats, let_go
from argus_service.natswire import BufferFull, PubBatch, pub_prefix, publish_pubs
from argus_service.retained import StoreError, newest_per_subject
from argus_service.tasks import Background
from nats.aio.client import Client
from opentelemetry import trace
from prometheus_client import CollectorRegistry, Counter, Gauge

from .demand import DemandTable
from .failover import Failover, MarketGroup
from .history import HistoryService
from .lease import SourceLease
from .quoteblock import BlockWriter, QuoteBlock
from .source import Batch, Source, WantedSet
from .status import StatusBoard

log = logging.getLogger("argus.runner")


class IngestorMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.published = Counter(
            "ingestor_events_published_total", "Events published to NATS", ["type"], registry=registry
        )
        self.publish_errors = Counter(
            "ingestor_publish_errors_total", "Events that could not be published", registry=registry
        )
        self.errors = Counter("ingestor_errors_total", "Upstream/source errors by kind", ["kind"], registry=registry)
        self.wanted = Gauge("ingestor_wanted_streams", "Streams the source is asked to provide", registry=registry)
        self.gateways = Gauge("ingestor_demand_gateways", "Gateways with live demand announcements", registry=registry)
        self.nats_connected = Gauge("ingestor_nats_connected", "1 while connected to NATS", registry=registry)
        self.publishing = Gauge(
            "ingestor_publishing",
            "1 while this ingestor publishes these markets (`*`: every market outside failover groups)",
            ["markets"],
            registry=registry,
        )


class _Right:
    """May the runner publish a set of streams: one failover group's markets, or all the rest."""

    __slots__ = ("granted", "group", "label", "on")

    def __init__(self, group: MarketGroup | None) -> None:
        self.group = group
        self.label = group.label if group is not None else "*"
        self.granted = False  # taken: its streams continued from what JetStream retains
        self.on = False  # granted and every lease it needs held now (refreshed once per batch)


class _StreamState:
    """Per stream: the last seq stamped, its subjects, the bar or minute being formed, its right."""

    __slots__ = ("closed_pub", "closed_subject", "first", "mark", "pub", "right", "seq", "subject", "withheld")

    def __init__(self, subject: str, closed_subject: str, right: _Right) -> None:
        self.subject = subject  # quote/trade: the one subject; tick/kline: the forming one
        self.closed_subject = closed_subject
        self.pub, self.closed_pub = pub_prefix(subject), pub_prefix(closed_subject)
        self.right = right
        self.seq = 0
        self.mark = ""
        self.first = 0
        self.withheld = 0  # events stamped but not published since the right was last taken


class Runner:
    """One source, one NATS connection. `run(stop)` returns when `stop` is set."""

    def __init__(
        self,
        source: Source,
        cfg: Config,
        registry: CollectorRegistry,
        *,
        always_on: Iterable[Stream] = (),
        tracer: trace.Tracer | None = None,
        lease: SourceLease | None = None,
        failover: Failover | None = None,
    ) -> None:
        self.source = source
        self.lease = lease  # one publisher per source (lease.py); None: no check
        self.failover = failover  # which markets this source publishes (failover.py); None: all
        self._rest = _Right(None)
        self._rights = [self._rest]
        self._right_of: dict[str, _Right] = {}  # market -> its group's right
        for group in failover.groups if failover is not None else ():
            right = _Right(group)
            self._rights.append(right)
            self._right_of.update(dict.fromkeys(group.markets, right))
            if group.lease is not None:
                group.lease.on_acquired.append(partial(self._spawn_take, right))
                group.lease.on_lost.append(partial(self._lose, right))
        if lease is not None:
            lease.on_acquired.append(self._take_all)
            lease.on_lost.append(self._lose_all)
        self._taking = asyncio.Lock()
        self._retention = False
        self.tracer = tracer or trace.NoOpTracer()
        self.name = source.name
        self.cfg = cfg
        self.subjects = Subjects(cfg.nats.subject_prefix)
        self.metrics = IngestorMetrics(registry)
        self.always_on = frozenset(always_on)
        self.demand = DemandTable()
        self.board = StatusBoard(self.name, cfg.datasource.status_interval)
        self.nc: Client | None = None
        # one lookup per event stamps seq and finds the subject
        self._streams: dict[tuple[str, str, str], _StreamState] = {}
        self._scratch = bytearray()  # publish(): where each event is encoded
        self._quotes: dict[str, _StreamState] = {}  # symbol -> its quote stream's (in _streams): for blocks
        self._writer = BlockWriter()
        self._wanted = WantedSet()
        self._tasks: list[asyncio.Task[None]] = []
        self._ready = False
        self._background = Background()
        # deep history on argus.history.<source> (history.py); refused while the source is down
        self.history = HistoryService(
            source, cfg.history, registry, lambda: (self.board.overall.state, self.board.overall.reason)
        )

    # SourceContext ------------------------------------------------------------------------
    def status(
        self,
        state: str,
        *,
        symbol: str | None = None,
        reason: str | None = None,
        unsupported: list[str] | None = None,
    ) -> None:
        changed = self.board.set(state, symbol=symbol, reason=reason, unsupported=unsupported)
        if changed is not None:
            with self.tracer.start_as_current_span(
                "ingestor.status",
                attributes={"source": self.name, "state": state, "symbol": symbol or "", "reason": reason or ""},
            ):
                pass
            log.info("source status", extra={"source": self.name, "state": state, "symbol": symbol, "reason": reason})
            self._publish_status(changed)

    def count_error(self, kind: str) -> None:
        self.metrics.errors.labels(kind).inc()

    def retained_seq(self, stream: Stream) -> int:
        """The newest seq of `stream` retained in JetStream when the runner started (0: none)."""
        state = self._streams.get((stream.type, stream.symbol, stream.period))
        return state.seq if state is not None else 0

    def lost(self, stream: Stream, count: int = 1) -> None:
        """SourceContext.lost: use up `count` seqs so gateways announce GAP reason=upstream."""
        state = self._state(stream)
        state.seq += count
        self.metrics.errors.labels("lost").inc(count)

    # readiness ----------------------------------------------------------------------------
    def ready(self) -> tuple[bool, str]:
        if self.nc is None or not self.nc.is_connected:
            return False, "nats not connected"
        if not self._ready:
            return False, "source starting"
        if self.lease is not None and not self.lease.held:
            return True, self.lease.describe()  # a standby is doing its job: waiting
        return True, "ok"

    # main loop ----------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        self.nc = await connect_nats(
            self.cfg.nats,
            f"argus-ingestor-{self.name}",
            on_reconnect=self._on_reconnect,
            on_disconnect=self._on_disconnect,
            stop=stop,
        )
        self.metrics.nats_connected.set(1)
        async with self._taking:  # a lease taken meanwhile re-reads after this first read
            if self.lease is not None:
                await self.lease.acquire(self.nc)
            self._retention = await ensure_streams(self.nc, self.cfg.retention, self.subjects)
            self._continue_from(await self._retained_heads())
            self._rest.granted = self.lease is None or self.lease.held
            self.metrics.publishing.labels("*").set(1 if self._rest.granted else 0)
        await self.nc.subscribe(self.subjects.demand_all(), cb=self._on_demand)
        await self._ask_for_demand()
        with self.tracer.start_as_current_span("ingestor.source.start", attributes={"source": self.name}):
            await self.source.start(self)
        for group in self.failover.groups if self.failover is not None else ():
            if group.lease is not None:  # after start: the source's health decides who publishes
                await group.lease.acquire(self.nc)
        self._apply_wanted()
        await self.history.start(self.nc, self.subjects)  # history: after the source started
        self._ready = True
        self._announce()  # at once: gateways learn of a (re)started source before its data
        self._tasks = [
            asyncio.create_task(self._pump(), name="pump"),
            asyncio.create_task(self._housekeeping(), name="housekeeping"),
        ]
        stopper = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait([stopper, *self._tasks], return_when=asyncio.FIRST_COMPLETED)
        stopper.cancel()
        for t in done:
            if t is not stopper and t.exception() is not None:
                log.error("runner task failed", exc_info=t.exception())
        await self.close()

    async def close(self) -> None:
        self._ready = False
        await self.history.stop()  # history: no new requests while the source stops
        with contextlib.suppress(Exception):
            await self.source.stop()
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        for group in self.failover.groups if self.failover is not None else ():
            if group.lease is not None:
                await group.lease.release()  # the next source takes the markets at its next try
        if self.lease is not None:
            await self.lease.release()
        if self.nc is not None:
            await let_go(self.nc)
        self.metrics.nats_connected.set(0)

    async def _pump(self) -> None:
        async for batch in self.source.events():
            await self.publish(batch)

    async def publish(self, batch: Batch) -> None:
        nc = self.nc
        assert nc is not None
        streams = self._streams
        stamp = now_us()
        name = self.name
        max_payload = nc.max_payload
        out = PubBatch()
        payload = self._scratch  # each event encoded into the same buffer, then copied into the batch
        sent: dict[str, int] = {}
        failed = withheld = 0
        self._refresh_rights()
        for ev in batch:
            if isinstance(ev, QuoteBlock):
                published, dropped, held = self._add_block(ev, out, stamp, max_payload)
                if published:
                    sent["quote"] = sent.get("quote", 0) + published
                failed += dropped
                withheld += held
                continue
            etype: str = ev.__struct_config__.tag  # type: ignore[assignment]  # every event type is tagged
            if etype == "kline":
                bar = ev.kline  # type: ignore[union-attr]
                key = (etype, ev.symbol, bar.period)
                mark, closed = bar.open_time, bar.closed
            elif etype == "tick":
                point = ev.tick  # type: ignore[union-attr]
                key = (etype, ev.symbol, "")
                mark, closed = point.time, point.closed
            else:
                key = (etype, ev.symbol, "")
                mark, closed = "", False
            state = streams.get(key)
            if state is None:
                state = streams[key] = self._new_state(Stream(*key))
            seq = state.seq = state.seq + 1
            ev.seq = seq
            ev.ts = stamp
            if not ev.source:
                ev.source = name
            pub = state.pub
            if mark:
                if mark != state.mark:  # a new bar or minute begins with this version
                    state.mark = mark
                    state.first = seq
                ev.first_seq = state.first
                if closed:
                    pub = state.closed_pub
            if not state.right.on:  # a standby stamps seq but does not publish: a lapse of ours shows as a GAP
                state.withheld += 1
                withheld += 1
                continue
            encode_event_into(ev, payload)
            if len(payload) > max_payload:  # its seq is used up: gateways announce the hole
                failed += 1
                subject = state.closed_subject if pub is state.closed_pub else state.subject
                log.warning("event over max_payload dropped", extra={"subject": subject, "bytes": len(payload)})
                continue
            out.add(pub, payload)
            sent[etype] = sent.get(etype, 0) + 1
        try:
            if out.count:
                publish_pubs(nc, out)  # one buffer for the batch, no await per event
        except (BufferFull, ConnectionError) as e:  # NATS away and its buffer full: the seq holes tell
            failed += out.count
            sent = {}
            log.debug("batch not published", extra={"events": out.count, "error": repr(e)})
        # metrics once per batch, not per event (a labelled counter costs more than the publish)
        for etype, n in sent.items():
            self.metrics.published.labels(etype).inc(n)
        if failed:
            self.metrics.publish_errors.inc(failed)
        if withheld and self.lease is not None:
            self.lease.withhold(withheld)

    def _add_block(self, block: QuoteBlock, out: PubBatch, stamp: int, max_payload: int) -> tuple[int, int, int]:
        """`publish` for a block of quotes: each stamped as an event would be, their PUBs written from
        the columns (quoteblock.py). Returns how many were published, dropped and withheld."""
        quotes = self._quotes
        rows: list[int] = []
        prefixes: list[bytes] = []
        seqs: list[int] = []
        withheld = 0
        for i, symbol in enumerate(block.symbols):
            state = quotes.get(symbol)
            if state is None:
                state = quotes[symbol] = self._state(Stream("quote", symbol))
            seq = state.seq = state.seq + 1
            if not state.right.on:  # as for an event: the seq is used up, a lapse shows as a GAP
                state.withheld += 1
                withheld += 1
                continue
            rows.append(i)
            prefixes.append(state.pub)
            seqs.append(seq)
        if not block.source:
            block.source = self.name
        pubs, payload_bytes, longest = self._writer.pubs(block, rows, prefixes, seqs, stamp)
        if longest > max_payload:  # their seqs are used up: gateways announce the holes
            log.warning("quotes over max_payload dropped", extra={"quotes": len(rows), "bytes": longest})
            return 0, len(rows), withheld
        out.add_pubs(pubs, len(rows), payload_bytes)
        return len(rows), 0, withheld

    def _state(self, stream: Stream) -> _StreamState:
        key = (stream.type, stream.symbol, stream.period)
        state = self._streams.get(key)
        if state is None:
            state = self._streams[key] = self._new_state(stream)
        return state

    def _new_state(self, stream: Stream) -> _StreamState:
        right = self._right_of.get(market_of(stream.symbol), self._rest)
        if stream.type in BARRED:
            return _StreamState(self.subjects.publish(stream), self.subjects.publish(stream, closed=True), right)
        subject = self.subjects.publish(stream)
        return _StreamState(subject, subject, right)

    # the right to publish -------------------------------------------------------------------
    def _refresh_rights(self) -> None:
        source_held = self.lease is None or self.lease.held
        for right in self._rights:
            lease = right.group.lease if right.group is not None else None
            group_held = right.group is None or (lease is not None and lease.held)
            right.on = right.granted and source_held and group_held

    def _take_all(self) -> None:
        for right in self._rights:
            self._spawn_take(right)

    def _lose_all(self) -> None:
        for right in self._rights:
            self._lose(right)

    def _spawn_take(self, right: _Right) -> None:
        self._background.spawn(self._take(right))

    async def _take(self, right: _Right) -> None:
        """Continue the right's streams from the retained heads, then publish them."""
        async with self._taking:
            lease = right.group.lease if right.group is not None else self.lease
            source_held = self.lease is None or self.lease.held
            if right.granted or not source_held or (lease is not None and not lease.held):
                return
            self._continue_from(await self._retained_heads(), right)
            right.granted = True
            self.metrics.publishing.labels(right.label).set(1)
            previous = lease.other if lease is not None else None  # whom it was taken from
            if previous is not None:
                what = f"publishing {right.label}" if right.group is not None else "publishing"
                whom = previous.source if right.group is not None and previous.source else previous.holder
                why = "" if previous.healthy else f" ({whom} unhealthy)"
                self.status(self.board.overall.state, reason=f"{what}: took over from {whom}{why}")
            log.info("publishing", extra={"source": self.name, "markets": right.label, "took_over": bool(previous)})

    def _lose(self, right: _Right) -> None:
        if not right.granted:
            return
        right.granted = right.on = False
        self.metrics.publishing.labels(right.label).set(0)
        lease = right.group.lease if right.group is not None else None
        if lease is not None and lease.other is not None and (self.lease is None or self.lease.held):
            holder = lease.other.source or "another source"
            self.status(self.board.overall.state, reason=f"standby for {right.label}: {holder} publishes it")

    async def _retained_heads(self) -> dict[tuple[str, str, str], Event] | None:
        """The newest retained event of every stream; None when retention is off or unreadable."""
        if not self._retention:
            return None
        assert self.nc is not None
        heads: dict[tuple[str, str, str], Event] = {}
        for store in stores(self.subjects).values():
            for subject in store.subjects:
                try:
                    found = await newest_per_subject(self.nc, store.name, subject)
                except StoreError as e:
                    log.warning("retained seqs unreadable; streams go on from our own count", extra={"error": str(e)})
                    return None
                for raw in found.values():
                    try:
                        ev = decode_event(raw)
                    except Exception:  # noqa: BLE001 - a foreign or corrupt message: not ours to continue
                        continue
                    etype: str = ev.__struct_config__.tag  # type: ignore[assignment]
                    key = (etype, ev.symbol, ev.kline.period if etype == "kline" else "")  # type: ignore[union-attr]
                    have = heads.get(key)
                    if have is None or ev.seq > have.seq:
                        heads[key] = ev
        return heads

    def _continue_from(self, heads: dict[tuple[str, str, str], Event] | None, right: _Right | None = None) -> None:
        """Each stream (of `right`, or all) goes on from its retained head; one seq more where
        we withheld events since, so clients are told of the hole with a GAP."""
        streams = self._streams
        for key, ev in (heads or {}).items():
            state = self._state(Stream(*key))
            if right is not None and state.right is not right:
                continue
            state.seq = ev.seq + (1 if state.withheld else 0)
            if key[0] in BARRED:
                state.mark = bar_mark(ev)
                state.first = ev.first_seq or ev.seq
        for state in streams.values():
            if right is None or state.right is right:
                state.withheld = 0
        log.info(
            "continuing retained streams",
            extra={"source": self.name, "streams": len(heads or {}), "markets": right.label if right else "all"},
        )

    async def _housekeeping(self) -> None:
        """Expire dead gateways' demand every half second; repeat status every interval."""
        last_status = 0.0
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(0.5)
            if self.demand.expire():
                self._apply_wanted()
            if loop.time() - last_status >= self.board.interval:
                last_status = loop.time()
                self._announce()

    # demand -------------------------------------------------------------------------------
    async def _on_demand(self, msg) -> None:  # type: ignore[no-untyped-def]
        known = len(self.demand)
        if self.demand.apply(msg.data):
            self._apply_wanted()
        if len(self.demand) > known:  # a gateway new to us: it hears our state now, not at the next repeat
            self._announce()

    def _apply_wanted(self) -> None:
        wanted = WantedSet(self.demand.union() | self.always_on)
        if self.failover is not None:  # markets another source publishes are not ours to fetch
            wanted = WantedSet(s for s in wanted.streams if self.failover.serves(market_of(s.symbol)))
        self.metrics.gateways.set(len(self.demand))
        if wanted == self._wanted:
            return
        self._wanted = wanted
        self.metrics.wanted.set(len(wanted))
        attrs: dict[str, str | int] = {
            "source": self.name,
            "streams": len(wanted),
            "symbols": len(wanted.symbols),
            "gateways": len(self.demand),
        }
        log.info("demand changed", extra=attrs)
        with self.tracer.start_as_current_span("ingestor.demand.change", attributes=attrs) as span:
            try:
                self.source.want(wanted)
            except Exception as e:
                log.exception("source.want failed")
                self.count_error("want")
                span.record_exception(e)

    async def _ask_for_demand(self) -> None:
        assert self.nc is not None
        with contextlib.suppress(Exception):
            await self.nc.publish(self.subjects.demand_query(), encode_msgpack(DemandQuery(requester=self.name)))

    async def _on_reconnect(self) -> None:
        with self.tracer.start_as_current_span("ingestor.nats.reconnect", attributes={"source": self.name}):
            await self._after_reconnect()

    async def _after_reconnect(self) -> None:
        self.metrics.nats_connected.set(1)
        assert self.nc is not None
        # Gateways may have announced while we were away: ask first (the JetStream call below
        # can wait seconds for a freshly restarted server), then tell our state again.
        await self._ask_for_demand()
        self._announce()
        # A restarted nats-server lost in-memory retention: our seqs go on from memory regardless.
        await ensure_streams(self.nc, self.cfg.retention, self.subjects)

    async def _on_disconnect(self) -> None:
        self.metrics.nats_connected.set(0)

    def _announce(self) -> None:
        """Every status the board holds, again: the heartbeat, and what a newcomer must hear."""
        for st in self.board.repeat():
            self._publish_status(st)

    def _publish_status(self, status: SourceStatus) -> None:
        nc = self.nc
        if nc is None or not nc.is_connected:
            return
        if self.lease is not None and not self.lease.held:
            return  # the holder's heartbeat speaks for the source
        status.ts = now_us()
        self._background.spawn(self._send(self.subjects.status(self.name), encode_msgpack(status)))

    async def _send(self, subject: str, payload: bytes) -> None:
        assert self.nc is not None
        with contextlib.suppress(Exception):
            await self.nc.publish(subject, payload)
