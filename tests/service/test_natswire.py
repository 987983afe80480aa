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


async def test_the_fast_reader_keeps_every_message_whole_and_in_order_beside_nats_pys_own(own_nats) -> None:
    """Payloads from 0 B to 300 KB (control lines and payloads split across reads), messages with a
    reply subject or headers, and a subscription of nats-py's own on the same connection: each
    subscription gets every message, whole, in publish order, and request/reply still works."""
    sub_side = await nats.connect(own_nats.url)
    pub_side = await nats.connect(own_nats.url)
    fast: list[tuple[str, bytes]] = []
    slow: list[tuple[str, bytes]] = []
    subscribe_now(sub_side, "fast.*", lambda msg: fast.append((msg.subject, msg.data)))

    async def on_slow(msg) -> None:  # type: ignore[no-untyped-def]
        slow.append((msg.subject, msg.data))

    async def on_ask(msg) -> None:  # type: ignore[no-untyped-def]
        await msg.respond(b"answer:" + msg.data)

    await sub_side.subscribe("slow.*", cb=on_slow)
    await sub_side.subscribe("ask", cb=on_ask)
    await sync_subscriptions(sub_side)
    await sync_subscriptions(pub_side)
    sizes = [0, 1, 7, 100, 1000, 4095, 4096, 65535, 65536, 300_000]
    sent_fast: list[tuple[str, bytes]] = []
    sent_slow: list[tuple[str, bytes]] = []
    for i in range(400):
        body = bytes([i % 251]) * sizes[i % len(sizes)] + str(i).encode()
        if i % 3 == 2:
            await pub_side.publish(f"slow.s{i % 5}", body)
            sent_slow.append((f"slow.s{i % 5}", body))
        elif i % 7 == 3:
            await pub_side.publish(f"fast.r{i % 5}", body, reply="somewhere")  # not the fast path's shape
            sent_fast.append((f"fast.r{i % 5}", body))
        elif i % 11 == 4:
            await pub_side.publish(f"fast.h{i % 5}", body, headers={"X-Argus": "1"})  # HMSG
            sent_fast.append((f"fast.h{i % 5}", body))
        else:
            await pub_side.publish(f"fast.f{i % 5}", body)
            sent_fast.append((f"fast.f{i % 5}", body))
    await pub_side.flush()
    reply = await pub_side.request("ask", b"q", timeout=2)
    for _ in range(200):
        if len(fast) == len(sent_fast) and len(slow) == len(sent_slow):
            break
        await asyncio.sleep(0.02)
    assert fast == sent_fast, "the fast path lost, split or reordered a message"
    assert slow == sent_slow, "nats-py's own subscription lost or reordered a message"
    assert reply.data == b"answer:q"
    assert sub_side.stats["in_msgs"] >= len(sent_fast) + len(sent_slow) + 1
    await sub_side.close()
    await pub_side.close()
