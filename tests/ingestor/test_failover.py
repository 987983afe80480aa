"""Standby take-over and source failover between runners on a real nats-server with JetStream.

Each runner drives a source that makes a quote of 000001.SZ every 20 ms; a plain NATS subscriber
records what reaches `quote.000001.SZ` and which source published it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import AsyncIterator

import msgspec
import nats
import pytest
from argus_ingestor import Runner, Source, SourceContext, WantedSet
from argus_ingestor.failover import Failover
from argus_ingestor.lease import SourceLease, lease_key
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
)
from argus_service.config import Config, build_config
from natsserver import NatsServer, sync_subscriptions
from prometheus_client import CollectorRegistry

SYMBOL = "000001.SZ"


class TickingSource(Source):
    """Makes one quote of SYMBOL (and of AAPL.US) every 20 ms; the test can mark it down."""

    def __init__(self, name: str) -> None:
        super().__init__({})
        self.name = name
        self.ctx: SourceContext | None = None
        self.wants: list[WantedSet] = []
        self._stop = asyncio.Event()

    async def start(self, ctx: SourceContext) -> None:
        self.ctx = ctx

    async def stop(self) -> None:
        self._stop.set()

    def want(self, wanted: WantedSet) -> None:
        self.wants.append(wanted)

    async def events(self) -> AsyncIterator[list[Event]]:
        price = 10.0
        while not self._stop.is_set():
            price += 0.01
            quote = Quote(price=price, open=10, high=price, low=10, prev_close=10, volume=1, amount=1.0, timestamp="")
            yield [QuoteEvent(symbol=SYMBOL, quote=quote)]
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), 0.02)


class Feed:
    """What reached the quote subject and the status subjects, in order."""

    def __init__(self) -> None:
        self.quotes: list[tuple[int, str]] = []  # (seq, source)
        self.status: list[SourceStatus] = []

    def sources(self) -> list[str]:
        """The publishers in order, each run of one publisher once: ['a', 'b', 'a']."""
        runs: list[str] = []
        for _, source in self.quotes:
            if not runs or runs[-1] != source:
                runs.append(source)
        return runs

    def assert_one_sequence(self) -> None:
        seqs = [s for s, _ in self.quotes]
        assert all(b > a for a, b in itertools.pairwise(seqs)), f"seq went back or repeated: {seqs}"
        # Only where the publisher changes: a holder whose renewal is late past the lease's ttl
        # (1 s, on a loaded machine) withholds meanwhile and goes on with a GAP, as designed.
        switches = [(a, b) for a, b in itertools.pairwise(self.quotes) if a[1] != b[1]]
        jumps = [(a, b) for a, b in switches if b[0] - a[0] > 2]
        assert not jumps, f"a switch may use up one seq (a GAP), never more: {jumps}"


async def until(pred, timeout: float, what: str) -> float:  # type: ignore[no-untyped-def]
    t0 = time.monotonic()
    while not pred():
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"{what}: not within {timeout}s")
        await asyncio.sleep(0.02)
    return time.monotonic() - t0


def config(url: str, **failover: object) -> Config:
    tree = {"nats.url": url, "lease.ttl": 1.0, "lease.renew": 0.25, "datasource.status_interval": 1.0}
    tree.update({f"failover.{k}": v for k, v in failover.items()})
    return build_config(None, {}, tree)


@pytest.fixture
async def feed(own_nats: NatsServer) -> AsyncIterator[Feed]:
    nc = await nats.connect(own_nats.url)
    got = Feed()
    status_dec = msgspec.msgpack.Decoder(SourceStatus)

    async def on_quote(msg) -> None:  # type: ignore[no-untyped-def]
        ev = decode_event(msg.data)
        got.quotes.append((ev.seq, ev.source))

    async def on_status(msg) -> None:  # type: ignore[no-untyped-def]
        got.status.append(status_dec.decode(msg.data))

    await nc.subscribe(f"quote.{SYMBOL}", cb=on_quote)
    await nc.subscribe("argus.status.*", cb=on_status)
    await sync_subscriptions(nc)
    yield got
    await nc.close()


@pytest.fixture
async def runners(own_nats: NatsServer) -> AsyncIterator:  # type: ignore[type-arg]
    made: list[tuple[asyncio.Event, asyncio.Task[None]]] = []

    async def start(name: str, cfg: Config, *, lease_name: str | None = None) -> tuple[TickingSource, Runner]:
        src = TickingSource(name)
        registry = CollectorRegistry()
        lease = SourceLease(lease_key(lease_name or name), cfg.lease, registry=registry, source=name)
        holder: list[Runner] = []
        failover = (
            Failover(
                cfg.failover, cfg.lease, name, may_hold=lambda: lease.held, state=lambda: holder[0].board.overall.state
            )
            if cfg.failover.markets
            else None
        )
        runner = Runner(src, cfg, registry, lease=lease, failover=failover)
        holder.append(runner)
        stop = asyncio.Event()
        task = asyncio.create_task(runner.run(stop))
        made.append((stop, task))
        await until(lambda: runner.ready()[0], 10, f"runner {name} ready")
        return src, runner

    yield start
    for stop, _ in made:
        stop.set()
    for _, task in made:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 10)


async def test_failover_to_the_next_source_and_back_continues_one_sequence(runners, feed: Feed, own_nats) -> None:
    cfg = config(own_nats.url, markets={"SZ,SH": ["a", "b"]}, recover_after=1.0)
    a, _ = await runners("a", cfg)
    await until(lambda: len(feed.quotes) >= 10, 5, "a publishes")
    await runners("b", cfg)
    await asyncio.sleep(1.5)  # b is healthy and standing by: it must not publish
    assert feed.sources() == ["a"], feed.sources()

    assert a.ctx is not None
    a.ctx.status("down", reason="upstream lost")
    took = await until(lambda: feed.sources()[-1:] == ["b"], 5, "b takes SZ,SH over")
    await until(lambda: len(feed.quotes) >= 10 + 30, 5, "b publishes")
    switch = next(s for s in feed.status if s.source == "b" and "took over from a" in (s.reason or ""))
    assert "unhealthy" in (switch.reason or "") and "SH,SZ" in (switch.reason or "")

    a.ctx.status("live")
    back = await until(lambda: feed.sources()[-1:] == ["a"], 8, "a takes SZ,SH back")
    assert back >= 1.0, "a waits recover_after before taking the markets back"
    n = len(feed.quotes)
    await until(lambda: len(feed.quotes) >= n + 20, 5, "a publishes again")
    assert feed.sources() == ["a", "b", "a"], "never interleaved: one publisher at a time"
    feed.assert_one_sequence()
    assert any(s.source == "b" and "standby for SH,SZ: a publishes it" in (s.reason or "") for s in feed.status)
    print(f"failover a->b {took:.2f}s after down; b->a {back:.2f}s after a was live again")


async def test_a_source_left_off_a_groups_list_never_publishes_it_nor_fetches_it(runners, feed, own_nats) -> None:
    cfg = config(own_nats.url, markets={"SZ": ["a"]})
    c, _ = await runners("c", cfg)
    nc = await nats.connect(own_nats.url)
    ask = DemandAnnouncement(gateway="g", seq=1, ttl=30.0, streams=[f"quote:{SYMBOL}", "quote:AAPL.US"])
    await nc.publish(Subjects().demand("g"), encode_msgpack(ask))
    await nc.flush()
    await until(lambda: any(w.streams for w in c.wants), 3, "c follows the demand")
    await asyncio.sleep(0.5)
    assert feed.quotes == [], "c is not on SZ's list: it never publishes SZ"
    assert c.wants[-1].streams == {Stream("quote", "AAPL.US")}, "nor asks its upstream for it"
    await nc.close()


async def test_the_best_ranked_source_takes_an_absent_lease_first(runners, feed, own_nats) -> None:
    cfg = config(own_nats.url, markets={"SZ": ["a", "b"]}, recover_after=30.0)
    await asyncio.gather(runners("b", cfg), runners("a", cfg))
    await until(lambda: len(feed.quotes) >= 20, 5, "someone publishes")
    assert feed.sources() == ["a"], "b waits its rank's turn, a is first on the list"


async def test_a_standby_replica_takes_over_from_a_frozen_leader_and_continues_seq(runners, feed, own_nats) -> None:
    cfg = config(own_nats.url)
    _, leader = await runners("mock", cfg)
    await until(lambda: len(feed.quotes) >= 10, 5, "the leader publishes")
    _, standby = await runners("mock", cfg)
    assert standby.lease is not None and standby.lease.state == "standby"
    assert leader.lease is not None and leader.lease._task is not None
    leader.lease._task.cancel()  # frozen: no more renewals; it stops publishing when its lease runs out
    t0 = time.monotonic()
    n = len(feed.quotes)
    await until(lambda: standby.lease is not None and standby.lease.held, 5, "the standby takes the lease")
    await until(lambda: len(feed.quotes) >= n + 20, 5, "quotes go on")
    print(f"standby take-over: publishing {time.monotonic() - t0:.2f}s after the leader's last renewal")
    feed.assert_one_sequence()
    await until(lambda: any("took over from" in (s.reason or "") for s in feed.status), 3, "a STATUS of the take-over")
