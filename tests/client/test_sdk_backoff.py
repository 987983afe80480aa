"""Reconnect timing with a fake clock: full jitter inside the exponential cap, never below the
floor, reset after a stable session, and the server's hint honoured."""

from __future__ import annotations

import asyncio
import random

from argus_client import ArgusClient, Backoff, Disconnected
from collector import Collector
from natsserver import free_port


def test_full_jitter_stays_inside_the_exponential_cap() -> None:
    rng = random.Random(42)
    b = Backoff(initial=0.5, maximum=30.0, multiplier=2.0, floor=0.05, random=rng.random)
    draws: dict[int, list[float]] = {}
    for _ in range(300):
        b.reset()
        for attempt in range(10):
            draws.setdefault(attempt, []).append(b.next())
    for attempt, ds in draws.items():
        cap = min(30.0, 0.5 * 2**attempt)
        assert all(0.05 <= d <= cap for d in ds), attempt
        # full jitter: the draws fill the window, they are not bunched at its top
        assert min(ds) < cap * 0.1 + 0.05 and max(ds) > cap * 0.9
    assert max(draws[9]) <= 30.0 and b.cap(1000) == 30.0


def test_extremes_of_the_draw_give_the_floor_and_the_cap() -> None:
    b = Backoff(initial=1.0, maximum=8.0, random=lambda: 0.0)
    assert [b.next() for _ in range(3)] == [0.05, 0.05, 0.05]
    b = Backoff(initial=1.0, maximum=8.0, random=lambda: 1.0)
    assert [b.next() for _ in range(6)] == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    b.reset()
    assert b.next() == 1.0
    # a server hint (draining, 1012): at least the hint, at most twice it
    assert Backoff(random=lambda: 0.0).after_hint(1.5) == 1.5
    assert Backoff(random=lambda: 1.0).after_hint(1.5) == 3.0


async def test_the_client_sleeps_what_the_backoff_draws_while_nobody_listens() -> None:
    """A gateway that is down: every attempt fails at once; the fake sleep records the waits
    (no real time passes), and each Disconnected says how long the client will wait."""
    slept: list[float] = []
    enough = asyncio.Event()

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)
        if len(slept) >= 12:
            enough.set()
        await asyncio.sleep(0)

    rng = random.Random(7)
    backoff = Backoff(initial=0.5, maximum=10.0, random=rng.random)
    client = ArgusClient(f"ws://127.0.0.1:{free_port()}/", backoff=backoff, sleep=fake_sleep)
    async with client:
        await asyncio.wait_for(enough.wait(), 20)
    gone = [e for e in [client.inbox.get_nowait() for _ in range(len(client.inbox))] if isinstance(e, Disconnected)]
    assert len(slept) >= 12 and [d.retry_in for d in gone[: len(slept)]] == slept[: len(gone)]
    for attempt, delay in enumerate(slept[:12]):
        assert 0.05 <= delay <= min(10.0, 0.5 * 2**attempt), (attempt, delay)
    assert len(set(slept)) == len(slept), "jittered, not a fixed schedule"
    assert all(d.reason.startswith("unreachable") for d in gone)
    assert sum(slept[6:12]) > sum(slept[:6]), "the window widens"


async def test_a_session_that_lasted_resets_the_backoff(gw, proxy_to) -> None:
    """Fake clock, real gateway: failed attempts widen the window; a session that lasted past
    stable_after (on the fake clock) starts the next wait from the smallest window again; a session
    that ended at once keeps widening it. The draws are pinned to the top of each window."""
    now = [0.0]
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)
        await asyncio.sleep(0.01)

    port = gw()
    proxy = await proxy_to(free_port())  # nothing behind it yet: every attempt fails
    b = Backoff(initial=1.0, maximum=60.0, random=lambda: 1.0)
    client = ArgusClient(proxy.url, backoff=b, clock=lambda: now[0], sleep=fake_sleep, stable_after=10.0)
    async with client:
        col = Collector(client)
        await col.until(lambda: len(slept) >= 3, 10, "three failed attempts")
        proxy.target_port = port
        await col.until(lambda: len(col.connects) == 1, 10, "connected")
        failed = list(slept)
        assert failed[:3] == [1.0, 2.0, 4.0]
        now[0] += 30.0  # the session lasts 30 s
        proxy.cut()
        await col.until(lambda: len(col.connects) == 2, 10, "reconnected")
        assert slept[len(failed)] == 1.0, "reset: the smallest window again"
        proxy.cut()  # this session ended at once
        await col.until(lambda: len(col.connects) == 3, 10, "reconnected again")
        assert slept[len(failed) + 1] == 2.0, "no reset: the window keeps widening"
    assert [d.retry_in for d in col.disconnects][-2:] == [1.0, 2.0]
