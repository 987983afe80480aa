"""NATS restarts: ingestor and gateway reconnect by themselves and clients keep their streams."""

from __future__ import annotations

import asyncio

from wsclient import Client


async def test_stream_resumes_after_nats_restart_and_any_loss_is_announced(own_nats, gateway, ingestor) -> None:
    ingestor("mock", "--universe", "5", "--rate", "10", url=own_nats.url)
    port, _ = gateway(url=own_nats.url)
    c = await Client.connect(port)
    await c.subscribe(["000001.SZ"], ["quote"], snapshot=False)
    before = await c.data(5, timeout=10)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, own_nats.restart, 1.0)
    after = await c.data(10, timeout=20)
    seqs = [d["seq"] for d in before + after]
    gaps = [m["data"] for m in c.seen if m["type"] == "GAP"]
    assert seqs[-1] > seqs[0]
    # every seq between first and last is delivered or announced missing; nothing silently lost
    covered = set(seqs) | {s for g in gaps for s in range(g["from_seq"], g["to_seq"] + 1)}
    assert set(range(seqs[0], seqs[-1] + 1)) <= covered
    # and the connection itself never dropped
    await c.send("SUBSCRIPTIONS")
    assert (await c.expect("SUBSCRIPTIONS"))["data"]["total"] == 1
    await c.close()
