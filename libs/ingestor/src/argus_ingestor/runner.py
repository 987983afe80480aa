"""The runner: drives one Source and publishes its events to NATS.

It stamps `seq` (per stream) and `ts` (publish time, epoch µs) on each event, encodes it once
(MessagePack) and publishes it to the event's subject; follows demand; publishes status and its
heartbeat; and survives NATS restarts (nats-py reconnects and buffers; events that cannot be
buffered are dropped *with* their seq consumed, so gateways see the hole and announce a GAP).

`seq` never goes backwards across restarts: before the source starts, the runner reads the newest
retained event of every stream from JetStream and continues each stream from it (and a bar or
minute's `first_seq` from its retained forming version). Only when retention was lost does a
stream start at 1 again, which gateways announce as `GAP reason=reset`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable

from argus_protocol import (
    BARRED,
    DemandQuery,
    Event,
    SourceStatus,
    Stream,
    Subjects,
    bar_mark,
    decode_event,
    encode_event,
    encode_msgpack,
    now_us,
    stores,
)
from argus_service.config import Config
from argus_service.jetstream import ensure_streams
from argus_service.natsconn import connect_nats
from argus_service.natswire import BufferFull, publish_batch
from argus_service.retained import StoreError, newest_per_subject
from argus_service.tasks import Background
from nats.aio.client import Client
from opentelemetry import trace
from prometheus_client import CollectorRegistry, Counter, Gauge

from .demand import DemandTable
from .history import HistoryService
from .lease import SourceLease
from .source import Source, WantedSet
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


class _StreamState:
    """Per stream: the last seq stamped, its subjects, and the bar or minute being formed."""

    __slots__ = ("closed_subject", "first", "mark", "seq", "subject")

    def __init__(self, subject: str, closed_subject: str, seq: int = 0, mark: str = "", first: int = 0) -> None:
        self.subject = subject  # quote/trade: the one subject; tick/kline: the forming one
        self.closed_subject = closed_subject
        self.seq = seq
        self.mark = mark
        self.first = first


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
    ) -> None:
        self.source = source
        self.lease = lease  # one publisher per source (lease.py); None: no check
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
        key = (stream.type, stream.symbol, stream.period)
        state = self._streams.get(key)
        if state is None:
            state = self._streams[key] = self._new_state(stream)
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
        if self.lease is not None:
            await self.lease.acquire(self.nc)
        if await ensure_streams(self.nc, self.cfg.retention, self.subjects):
            await self._continue_retained()
        await self.nc.subscribe(self.subjects.demand_all(), cb=self._on_demand)
        await self._ask_for_demand()
        with self.tracer.start_as_current_span("ingestor.source.start", attributes={"source": self.name}):
            await self.source.start(self)
        self._apply_wanted()
        await self.history.start(self.nc, self.subjects)  # history: after the source started
        self._ready = True
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
        if self.lease is not None:
            await self.lease.release()
        if self.nc is not None and not self.nc.is_closed:
            with contextlib.suppress(Exception):
                await self.nc.drain()
        self.metrics.nats_connected.set(0)

    async def _pump(self) -> None:
        async for batch in self.source.events():
            await self.publish(batch)

    async def publish(self, batch: list[Event]) -> None:
        nc = self.nc
        assert nc is not None
        streams = self._streams
        stamp = now_us()
        name = self.name
        max_payload = nc.max_payload
        out: list[tuple[str, bytes]] = []
        sent: dict[str, int] = {}
        failed = 0
        held = self.lease is None or self.lease.held
        for ev in batch:
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
            subject = state.subject
            if mark:
                if mark != state.mark:  # a new bar or minute begins with this version
                    state.mark = mark
                    state.first = seq
                ev.first_seq = state.first
                if closed:
                    subject = state.closed_subject
            if not held:
                continue  # a standby stamps seq but does not publish: a lapse of ours shows as a GAP
            payload = encode_event(ev)
            if len(payload) > max_payload:  # its seq is used up: gateways announce the hole
                failed += 1
                log.warning("event over max_payload dropped", extra={"subject": subject, "bytes": len(payload)})
                continue
            out.append((subject, payload))
            sent[etype] = sent.get(etype, 0) + 1
        try:
            if out:
                publish_batch(nc, out)  # one buffer for the batch, no await per event
        except (BufferFull, ConnectionError) as e:  # NATS away and its buffer full: the seq holes tell
            failed += len(out)
            sent = {}
            log.debug("batch not published", extra={"events": len(out), "error": repr(e)})
        # metrics once per batch, not per event (a labelled counter costs more than the publish)
        for etype, n in sent.items():
            self.metrics.published.labels(etype).inc(n)
        if failed:
            self.metrics.publish_errors.inc(failed)
        if not held and self.lease is not None:
            self.lease.withhold(len(batch))

    def _new_state(self, stream: Stream) -> _StreamState:
        if stream.type in BARRED:
            return _StreamState(self.subjects.publish(stream), self.subjects.publish(stream, closed=True))
        subject = self.subjects.publish(stream)
        return _StreamState(subject, subject)

    async def _continue_retained(self) -> None:
        """Pick up every stream's seq (and forming bar) from the newest events JetStream retains."""
        assert self.nc is not None
        heads: dict[tuple[str, str, str], Event] = {}
        for store in stores(self.subjects).values():
            for subject in store.subjects:
                try:
                    found = await newest_per_subject(self.nc, store.name, subject)
                except StoreError as e:
                    log.warning("retained seqs unreadable; streams start at 1", extra={"error": str(e)})
                    return
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
        for key, ev in heads.items():
            state = self._new_state(Stream(*key))
            state.seq = ev.seq
            if key[0] in BARRED:
                state.mark = bar_mark(ev)
                state.first = ev.first_seq or ev.seq
            self._streams[key] = state
        log.info("continuing retained streams", extra={"source": self.name, "streams": len(heads)})

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
                for st in self.board.repeat():
                    self._publish_status(st)

    # demand -------------------------------------------------------------------------------
    async def _on_demand(self, msg) -> None:  # type: ignore[no-untyped-def]
        if self.demand.apply(msg.data):
            self._apply_wanted()

    def _apply_wanted(self) -> None:
        wanted = WantedSet(self.demand.union() | self.always_on)
        self.metrics.gateways.set(len(self.demand.gateways))
        if wanted == self._wanted:
            return
        self._wanted = wanted
        self.metrics.wanted.set(len(wanted))
        attrs: dict[str, str | int] = {
            "source": self.name,
            "streams": len(wanted),
            "symbols": len(wanted.symbols),
            "gateways": len(self.demand.gateways),
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
        for st in self.board.repeat():
            self._publish_status(st)
        # A restarted nats-server lost in-memory retention: our seqs go on from memory regardless.
        await ensure_streams(self.nc, self.cfg.retention, self.subjects)

    async def _on_disconnect(self) -> None:
        self.metrics.nats_connected.set(0)

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
