"""Source failover: mock-a publishes SZ and SH while it lives, mock-b while it does not, and mock-a takes them back.

Both run with `ARGUS_FAILOVER="SZ,SH=mock-a,mock-b"`. At first only mock-a's events reach clients;
after mock-a's kill -9, mock-b's do within a few seconds; once mock-a is back and has been healthy
for `recover_after`, mock-a's again. Each switch is announced by a STATUS, `seq` continues in one
numbering (a `GAP reason=upstream` where events were made but not published), and a stream never
interleaves its sources: it shows mock-a, then mock-b, then mock-a, nothing else.
"""

from __future__ import annotations

import asyncio
import time

from chaosstack import ChaosStack, Service, report, until
from feed import Feed, is_data, is_status
from natscluster import NatsCluster
from seqcheck import check_seqs, check_status_settled, gap_summary

SYMBOLS = ["000001.SZ", "600000.SH"]  # one market each of the group
RECOVER_AFTER = 2.0
ENV = {"ARGUS_FAILOVER": "SZ,SH=mock-a,mock-b", "ARGUS_FAILOVER_RECOVER_AFTER": str(RECOVER_AFTER)}
SWITCH_BOUND = 5.0  # README: kill -9 of the publishing source → the next one's events
BACK_BOUND = 10.0  # README: the better source restarted → it publishes again (recover_after included)


async def publishing(svc: Service) -> float:
    return await svc.metric("ingestor_publishing", 'markets="SH,SZ"')


async def publishes(svc: Service) -> bool:
    return await publishing(svc) == 1


async def test_failover_to_the_next_source_and_back(cluster: NatsCluster, chaos: ChaosStack) -> None:
    loop = asyncio.get_running_loop()
    a = chaos.ingestor("--name", "mock-a", env=ENV)
    await until(lambda: publishes(a), 15, "mock-a publishes SH,SZ")
    b = chaos.ingestor("--name", "mock-b", env=ENV)
    await until(lambda: b.readyz_has("ok"), 15, "mock-b is up")
    gw = chaos.gateway()
    live = await chaos.feed(gw.port, "live")
    await live.subscribe(SYMBOLS, ["quote", "trade"], snapshot=False)
    snap = await chaos.feed(gw.port, "snap")
    await snap.subscribe(SYMBOLS, ["quote", "trade"])
    feeds = (live, snap)
    for f in feeds:
        await f.wait_data(15, type="trade", symbol="000001.SZ")
        await f.wait_data(5, after=time.monotonic() + 1.0, type="trade", symbol="000001.SZ")  # a while of mock-a
    assert await publishing(b) == 0
    for f in feeds:
        assert {d["source"] for d in f.data()} == {"mock-a"}, "only mock-a's events while it is healthy"

    killed_at = time.monotonic()
    await loop.run_in_executor(None, a.kill)
    switched = [await _switch(f, "mock-b", "mock-a", killed_at, SWITCH_BOUND) for f in feeds]
    restarted_at = time.monotonic()
    a = chaos.ingestor("--name", "mock-a", env=ENV)
    back = [await _switch(f, "mock-a", "mock-b", restarted_at, BACK_BOUND) for f in feeds]
    for f in feeds:
        await f.wait_data(5, after=time.monotonic() + 0.5, type="trade", source="mock-a")
        # and the one that gave the markets back says so
        await f.wait(
            lambda m: is_status(m, source="mock-b") and "standby for" in (m["data"].get("reason") or ""),
            5,
            after=restarted_at,
        )
    report(
        "source failover (kill -9 of the publishing source, then it restarts)",
        switch_to_next=max(switched),
        back_after_restart=max(back),
    )
    assert await publishing(a) == 1 and await publishing(b) == 0
    for f in feeds:
        logs = check_seqs(f.messages)
        print(f"[chaos]   {f.name}: {gap_summary(logs)}")
        for key, s in logs.items():
            assert s.sources == ["mock-a", "mock-b", "mock-a"], f"{f.name} {key}: sources interleaved: {s.sources}"
            assert not s.resets, f"{f.name} {key}: seq went on across the switches: never a reset"
        check_status_settled(f.messages)
    assert max(switched) < SWITCH_BOUND
    assert min(back) > RECOVER_AFTER, "the better source takes the markets back only after recover_after"


async def _switch(f: Feed, to: str, frm: str, since: float, bound: float) -> float:
    """Seconds from `since` until `to`'s first event, which comes with a STATUS announcing the switch."""
    t, _ = await f.wait(lambda m: is_data(m, source=to), bound, after=since)
    st_t, st = await f.wait(
        lambda m: is_status(m, source=to) and f"took over from {frm}" in (m["data"].get("reason") or ""),
        bound,
        after=since,
    )
    print(f"[chaos]   {f.name}: {to} after {t - since:.2f}s; STATUS {st['data']['reason']!r} after {st_t - since:.2f}s")
    return t - since
