"""The SDK against a real gateway and NATS while the mock market publishes fast: links cut, a
gateway drained, a socket gone silent. The application must get every trade seq exactly once,
every bar and 分时 minute, and nothing twice; resume after each reconnect recovers the rest."""

from __future__ import annotations

import asyncio
import signal
import time

import nats
from argus_client import ArgusClient, Backoff, Gap, Replayed, Status
from collector import Collector
from feedcheck import Published, problems
from wsclient import Client as WsClient

SYMBOLS = ["000001.SZ", "600000.SH"]
TYPES = ["quote", "trade", "tick", "kline"]
CHECKED = [f"{t}:{s}" for s in SYMBOLS for t in ("trade", "tick")] + [f"kline:{s}:1m" for s in SYMBOLS]


async def settle(col: Collector, published: Published) -> dict[str, int]:
    """Take each stream's newest published seq now, and wait until the application has it."""
    upto = {key: published.newest(key) for key in CHECKED}
    await col.until(lambda: all(col.last_seq(k) >= n for k, n in upto.items()), 15, f"caught up to {upto}")
    return upto


async def drain(ws: WsClient) -> None:
    async for _ in ws.ws:
        pass


def assert_complete(col: Collector, published: Published, upto: dict[str, int]) -> None:
    found = [p for key in CHECKED for p in problems(col.events, published, key, upto[key])]
    assert not found, "\n".join(found)
    # retention holds far more than a reconnect misses: resume recovers everything, no GAP at all
    assert not [g for g in col.of(Gap) if g.key in CHECKED]


async def test_links_cut_twice_while_publishing_fast_lose_nothing(own_nats, market, gw, proxy_to) -> None:
    market(rate=20)
    port = gw()
    proxy = await proxy_to(port)
    nc = await nats.connect(own_nats.url)
    published = Published()
    await published.start(nc)
    # another user of the gateway keeps the streams wanted, so the market goes on while we are away
    bystander = await WsClient.connect(port)
    await bystander.subscribe(SYMBOLS, TYPES, periods=["1m"])
    reading = asyncio.create_task(drain(bystander))  # it reads (and answers pings), or the gateway drops it
    # away at least 0.3 s each time: the market moves on meanwhile (20 updates/s per symbol)
    client = ArgusClient(proxy.url, backoff=Backoff(initial=0.5, maximum=1.0, floor=0.3))
    async with client:
        col = Collector(client)
        await client.subscribe(SYMBOLS, TYPES, ["1m"])
        await col.until(lambda: all(col.last_seq(k) > 0 for k in CHECKED), 10, "every stream flowing")
        for _ in range(2):
            await asyncio.sleep(1.5)
            assert proxy.cut() == 1
            n = len(col.connects)
            await col.until(lambda n=n: len(col.connects) > n, 10, "reconnected")
        await asyncio.sleep(1.0)
        upto = await settle(col, published)
    await nc.close()
    reading.cancel()
    await bystander.close()
    assert_complete(col, published, upto)
    assert [c.attempt for c in col.connects] == [1, 2, 3]
    assert len(col.disconnects) == 2
    # each reconnect resumed every checked stream from its last seq, and retention had it all
    for c in col.connects[1:]:
        assert set(CHECKED) <= set(c.resumed)
    replays = [r for r in col.of(Replayed) if any(k in r.streams for k in CHECKED)]
    assert replays and all(s.recovered for r in replays for k, s in r.streams.items() if k in CHECKED)
    assert sum(r.streams[k].count for r in replays for k in r.streams if k.startswith("trade:")) > 0


async def test_gateway_drain_moves_the_client_to_the_other_gateway_without_loss(
    own_nats, market, gw, gateway_on
) -> None:
    market(rate=20)
    draining = gateway_on
    draining.start()
    other = gw()
    nc = await nats.connect(own_nats.url)
    published = Published()
    await published.start(nc)
    bystander = await WsClient.connect(other)  # keeps the market going while the client moves
    await bystander.subscribe(SYMBOLS, TYPES, periods=["1m"])
    reading = asyncio.create_task(drain(bystander))
    client = ArgusClient([draining.url, f"ws://127.0.0.1:{other}/"])
    async with client:
        col = Collector(client)
        await client.subscribe(SYMBOLS, TYPES, ["1m"])
        await col.until(lambda: all(col.last_seq(k) > 0 for k in CHECKED), 10, "every stream flowing")
        await asyncio.sleep(1.0)
        assert draining.proc is not None
        draining.proc.proc.send_signal(signal.SIGTERM)
        await col.until(lambda: len(col.connects) == 2, 15, "reconnected after the drain")
        await asyncio.sleep(1.0)
        upto = await settle(col, published)
    await nc.close()
    reading.cancel()
    await bystander.close()
    assert_complete(col, published, upto)
    moved = col.connects[1].resumed
    replayed = [r for r in col.of(Replayed) if r.id and any(k in moved for k in r.streams)]
    assert sum(s.count for r in replayed for k, s in r.streams.items() if k.startswith("trade:")) > 0
    status = next(s for s in col.of(Status) if s.source == "gateway")
    assert status.state == "draining" and status.reconnect_after_ms == 1000
    gone = col.disconnects[0]
    assert gone.reason == "draining" and gone.retry_in is not None and 1.0 <= gone.retry_in <= 2.0
    # the client left on the STATUS (the gateway did not have to close it with 1012) and waited
    i_status = next(i for i, e in enumerate(col.events) if e is status)
    i_back = col.events.index(col.connects[1])
    assert col.stamps[i_back] - col.stamps[i_status] >= 1.0
    assert col.connects[1].url.endswith(f":{other}/")
    assert draining.proc.proc.wait(10) == 0


async def test_a_silent_socket_is_detected_from_missing_heartbeats(own_nats, market, gw, proxy_to) -> None:
    market(rate=10)
    port = gw()
    proxy = await proxy_to(port)
    nc = await nats.connect(own_nats.url)
    published = Published()
    await published.start(nc)
    client = ArgusClient(proxy.url, backoff=Backoff(initial=0.2, maximum=1.0))
    async with client:
        col = Collector(client)
        await client.subscribe(SYMBOLS, TYPES, ["1m"])
        await col.until(lambda: all(col.last_seq(k) > 0 for k in CHECKED), 10, "every stream flowing")
        assert client.welcome is not None and client.welcome.heartbeat_interval == 1
        frozen_at = time.monotonic()
        assert proxy.freeze() == 1  # the link stays open; nothing moves on it any more
        await col.until(lambda: len(col.connects) == 2, 20, "reconnected after the silence")
        noticed = col.stamps[col.events.index(col.disconnects[0])] - frozen_at
        await asyncio.sleep(0.5)
        upto = await settle(col, published)
    await nc.close()
    assert col.disconnects[0].reason == "silent"
    assert 2.0 <= noticed <= 10.0, "about 2.5 heartbeat intervals + 1 s, not the TCP timeout"
    assert_complete(col, published, upto)
