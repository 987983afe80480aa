"""A subscribe stampede costs the store one look-up per distinct stream, not one per subscription,
and a client that never reads while asking for history is held to its outbox bound."""

from __future__ import annotations

import asyncio
import json
import resource
import urllib.request

from eventfactory import quote, subject, trade, unique_symbol
from nats.aio.client import Client as NATS
from wsclient import Client, LiteClient, StalledClient

CLIENTS = 2000
SYMBOLS = 200
PER_CLIENT = 5


def metric(mport: int, name: str, labels: str = "") -> float:
    text = urllib.request.urlopen(f"http://127.0.0.1:{mport}/metrics", timeout=5).read().decode()
    for line in text.splitlines():
        if line.startswith(name + labels + " ") or (not labels and line.startswith(name + " ")):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


async def test_two_thousand_clients_at_once_cost_one_store_lookup_per_stream(gateway, nc: NATS) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 8 * CLIENTS)), hard))
    port, mport = gateway()
    symbols = [unique_symbol("S") for _ in range(SYMBOLS)]
    for sym in symbols:  # stored before anyone listens: only JetStream has them
        for seq in (1, 2, 3):
            await nc.publish(subject("quote", sym), quote(sym, seq, 10 + seq))
    await nc.flush()
    await asyncio.sleep(0.3)
    clients = await asyncio.gather(*(LiteClient.connect(port) for _ in range(CLIENTS)))
    for c in clients:
        assert (await c.message())["type"] == "WELCOME"
    plans = [[symbols[(i * PER_CLIENT + j) % SYMBOLS] for j in range(PER_CLIENT)] for i in range(CLIENTS)]
    for c, plan in zip(clients, plans, strict=True):  # every SUBSCRIBE of the wave in one go
        c.send({"type": "SUBSCRIBE", "data": {"symbols": plan}})

    async def snapshots(c: LiteClient) -> dict[str, int]:
        got: dict[str, int] = {}
        while len(got) < PER_CLIENT:
            m = await c.message()
            if m["type"] == "DATA":
                assert m["data"]["snapshot"] is True
                got[m["data"]["symbol"]] = m["data"]["seq"]
        return got

    results = await asyncio.wait_for(asyncio.gather(*(snapshots(c) for c in clients)), 60)
    assert all(r == dict.fromkeys(plan, 3) for r, plan in zip(results, plans, strict=True))
    assert metric(mport, "gateway_store_requests_total", '{kind="newest"}') == SYMBOLS
    calls = metric(mport, "gateway_store_calls_total")
    assert 1 <= calls <= SYMBOLS // 10, f"{calls} store requests for {SYMBOLS} streams: not batched"
    # a latecomer is served from memory, with no look-up at all
    late = await Client.connect(port)
    await late.subscribe(symbols[:3])
    assert len(await late.data(3)) == 3
    assert metric(mport, "gateway_store_requests_total", '{kind="newest"}') == SYMBOLS
    for c in clients:
        c.close()
    await late.close()


async def test_a_client_that_never_reads_while_asking_for_history_stays_within_bounds(gateway, nc: NATS, procs) -> None:
    port, _ = gateway("--outbox-bytes", "262144")
    pid = procs[-1].proc.pid
    streams = [unique_symbol("H") for _ in range(20)]
    pad = 200
    for sym in streams:
        for seq in range(1, 1001):  # 1,000 trades of ~300 bytes each per stream: ~6 MB in all
            await nc.publish(subject("trade", sym), trade(sym, seq, pad))
    await nc.flush()
    await asyncio.sleep(1.0)
    base = rss_kb(pid)
    healthy = await Client.connect(port)
    live = unique_symbol("L")
    await healthy.subscribe([live], ["trade"], snapshot=False)
    stalled = StalledClient(port)
    stalled.send_text(
        json.dumps({"type": "SUBSCRIBE", "data": {"symbols": streams, "data_types": ["trade"], "history": 2000}})
    )
    await asyncio.sleep(0.5)
    for seq in range(1, 201):  # the stalled client's streams keep trading, and so does the healthy one's
        await nc.publish(subject("trade", live), trade(live, seq))
        for sym in streams[:5]:
            await nc.publish(subject("trade", sym), trade(sym, 1000 + seq, pad))
        await asyncio.sleep(0.005)
    got = await healthy.data(200, timeout=20)
    assert [d["seq"] for d in got] == list(range(1, 201))
    grown_mb = (rss_kb(pid) - base) / 1024
    # the retained views (~6 MB of events) are read once and kept; the stalled session itself
    # holds its outbox bound, not its 20 × 1,000 replayed events a second time
    assert grown_mb < 60, f"gateway grew {grown_mb:.0f} MB for one stalled client"
    # when it finally reads, it gets each stream's newest 1,000 in order, then the live tail or a
    # GAP for it: every seq from the first replayed on is delivered or announced
    frames = await asyncio.get_running_loop().run_in_executor(None, stalled.read_frames, 3.0)
    for sym in (streams[0], streams[-1]):
        data = [f["data"] for f in frames if f["type"] == "DATA" and f["data"]["symbol"] == sym]
        gaps = [f["data"] for f in frames if f["type"] == "GAP" and f["data"]["symbol"] == sym]
        seqs = [d["seq"] for d in data]
        assert seqs and seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
        assert all(d.get("replay") for d in data[:1000])
        covered = set(seqs) | {s for g in gaps for s in range(g["from_seq"], g["to_seq"] + 1)}
        newest = 1200 if sym in streams[:5] else 1000
        assert set(range(seqs[0], newest + 1)) <= covered, "every seq delivered or announced"
    stalled.close()
    await healthy.close()
