"""Demand that cannot be wiped (issue 10, row 1): announcements split below NATS's max_payload, a failed
publish keeps the last good set alive, and a gateway-wide cap on distinct streams."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import msgspec
import nats
import pytest
from argus_gateway.announce import DemandAnnouncer, split_streams
from argus_gateway.metrics import GatewayMetrics
from argus_ingestor.demand import DemandTable
from argus_protocol import DemandAnnouncement, Subjects
from eventfactory import unique_symbol
from nats.aio.client import Client as NATS
from natsserver import NatsServer, nats_binary, sync_subscriptions
from probes import metric
from prometheus_client import CollectorRegistry
from wsclient import Client

MAX_PAYLOAD = 16384


@pytest.fixture
def small_nats() -> Iterator[NatsServer]:
    """A nats-server whose max_payload is 16 KiB, so a few hundred streams pass it (1 MiB: 25,000)."""
    binary = nats_binary()
    if binary is None:
        pytest.skip("needs the nats-server binary")
    server = NatsServer(binary, conf=f"max_payload: {MAX_PAYLOAD}\n")
    server.start()
    yield server
    server.cleanup()


def long_codes(n: int, tag: str) -> list[str]:
    # INE contracts are spelled in lower case; 32-character codes make the longest stream keys
    return [f"{tag}{i:0{32 - len(tag)}d}.INE" for i in range(n)]


async def test_demand_past_max_payload_is_split_and_a_normal_client_keeps_its_data(
    small_nats: NatsServer, gateway: Any, ingestor: Any
) -> None:
    config = {"nats": {"demand_refresh": 1.0, "demand_ttl": 3.0}}
    imetrics = ingestor("mock", "--rate", "2", url=small_nats.url, env={"MOCK_HISTORY": "0", "MOCK_UNIVERSE": "0"})
    port, mport = gateway(url=small_nats.url, config=config)
    normal = await Client.connect(port)
    sym = unique_symbol("N")
    await normal.subscribe([sym], ["quote"], snapshot=False)
    await normal.data(1, timeout=15, symbol=sym)
    attackers = [await Client.connect(port) for _ in range(4)]
    for i, a in enumerate(attackers):
        ack = await a.subscribe(long_codes(200, f"x{i}"), ["quote"], snapshot=False)
        assert len(ack["data"]["added"]) == 200
    # 801 keys of ~46 bytes: about 37 KB, more than twice the server's limit
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 15
    while await metric(imetrics, "ingestor_wanted_streams") < 801:
        assert loop.time() < deadline, "the ingestor never saw the whole demand"
        await asyncio.sleep(0.2)
    assert await metric(mport, "gateway_demand_announce_parts") >= 3
    # for more than two ttls the normal client's stream keeps flowing: no announcement was lost
    normal.seen.clear()
    last = loop.time()
    until = last + 7.0
    while loop.time() < until:
        await normal.data(1, timeout=2.5, symbol=sym)  # the mock sends it twice a second
        last = loop.time()
    assert await metric(imetrics, "ingestor_wanted_streams") >= 801
    assert await metric(mport, "gateway_demand_announce_errors_total") == 0
    for c in [normal, *attackers]:
        await c.close()


class FlakyNats(NATS):
    """A real NATS client whose publishes of announcements naming `broken` fail, as a too-large one did."""

    broken = "never"

    async def publish(self, subject: str, payload: bytes = b"", *args: Any, **kw: Any) -> None:
        if self.broken.encode() in payload:
            raise nats.errors.MaxPayloadError
        await super().publish(subject, payload, *args, **kw)


async def test_a_failed_publish_keeps_the_last_good_set_alive(nats_url: str) -> None:
    flaky = FlakyNats()
    await flaky.connect(nats_url)
    listener = await nats.connect(nats_url)
    subjects = Subjects(f"flaky{id(flaky) % 100000}")
    table = DemandTable()

    async def on_announcement(msg: Any) -> None:
        table.apply(msg.data)

    await listener.subscribe(subjects.demand_all(), cb=on_announcement)
    registry = CollectorRegistry()
    metrics = GatewayMetrics(registry)
    wanted = ["quote:000001.SZ", "quote:600000.SH"]
    ann = DemandAnnouncer(flaky, subjects, "gw-flaky", refresh=0.5, ttl=1.5, streams=lambda: wanted, metrics=metrics)
    await sync_subscriptions(listener)
    try:
        await ann.start()
        for _ in range(20):
            if table.union():
                break
            await asyncio.sleep(0.05)
        assert {s.key for s in table.union()} == set(wanted)
        wanted = [*wanted, "quote:BROKEN1.SZ"]
        flaky.broken = "BROKEN1"
        for _ in range(8):  # 4 s: well past the ttl, refreshed every 0.5 s
            await asyncio.sleep(0.5)
            table.expire()
            assert {s.key for s in table.union()} == {"quote:000001.SZ", "quote:600000.SH"}
        assert metrics.demand_errors._value.get() >= 4
        flaky.broken = "never"  # the publish works again: the new set replaces the old
        await asyncio.sleep(0.8)
        assert {s.key for s in table.union()} == set(wanted)
    finally:
        await ann.withdraw()
        await flaky.close()
        await listener.close()


def test_split_keeps_every_key_once_in_order_and_each_part_within_budget() -> None:
    keys = [f"kline:{c}.SZ:1m" for c in long_codes(3000, "k")]
    parts = split_streams(keys, 10_000)
    assert [k for p in parts for k in p] == keys
    for p in parts:
        ann = DemandAnnouncement(gateway="g" * 64, seq=2**40, ttl=15.0, streams=p, part=len(parts), parts=len(parts))
        assert len(msgspec.msgpack.encode(ann)) <= 10_000 + 1024
    assert split_streams([], 10_000) == [[]]


async def test_the_ingestor_takes_a_split_set_only_when_every_part_arrived() -> None:
    table = DemandTable()

    def part(seq: int, i: int, n: int, keys: list[str]) -> bytes:
        return msgspec.msgpack.encode(DemandAnnouncement(gateway="g", seq=seq, ttl=10, streams=keys, part=i, parts=n))

    assert table.apply(part(1, 0, 1, ["quote:000001.SZ"]))
    assert not table.apply(part(2, 0, 2, ["quote:000002.SZ"]))  # half a set changes nothing
    assert {s.key for s in table.union()} == {"quote:000001.SZ"}
    assert table.apply(part(2, 1, 2, ["quote:000003.SZ"]))
    assert {s.key for s in table.union()} == {"quote:000002.SZ", "quote:000003.SZ"}
    assert not table.apply(part(3, 1, 2, ["quote:000009.SZ"]))
    assert not table.apply(part(2, 0, 2, ["quote:000008.SZ"]))  # a late part of an older set is ignored
    assert {s.key for s in table.union()} == {"quote:000002.SZ", "quote:000003.SZ"}
    assert not table.apply(part(4, 9, 2, ["quote:000001.SZ"]))  # a part out of range is malformed


async def test_a_gateway_holds_at_most_max_gateway_streams(gateway: Any) -> None:
    port, _ = gateway(config={"server": {"max_gateway_streams": 50}})
    a, b = await Client.connect(port), await Client.connect(port)
    syms = [unique_symbol("G") for _ in range(60)]
    ack = await a.subscribe(syms, ["quote"], snapshot=False)
    assert len(ack["data"]["added"]) == 50 and ack["data"]["rejected_count"] == 10
    assert {r["code"] for r in ack["data"]["rejected"]} == {"TOO_MANY_SUBSCRIPTIONS"}
    assert "50 distinct streams" in ack["data"]["rejected"][0]["message"]
    # a stream the gateway already holds costs nothing more; a new one is refused
    ack = await b.subscribe([syms[0], unique_symbol("G")], ["quote"], snapshot=False)
    assert ack["data"]["added"] == [f"quote:{syms[0]}"] and ack["data"]["rejected_count"] == 1
    await a.close()
    await b.close()
