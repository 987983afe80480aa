"""Two ingestors of one source (one lease key): one publishes, the other stands by; kill -9 the publisher.

The standby must take over within 3 s of the kill, continue every stream's `seq` from the last
retained event (the next DATA is last + 1, or a `GAP reason=upstream` covers what was made but not
published in between; never a `reset`), and clients must get a STATUS from the source saying it
took over.
"""

from __future__ import annotations

import asyncio
import time

from chaosstack import ChaosStack, Service, report, until
from feed import is_status
from natscluster import NatsCluster
from seqcheck import check_seqs, check_status_settled, gap_summary

SYMBOLS = ["000001.SZ", "000002.SZ"]
TAKEOVER_BOUND = 3.0  # README: kill -9 of the publishing ingestor → the standby publishes


async def held(svc: Service) -> bool:
    return await svc.metric("ingestor_lease_held") == 1


async def test_standby_takes_over_a_killed_publisher(cluster: NatsCluster, chaos: ChaosStack) -> None:
    loop = asyncio.get_running_loop()
    first = chaos.ingestor()
    await until(lambda: held(first), 15, "the first ingestor holds the lease")
    second = chaos.ingestor()
    await until(lambda: second.readyz_has("standby"), 15, "the second ingestor stands by")
    gw = chaos.gateway()
    live = await chaos.feed(gw.port, "live")
    await live.subscribe(SYMBOLS, ["quote", "trade"], snapshot=False)
    snap = await chaos.feed(gw.port, "snap")
    await snap.subscribe(SYMBOLS, ["quote", "trade"])
    for f in (live, snap):
        await f.wait_data(15, type="trade")
        await f.wait_data(5, after=time.monotonic() + 0.5, type="trade")
    # exactly one publishes: the standby made events (it follows demand) but sent none
    assert await second.metric("ingestor_lease_held") == 0
    assert await second.metric("ingestor_events_published_total") == 0
    assert await first.metric("ingestor_events_published_total") > 0

    killed_at, killed_wall_us = time.monotonic(), time.time_ns() // 1000
    await loop.run_in_executor(None, first.kill)
    resumed = []
    for f in (live, snap):
        # the dead one's last events may still be in flight: data from the new publisher is stamped after the kill
        t, _ = await f.wait(lambda m: m["type"] == "DATA" and m["data"]["ts"] > killed_wall_us, 10, after=killed_at)
        resumed.append(t - killed_at)
        t, st = await f.wait(
            lambda m: is_status(m, source="mock") and "took over" in (m["data"].get("reason") or ""),
            10,
            after=killed_at,
        )
        print(f"[chaos]   {f.name}: STATUS {st['data']['state']} {st['data']['reason']!r} after {t - killed_at:.2f}s")
    settled = time.monotonic()
    for f in (live, snap):
        await f.wait_data(5, after=settled + 0.5, type="trade")
    report("ingestor standby takes over a kill -9'd publisher", data_resumed=max(resumed))
    assert await held(second) and await second.readyz() == "ok"
    for f in (live, snap):
        logs = check_seqs(f.messages)
        print(f"[chaos]   {f.name}: {gap_summary(logs)}")
        assert not any(s.resets for s in logs.values()), "seq went on from the retained heads: never a reset"
        assert all(g[2] == "upstream" for s in logs.values() for g in s.gaps)
        check_status_settled(f.messages)
    assert max(resumed) < TAKEOVER_BOUND, resumed
