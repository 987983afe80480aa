"""Protocol details through the SDK against a real gateway: a stream renumbered (GAP reset) is
followed to its lower seqs, msgpack/batch/conflate_ms pass through, tokens are sent and a refused
one stops the client, rejected items are not asked for again on every reconnect."""

from __future__ import annotations

import asyncio

import nats
import pytest
from argus_client import (
    ArgusClient,
    AuthenticationError,
    Backoff,
    Disconnected,
    Error,
    Gap,
    QuoteEvent,
    TradeEvent,
)
from collector import Collector
from eventfactory import subject, trade, unique_symbol
from feedcheck import Published, problems
from natsserver import sync_subscriptions


async def test_a_renumbered_stream_is_followed_to_its_lower_seqs_and_resumed(own_nats, gw, proxy_to) -> None:
    port = gw()
    proxy = await proxy_to(port)
    nc = await nats.connect(own_nats.url)
    sym = unique_symbol()
    key = f"trade:{sym}"
    client = ArgusClient(proxy.url, backoff=Backoff(initial=0.1, maximum=0.5))
    async with client:
        col = Collector(client)
        await client.subscribe([sym], ["trade"], snapshot=False)
        await sync_subscriptions(nc)
        await asyncio.sleep(0.2)
        for seq in range(1, 11):
            await nc.publish(subject("trade", sym), trade(sym, seq))
        await col.until(lambda: col.last_seq(key) == 10, 10, "first numbering")
        # retention lost (docs/protocol.md §7): the ingestor begins the stream at 1 again
        await nc.jetstream().purge_stream("ARGUS_TRADE", subject=subject("trade", sym))
        for seq in range(1, 6):
            await nc.publish(subject("trade", sym), trade(sym, seq))
        await col.until(lambda: col.last_seq(key) == 5, 10, "the new numbering, lower seqs accepted")
        proxy.cut()
        for seq in range(6, 9):  # published while the client is away
            await nc.publish(subject("trade", sym), trade(sym, seq))
        await nc.flush()
        await col.until(lambda: col.last_seq(key) == 8, 10, "resumed after 5")
    await nc.close()
    stream = [e for e in col.events if isinstance(e, (TradeEvent, Gap)) and e.key == key]
    shape = [("gap", e.reason, e.from_seq, e.to_seq) if isinstance(e, Gap) else e.seq for e in stream]
    assert shape == [*range(1, 11), ("gap", "reset", 1, 0), *range(1, 9)]
    assert [e.replay for e in stream[-3:]] == [True, True, True]
    assert col.connects[1].resumed == {key: 5}


async def test_msgpack_batch_and_conflation_pass_through(own_nats, market, gw) -> None:
    market(rate=20)
    port = gw()
    nc = await nats.connect(own_nats.url)
    published = Published()
    await published.start(nc)
    client = ArgusClient(f"ws://127.0.0.1:{port}/", encoding="msgpack", batch=True, conflate_ms=500)
    syms = ["000001.SZ", "600000.SH"]
    async with client:
        col = Collector(client)
        await client.subscribe(syms, ["quote", "trade"])
        assert client.welcome is not None
        assert client.welcome.encoding == "msgpack"
        assert client.welcome.options["batch"] is True and client.welcome.options["conflate_ms"] == 500
        await asyncio.sleep(3.0)
        upto = {f"trade:{s}": published.newest(f"trade:{s}") for s in syms}
        await col.until(lambda: all(col.last_seq(k) >= n for k, n in upto.items()), 10, "trades caught up")
    await nc.close()
    for s in syms:
        quotes = [e for e in col.events if isinstance(e, QuoteEvent) and e.symbol == s]
        assert 2 <= len(quotes) <= 3.0 / 0.5 + 3, "at most one quote per stream per 500 ms"
    found = [p for k, n in upto.items() for p in problems(col.events, published, k, n)]
    assert not found and not col.of(Gap), "trades are never conflated"


async def test_a_token_is_sent_and_a_refused_one_stops_the_client(own_nats, gateway) -> None:
    env = {"ARGUS_CONFIG": "", "ENABLE_AUTH": "true", "ARGUS_API_KEYS": "k-good"}
    port, _ = gateway(url=own_nats.url, env=env)
    url = f"ws://127.0.0.1:{port}/"
    async with ArgusClient(url, token="k-good") as good:
        reply = await good.subscribe(["000001.SZ"], timeout=10)
        assert reply is not None and reply.added == ["quote:000001.SZ"]
    bad = ArgusClient(url, token="k-bad", backoff=Backoff(initial=0.1))
    async with bad:
        with pytest.raises(AuthenticationError):
            await bad.wait_connected(10)
        seen = []
        with pytest.raises(AuthenticationError):
            async for event in bad:
                seen.append(event)
        gone = [e for e in seen if isinstance(e, Disconnected)]
        assert [(d.reason, d.retry_in) for d in gone] == [("unauthorized", None)], "no reconnect loop"
        assert any(isinstance(e, Error) and e.code == "UNAUTHORIZED" for e in seen)
    none = ArgusClient(url)
    async with none:
        with pytest.raises(AuthenticationError, match="requires a token"):
            await none.wait_connected(10)
    # a token callable is asked again on every connect, so a refreshed token gets in
    tokens = iter(["k-bad", "k-good"])
    refreshed = ArgusClient(url, token=lambda: next(tokens), backoff=Backoff(initial=0.1, maximum=0.2))
    async with refreshed:
        col = Collector(refreshed)
        await refreshed.wait_connected(10)
        await col.until(lambda: len(col.connects) == 1, 5, "connected with the second token")
    assert [d.reason for d in col.disconnects] == ["unauthorized"]


async def test_rejected_items_are_not_asked_for_again_after_a_reconnect(own_nats, gw, proxy_to) -> None:
    port = gw()
    proxy = await proxy_to(port)
    client = ArgusClient(proxy.url, backoff=Backoff(initial=0.1, maximum=0.5))
    async with client:
        col = Collector(client)
        reply = await client.subscribe(["BAD", "000001.SZ"], ["quote", "nonsense"])
        assert reply is not None and {r.code for r in reply.rejected} == {"INVALID_SYMBOL", "UNSUPPORTED_DATA_TYPE"}
        assert client.wanted == ["quote:000001.SZ"]
        await col.until(lambda: len(col.of(Error)) == 2, 5, "one ERROR per rejection code")
        proxy.cut()
        await col.until(lambda: len(col.connects) == 2 and client.connected, 10, "reconnected")
        held = await client.subscriptions()
        assert held.streams == ["quote:000001.SZ"]
        await asyncio.sleep(0.3)
        assert len(col.of(Error)) == 2
        assert await client.unsubscribe("000001.SZ") == ["quote:000001.SZ"]
        assert client.wanted == [] and (await client.subscriptions()).streams == []
