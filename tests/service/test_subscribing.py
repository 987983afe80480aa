"""subscribe_now / unsubscribe_now: nats-py subscriptions without a flusher round each, pinned
against the nats-py in use (they reach into its internals)."""

from __future__ import annotations

import asyncio

import nats
from argus_service.subscribing import subscribe_now, unsubscribe_now
from natsserver import sync_subscriptions


async def test_thousands_of_subscriptions_deliver_stop_and_survive_a_reconnect(own_nats) -> None:
    sub_side = await nats.connect(own_nats.url, reconnect_time_wait=0.2, max_reconnect_attempts=-1)
    pub_side = await nats.connect(own_nats.url, reconnect_time_wait=0.2, max_reconnect_attempts=-1)
    got: dict[str, list[bytes]] = {}

    def collect(subject: str):  # type: ignore[no-untyped-def]
        async def cb(msg) -> None:  # type: ignore[no-untyped-def]
            got.setdefault(subject, []).append(msg.data)

        return cb

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
