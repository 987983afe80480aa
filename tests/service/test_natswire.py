"""subscribe_now / unsubscribe_now: nats-py subscriptions without a flusher round each, pinned
against the nats-py in use (they reach into its internals)."""

from __future__ import annotations

import asyncio
import contextlib

import nats
import pytest
from argus_service.natswire import subscribe_now, unsubscribe_now
from natsserver import sync_subscriptions


async def test_thousands_of_subscriptions_deliver_stop_and_survive_a_reconnect(own_nats) -> None:
    sub_side = await nats.connect(own_nats.url, reconnect_time_wait=0.2, max_reconnect_attempts=-1)
    pub_side = await nats.connect(own_nats.url, reconnect_time_wait=0.2, max_reconnect_attempts=-1)
    got: dict[str, list[bytes]] = {}

    def collect(subject: str):  # type: ignore[no-untyped-def]
        def deliver(msg) -> None:  # type: ignore[no-untyped-def]
            got.setdefault(subject, []).append(msg.data)
            if msg.data == b"boom":
                raise RuntimeError("a delivery bug")  # logged; the reader and the others go on

        return deliver

    subjects = [f"quote.S{i:05d}.SZ" for i in range(3000)]
    subs = {s: subscribe_now(sub_side, s, collect(s)) for s in subjects}
    # a request published right after the SUBs reaches the server after them: a reply must arrive
    await sync_subscriptions(sub_side)
    await sync_subscriptions(pub_side)
    for s in subjects:
        await pub_side.publish(s, b"one")
    await pub_side.flush()
    for _ in range(100):
        if len(got) == len(subjects):
            break
        await asyncio.sleep(0.05)
    assert len(got) == len(subjects) and all(v == [b"one"] for v in got.values())
    await pub_side.publish(subjects[-1], b"boom")
    await pub_side.flush()
    await asyncio.sleep(0.2)
    assert got[subjects[-1]][-1] == b"boom" and sub_side.is_connected
    got[subjects[-1]].pop()
    for s in subjects[:1500]:
        unsubscribe_now(subs[s])
    await sync_subscriptions(sub_side)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, own_nats.restart, 0.3)
    for _ in range(100):  # both clients reconnect; nats-py sends the held SUBs again
        if sub_side.is_connected and pub_side.is_connected:
            break
        await asyncio.sleep(0.05)
    await sync_subscriptions(sub_side)
    for s in subjects:
        await pub_side.publish(s, b"two")
    await pub_side.flush()
    await asyncio.sleep(0.5)
    assert all(got[s] == [b"one"] for s in subjects[:1500]), "an unsubscribed subject got more"
    assert all(got[s] == [b"one", b"two"] for s in subjects[1500:]), "a held subject was lost in the reconnect"
    await sub_side.close()
    await pub_side.close()


async def test_a_batch_is_published_as_one_buffer_in_order_and_refused_whole_when_it_cannot_be(own_nats) -> None:
    from argus_service.natswire import BufferFull, publish_batch

    sub_side = await nats.connect(own_nats.url)
    pub_side = await nats.connect(own_nats.url, pending_size=4096, max_reconnect_attempts=-1, reconnect_time_wait=0.2)
    got: list[tuple[str, bytes]] = []

    async def cb(msg) -> None:  # type: ignore[no-untyped-def]
        got.append((msg.subject, msg.data))

    await sub_side.subscribe("trade.>", cb=cb)
    await sync_subscriptions(sub_side)
    batch = [(f"trade.S{i % 7:05d}.SZ", f"{i}".encode()) for i in range(1000)]
    publish_batch(pub_side, batch)
    await pub_side.flush()
    for _ in range(100):
        if len(got) == len(batch):
            break
        await asyncio.sleep(0.02)
    assert got == batch, "every message, in publish order"
    with pytest.raises(ValueError):
        publish_batch(pub_side, [("trade.X.SZ", b"x" * (pub_side.max_payload + 1))])
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, own_nats.stop)
    for _ in range(100):
        if not pub_side.is_connected:
            break
        await asyncio.sleep(0.02)
    publish_batch(pub_side, [("trade.Y.SZ", b"small")])  # fits the reconnect buffer
    with pytest.raises(BufferFull):
        publish_batch(pub_side, [("trade.Y.SZ", b"z" * 1000)] * 10)
    for client in (pub_side, sub_side):
        with contextlib.suppress(Exception):  # closing flushes towards a server that is gone
            await client.close()
