"""The ingestor runner against a real nats-server: stamping, demand, status, NATS restarts."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import msgspec
import nats
import numpy as np
import pytest
from argus_ingestor import QuoteBlock, Runner, Source, SourceContext, WantedSet
from argus_protocol import (
    DemandAnnouncement,
    Event,
    Quote,
    QuoteEvent,
    SourceStatus,
    Stream,
    Subjects,
    decode_event,
    encode_msgpack,
    now_us,
)
from argus_service.config import build_config
from natsserver import NatsServer, nats_binary, sync_subscriptions
from prometheus_client import CollectorRegistry


class ScriptedSource(Source):
    """A source the test drives: it yields what the test puts in, and records want() calls."""

    name = "scripted"

    def __init__(self) -> None:
        super().__init__({})
        self.queue: asyncio.Queue[list[Event | QuoteBlock] | None] = asyncio.Queue()
        self.wants: list[WantedSet] = []
        self.ctx: SourceContext | None = None

    async def start(self, ctx: SourceContext) -> None:
        self.ctx = ctx

    async def stop(self) -> None:
        await self.queue.put(None)

    def want(self, wanted: WantedSet) -> None:
        self.wants.append(wanted)

    async def events(self) -> AsyncIterator[list[Event | QuoteBlock]]:
        while (batch := await self.queue.get()) is not None:
            yield batch


def q(symbol: str, price: float = 10.0) -> QuoteEvent:
    return QuoteEvent(
        symbol=symbol,
        quote=Quote(
            price=price,
            open=price,
            high=price,
            low=price,
            prev_close=price,
            volume=100,
            amount=1000.0,
            timestamp="2026-11-23T10:00:00+08:00",
        ),
    )


async def wait_for(pred, timeout: float = 2.0, what: str = "condition") -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not met within {timeout}s")
        await asyncio.sleep(0.02)


async def listen(nc: nats.NATS, *subjects: str) -> list[tuple[str, Event]]:
    """(subject, event) of everything published to `subjects` from now on, as it arrives."""
    got: list[tuple[str, Event]] = []

    async def cb(msg) -> None:  # type: ignore[no-untyped-def]
        got.append((msg.subject, decode_event(msg.data)))

    for subject in subjects:
        await nc.subscribe(subject, cb=cb)
    await sync_subscriptions(nc)
    return got


@pytest.fixture
async def running(nats_url: str):  # type: ignore[no-untyped-def]
    made = []

    async def start(url: str = nats_url, status_interval: float = 5.0, always_on: tuple[Stream, ...] = (), tracer=None):  # type: ignore[no-untyped-def]
        cfg = build_config(None, {}, {"nats.url": url, "datasource.status_interval": status_interval})
        src = ScriptedSource()
        runner = Runner(src, cfg, CollectorRegistry(), always_on=always_on, tracer=tracer)
        stop = asyncio.Event()
        task = asyncio.create_task(runner.run(stop))
        await wait_for(lambda: runner.ready()[0], 10, "runner ready")
        made.append((stop, task))
        return src, runner

    yield start
    for stop, task in made:
        stop.set()
        await asyncio.wait_for(task, 10)


async def test_events_get_per_stream_seq_and_publish_ts(running, nats_url: str) -> None:
    src, _ = await running()
    nc = await nats.connect(nats_url)
    got = await listen(nc, "quote.RUN1.SZ", "quote.RUN2.SZ")
    before = now_us()
    await src.queue.put([q("RUN1.SZ", 1), q("RUN2.SZ", 2), q("RUN1.SZ", 3)])
    await src.queue.put([q("RUN1.SZ", 4)])
    await wait_for(lambda: len(got) >= 4, 10, "4 events on NATS")
    run1 = [e for s, e in got if s == "quote.RUN1.SZ"]
    assert [e.seq for e in run1] == [1, 2, 3]
    assert [e.quote.price for e in run1] == [1, 3, 4]
    assert [e.seq for s, e in got if s == "quote.RUN2.SZ"] == [1]
    assert all(e.source == "scripted" and before <= e.ts <= now_us() for _, e in got)
    await nc.close()


def quote_block(symbols: list[str], prices: list[float]) -> QuoteBlock:
    n = len(symbols)
    p = np.array(prices)
    levels = np.arange(5)
    return QuoteBlock(
        symbols=symbols,
        timestamp="2026-11-23T10:00:00.000+08:00",
        price=p,
        open=p,
        high=p + 1,
        low=p - 1,
        prev_close=p,
        volume=np.full(n, 100, np.int64),
        amount=p * 100,
        bid_prices=p[:, None] - levels / 100,
        bid_volumes=np.full((n, 5), 300, np.int64),
        ask_prices=p[:, None] + 0.01 + levels / 100,
        ask_volumes=np.full((n, 5), 200, np.int64),
    )


async def test_a_block_of_quotes_goes_out_as_its_events_on_the_same_streams(running, nats_url: str) -> None:
    src, _ = await running()
    nc = await nats.connect(nats_url)
    got = await listen(nc, "quote.BLK1.SZ", "quote.BLK2.SZ")
    first = quote_block(["BLK1.SZ", "BLK2.SZ"], [1, 2])
    before = now_us()
    await src.queue.put([first, q("BLK1.SZ", 3)])  # a block and an event of the same stream
    await src.queue.put([quote_block(["BLK1.SZ"], [4])])
    await wait_for(lambda: len(got) >= 4, 10, "4 quotes on NATS")
    blk1 = [e for s, e in got if s == "quote.BLK1.SZ"]
    assert [(e.seq, e.quote.price) for e in blk1] == [(1, 1), (2, 3), (3, 4)]
    assert all(e.source == "scripted" and before <= e.ts <= now_us() for _, e in got)
    # each as the block's own event, stamped
    block_blk2 = next(e for s, e in got if s == "quote.BLK2.SZ")
    want = first.events()[1]
    want.source, want.seq, want.ts = "scripted", 1, block_blk2.ts
    assert block_blk2 == want and len(want.quote.bid_prices) == 5
    await nc.close()


async def test_a_block_over_max_payload_is_dropped_with_its_seqs_used_up(running) -> None:  # type: ignore[no-untyped-def]
    binary = nats_binary()
    if binary is None:
        pytest.skip("needs the nats-server binary")
    # a quote with its book (~300 bytes) is over this server's limit, one without (~190) is not
    server = NatsServer(binary, conf="max_payload: 256\n")
    server.start()
    try:
        src, runner = await running(url=server.url)
        nc = await nats.connect(server.url)
        got = await listen(nc, "quote.BLK1.SZ")
        await src.queue.put([quote_block(["BLK1.SZ"], [1]), quote_block(["BLK1.SZ"], [2]), q("BLK1.SZ", 3)])
        await wait_for(lambda: len(got) >= 1, 10, "the small quote on NATS")
        await asyncio.sleep(0.2)
        assert [(e.seq, e.quote.price) for _, e in got] == [(3, 3)]  # seqs 1 and 2 show as a hole: a GAP
        assert runner.metrics.publish_errors.collect()[0].samples[0].value == 2  # counted as not published
        await nc.close()
    finally:
        server.cleanup()


async def test_follows_the_union_of_gateway_demand_and_expires_dead_gateways(running, nats_url: str) -> None:
    nc = await nats.connect(nats_url)
    queries: list[bytes] = []

    async def on_query(msg) -> None:  # type: ignore[no-untyped-def]
        queries.append(msg.data)

    await nc.subscribe(Subjects().demand_query(), cb=on_query)
    await sync_subscriptions(nc)
    src, _ = await running(always_on=(Stream("quote", "600000.SH"),))
    await wait_for(lambda: queries, 2)  # a starting ingestor asks gateways to announce
    assert src.wants[-1].streams == {Stream("quote", "600000.SH")}

    async def announce(gw: str, seq: int, ttl: float, streams: list[str]) -> None:
        await nc.publish(
            Subjects().demand(gw), encode_msgpack(DemandAnnouncement(gateway=gw, seq=seq, ttl=ttl, streams=streams))
        )
        await nc.flush()

    t0 = time.monotonic()
    await announce("gwA", 1, 30, ["quote:300750.SZ", "kline:000001.SZ:5m"])
    await announce("gwB", 1, 1.0, ["trade:300750.SZ", "bogus key", "quote:*.SZ"])
    await wait_for(lambda: Stream("trade", "300750.SZ") in src.wants[-1].streams, 1.0)
    assert time.monotonic() - t0 < 1.0
    assert src.wants[-1].streams == {
        Stream("quote", "600000.SH"),
        Stream("quote", "300750.SZ"),
        Stream("kline", "000001.SZ", "5m"),
        Stream("trade", "300750.SZ"),
    }
    # an out-of-order older announcement changes nothing
    await announce("gwA", 3, 30, ["quote:300750.SZ", "kline:000001.SZ:5m"])
    await announce("gwA", 2, 30, [])
    await asyncio.sleep(0.2)
    assert Stream("quote", "300750.SZ") in src.wants[-1].streams
    # gwB stops refreshing: its wants expire after its ttl
    await wait_for(lambda: Stream("trade", "300750.SZ") not in src.wants[-1].streams, 3.0)
    assert time.monotonic() - t0 < 2.5
    # gwA withdraws on a clean exit: at once
    await announce("gwA", 4, 30, [])
    await wait_for(lambda: src.wants[-1].streams == {Stream("quote", "600000.SH")}, 1.0)
    await nc.close()


async def test_a_gateway_restarted_under_the_same_id_is_heard_at_once(running, nats_url: str) -> None:
    nc = await nats.connect(nats_url)
    src, _ = await running()

    async def announce(seq: int, streams: list[str]) -> None:
        ann = DemandAnnouncement(gateway="gw-fixed", seq=seq, ttl=30, streams=streams)
        await nc.publish(Subjects().demand("gw-fixed"), encode_msgpack(ann))
        await nc.flush()

    await announce(41, ["quote:000651.SZ"])
    await wait_for(lambda: bool(src.wants) and Stream("quote", "000651.SZ") in src.wants[-1].streams, 3.0)
    # killed without withdrawing, back with a fresh counter and different clients
    await announce(1, ["quote:601318.SH"])
    await wait_for(lambda: src.wants[-1].streams == {Stream("quote", "601318.SH")}, 3.0)
    await nc.close()


async def test_status_changes_and_heartbeat_repeat(running, nats_url: str) -> None:
    nc = await nats.connect(nats_url)
    dec = msgspec.msgpack.Decoder(SourceStatus)
    seen: list[SourceStatus] = []

    async def cb(msg) -> None:  # type: ignore[no-untyped-def]
        seen.append(dec.decode(msg.data))

    await nc.subscribe(Subjects().status("scripted"), cb=cb)
    await sync_subscriptions(nc)
    src, _ = await running(status_interval=0.5)
    assert src.ctx is not None
    src.ctx.status("halted", symbol="000001.SZ", reason="suspended")
    src.ctx.status("halted", symbol="000001.SZ", reason="suspended")  # unchanged: not re-sent at once
    src.ctx.status("down", reason="upstream unreachable", unsupported=["trade"])
    await wait_for(lambda: any(s.state == "down" for s in seen))
    assert (seen[0].state, seen[0].symbol) == ("live", None), "a started source says so at once"
    changes = seen[1:]
    assert [(s.state, s.symbol) for s in changes[:2]] == [("halted", "000001.SZ"), ("down", None)]
    assert changes[1].unsupported == ["trade"] and changes[1].reason == "upstream unreachable"
    seen.clear()
    await asyncio.sleep(1.2)  # the heartbeat repeats the overall state and the exceptions
    assert {(s.state, s.symbol) for s in seen} >= {("down", None), ("halted", "000001.SZ")}
    await nc.close()


async def test_survives_a_nats_restart(running, own_nats) -> None:
    src, runner = await running(url=own_nats.url)
    await asyncio.get_running_loop().run_in_executor(None, own_nats.restart, 0.5)
    nc = await nats.connect(own_nats.url)
    got: list[Event] = []

    async def cb(msg) -> None:  # type: ignore[no-untyped-def]
        got.append(decode_event(msg.data))

    await nc.subscribe("quote.AFTER.SZ", cb=cb)
    await sync_subscriptions(nc)
    await wait_for(lambda: runner.nc is not None and runner.nc.is_connected, 10)
    for i in range(3):
        await src.queue.put([q("AFTER.SZ", i)])
    await wait_for(lambda: len(got) == 3, 5)
    assert [e.seq for e in got] == [1, 2, 3]
    await nc.close()


async def test_control_plane_work_is_traced(running, nats_url: str) -> None:
    from argus_service.config import TracingConfig
    from argus_service.tracing import setup_tracing
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    spans = InMemorySpanExporter()
    tracing = setup_tracing("ingestor-test", TracingConfig(), processor=SimpleSpanProcessor(spans))
    src, _ = await running(tracer=tracing.tracer)
    nc = await nats.connect(nats_url)
    await nc.publish(
        Subjects().demand("gwT"),
        encode_msgpack(DemandAnnouncement(gateway="gwT", seq=1, ttl=30, streams=["quote:TRACE.SZ"])),
    )
    await nc.flush()
    await wait_for(lambda: any(Stream("quote", "TRACE.SZ") in w.streams for w in src.wants))
    assert src.ctx is not None
    src.ctx.status("stale", reason="quiet upstream")
    await wait_for(lambda: any(sp.name == "ingestor.status" for sp in spans.get_finished_spans()))
    by_name = {sp.name: sp for sp in spans.get_finished_spans()}
    assert by_name["ingestor.source.start"].attributes["source"] == "scripted"
    changes = [sp for sp in spans.get_finished_spans() if sp.name == "ingestor.demand.change"]
    assert any(sp.attributes["streams"] >= 1 and sp.attributes["gateways"] >= 1 for sp in changes)
    assert by_name["ingestor.status"].attributes["state"] == "stale"
    assert by_name["ingestor.source.start"].resource.attributes["service.name"] == "argus-ingestor-test"
    tracing.shutdown()
    await nc.close()
