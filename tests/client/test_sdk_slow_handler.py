"""A handler slower than the feed: the socket reader keeps up, so the gateway never sees a slow
consumer; the client's queue stays bounded by conflating quotes and bar versions and reporting
dropped trades as GAP reason=client_overflow, with the exact seqs."""

from __future__ import annotations

import asyncio
import itertools
import time
import urllib.request

import nats
from argus_client import ArgusClient, Gap, QuoteEvent
from collector import last_seq
from feedcheck import Published, problems

SYMBOLS = ["000001.SZ", "600000.SH"]
TRADES = [f"trade:{s}" for s in SYMBOLS]


def metric(port: int, name: str) -> float:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(name))


async def test_a_slow_blocking_handler_never_gets_the_connection_closed(own_nats, market, gateway) -> None:
    market(rate=20)
    port, mport = gateway("--heartbeat-interval", "1", url=own_nats.url, env={"ARGUS_CONFIG": ""})
    nc = await nats.connect(own_nats.url)
    published = Published()
    await published.start(nc)
    client = ArgusClient(f"ws://127.0.0.1:{port}/", max_queue=40)
    handled: list[object] = []
    slow = [True]

    @client.on("*", blocking=True)
    def handler(event: object) -> None:
        handled.append(event)
        if slow[0]:
            time.sleep(0.02)  # ~50 events/s against a feed of several hundred

    async with client:
        runner = asyncio.create_task(client.run())
        await client.subscribe(SYMBOLS, ["quote", "trade", "tick", "kline"], ["1m"])
        await asyncio.sleep(5)
        assert len(client.inbox) <= 40 + 2 * 4 + 10, "bounded: capacity plus one waiting quote/bar per stream"
        slow[0] = False
        upto = {k: published.newest(k) for k in TRADES}
        deadline = time.monotonic() + 15
        while not all(last_seq(handled, k) >= n for k, n in upto.items()):
            assert time.monotonic() < deadline, "the handler never caught up"
            await asyncio.sleep(0.05)
        stats = client.stats()
        server_gaps = metric(mport, 'websocket_gaps_total{reason="slow_consumer"}')
        server_drops = metric(mport, "websocket_disconnects_total")
        runner.cancel()
    await nc.close()
    assert stats["connections"] == 1 and stats["dropped_for_overflow"] > 0 and stats["conflated"] > 0
    gaps = [e for e in handled if isinstance(e, Gap)]
    assert gaps and {g.reason for g in gaps} == {"client_overflow"}
    found = [p for k in TRADES for p in problems(handled, published, k, upto[k])]
    assert not found, "\n".join(found)
    # quotes were conflated, not lost: the newest came through and seqs only go forward
    for s in SYMBOLS:
        seqs = [e.seq for e in handled if isinstance(e, QuoteEvent) and e.symbol == s]
        assert seqs == sorted(set(seqs)) and len(seqs) >= 5
        assert max(b - a for a, b in itertools.pairwise(seqs)) > 1, "older quotes were replaced"
    # the gateway saw a fast reader: no slow-consumer GAP or close, the connection never dropped
    assert server_gaps == 0 and server_drops == 0
