"""All three NATS nodes killed, then started again: gateways say so at once, and nothing is lost silently.

Clients stay connected to their gateway through the outage: they must get `STATUS source: "gateway"`
`stale` right away and `live` when NATS is back, and their streams must continue with every lost
seq inside a GAP. With file storage the retained state survives the full stop: a gateway started
afterwards serves snapshots from it, and an ingestor started afterwards continues every stream's
numbering (no `GAP reset`).
"""

from __future__ import annotations

import asyncio
import time

from chaosstack import ChaosStack, report
from feed import is_status
from natscluster import NatsCluster
from seqcheck import check_seqs, check_status_settled, gap_summary

SYMBOLS = ["000001.SZ", "000002.SZ"]
DOWN = 1.0  # seconds the whole cluster stays down (the scenario)
STALE_BOUND = 1.0  # README: NATS gone → clients told `stale`
BACK_BOUND = 10.0  # README: cluster ready again → STATUS live and data flowing
SNAPSHOT_BOUND = 5.0


async def test_full_nats_stop_and_restart(cluster: NatsCluster, chaos: ChaosStack) -> None:
    loop = asyncio.get_running_loop()
    ingestor = chaos.ingestor()
    gw = chaos.gateway()
    feeds = [await chaos.feed(gw.port, "live"), await chaos.feed(gw.port, "snap")]
    await feeds[0].subscribe(SYMBOLS, ["quote", "trade"], snapshot=False)
    await feeds[1].subscribe(SYMBOLS, ["quote", "trade"])
    for f in feeds:
        await f.wait_data(15, type="trade")

    stopped_at = time.monotonic()
    await loop.run_in_executor(None, cluster.kill_all)
    stale = [
        (await f.wait(lambda m: is_status(m, source="gateway", state="stale"), STALE_BOUND, after=stopped_at))[0]
        for f in feeds
    ]
    await asyncio.sleep(DOWN)  # the scenario: NATS stays away a while, not an assert
    started_at = time.monotonic()
    await loop.run_in_executor(None, cluster.start_all)
    ready_s = await loop.run_in_executor(None, cluster.wait_ready, 30.0)
    ready_at = time.monotonic()
    live_at, data_at = [], []
    for f in feeds:
        t, _ = await f.wait(lambda m: is_status(m, source="gateway", state="live"), BACK_BOUND, after=started_at)
        live_at.append(t)
        data_at.append((await f.wait_data(BACK_BOUND, after=ready_at, type="trade"))[0])
    report(
        "NATS full stop (3 of 3 kill -9) and restart",
        stale_after_stop=max(stale) - stopped_at,
        cluster_ready=ready_s,
        live_status_after_start=max(live_at) - started_at,
        data_after_cluster_ready=max(data_at) - ready_at,
    )

    # file storage kept the retained state: a gateway with nothing in memory serves snapshots from it ...
    fresh_gw = chaos.gateway()
    fresh = await chaos.feed(fresh_gw.port, "fresh")
    asked = time.monotonic()
    await fresh.subscribe(SYMBOLS, ["quote", "trade"])
    for sym in SYMBOLS:
        for kind in ("quote", "trade"):
            await fresh.wait_data(SNAPSHOT_BOUND, symbol=sym, type=kind, snapshot=True)
    snapshot_s = time.monotonic() - asked
    # ... and an ingestor started now continues every stream from it
    ingestor.proc.stop()
    restarted = time.monotonic()
    chaos.ingestor()
    for f in (*feeds, fresh):
        await f.wait_data(15, after=restarted + 0.5, type="trade")
    report("after the full stop", snapshot_from_file_store=snapshot_s)

    for f in (*feeds, fresh):
        logs = check_seqs(f.messages)
        print(f"[chaos]   {f.name}: {gap_summary(logs)}")
        assert not any(s.resets for s in logs.values()), f"{f.name}: file retention survived: never a reset"
        check_status_settled(f.messages)
