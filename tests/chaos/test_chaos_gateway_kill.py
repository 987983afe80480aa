"""kill -9 of one of two gateways: its clients reconnect to the other and `resume` where they were.

Each client resumes every stream from the last seq it accounted for; the events published while it
was away must come exactly once from retention (`replay: true`, REPLAYED `recovered`) or be named by
a GAP, and live data must follow without a duplicate or a hole: one numbering across both sockets.
"""

from __future__ import annotations

import asyncio
import time

from chaosstack import ChaosStack, report
from feed import Feed
from natscluster import NatsCluster
from seqcheck import check_seqs, check_status_settled, gap_summary

RESUME_BOUND = 5.0  # README: kill -9 of a gateway → its client has resumed on another one
AWAY = 0.5  # seconds a client takes to reconnect (its back-off), while the market goes on
CLIENTS = {  # name: (symbols, data types, subscribe with snapshots?)
    "live": (["000001.SZ", "000002.SZ"], ["trade", "quote", "kline"], False),
    "snap": (["000003.SZ"], ["trade", "quote", "kline"], True),
}


async def test_clients_of_a_killed_gateway_resume_on_the_other(cluster: NatsCluster, chaos: ChaosStack) -> None:
    loop = asyncio.get_running_loop()
    chaos.ingestor()
    doomed, other = chaos.gateway(), chaos.gateway()
    before: dict[str, Feed] = {}
    for name, (symbols, types, snapshot) in CLIENTS.items():
        before[name] = await chaos.feed(doomed.port, name)
        await before[name].subscribe(symbols, types, periods=["1m"], snapshot=snapshot)
    for f in before.values():
        await f.wait_data(15, type="trade")
        await f.wait_data(5, after=time.monotonic() + 0.5, type="trade")  # a while of live data first
    killed_at = time.monotonic()
    await loop.run_in_executor(None, doomed.kill)
    await asyncio.sleep(AWAY)  # the scenario: clients come back after a reconnect delay, not an assert
    after: dict[str, Feed] = {}
    replayed: dict[str, dict] = {}
    for name, (symbols, types, _) in CLIENTS.items():
        await before[name].wait_closed(5)
        # resume every stream from the last seq this client accounted for, as a client library does
        resume = {key: log.last for key, log in check_seqs(before[name].messages).items()}
        after[name] = f = await chaos.feed(other.port, f"{name}-resumed")
        await f.subscribe(symbols, types, periods=["1m"], resume=resume)
        at, msg = await f.wait(lambda m: m["type"] == "REPLAYED", RESUME_BOUND)
        replayed[name] = msg["data"]["streams"]
        await f.wait_data(5, after=at, type="trade")  # live again after the replay
        resumed_s = at - killed_at
        n = sum(s["count"] for s in replayed[name].values())
        report(f"gateway kill -9, client {name!r} resumed on the other", resumed=resumed_s)
        print(f"[chaos]   {n} events replayed: {replayed[name]}")
        assert resumed_s < RESUME_BOUND
    for name, (symbols, _, _) in CLIENTS.items():
        logs = check_seqs(before[name].messages + after[name].messages)  # one numbering across both sockets
        print(f"[chaos]   {name}: {gap_summary(logs)}")
        for sym in symbols:
            trade, bar = replayed[name][f"trade:{sym}"], replayed[name][f"kline:{sym}:1m"]
            assert trade["recovered"] and bar["recovered"], replayed[name]
            assert trade["count"] > 0, "trades happened while the client was away: they came from retention"
            assert logs[f"trade:{sym}"].count > 10
        assert not any(s.resets for s in logs.values())
        check_status_settled(after[name].messages)
