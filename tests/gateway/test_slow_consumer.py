"""A client that stops reading costs bounded memory, loses nothing silently, and slows no one."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aiohttp
import pytest
from eventfactory import quote, subject, trade, unique_symbol
from nats.aio.client import Client as NATS
from wsclient import Client, StalledClient

N_TRADES = 3000
PAD = 4000  # ~4 KB per trade frame: 12 MB in all, past the bounds and the kernel socket buffers


def small_bounds(tmp_path: Path, policy: str) -> str:
    cfg = tmp_path / f"slow-{policy}.yaml"
    cfg.write_text(f"server:\n  outbox_bytes: 65536\n  write_buffer_high: 16384\n  slow_consumer: {policy}\n")
    return str(cfg)


async def metric(mport: int, name: str) -> float:
    async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{mport}/metrics") as r:
        text = await r.text()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name))


async def publish_burst(nc: NATS, sym: str) -> None:
    for seq in range(1, N_TRADES + 1):
        await nc.publish(subject("trade", sym), trade(sym, seq, pad=PAD))
        if seq % 10 == 0:
            await nc.publish(subject("quote", sym), quote(sym, seq // 10, 10 + seq / 1000))
        if seq % 500 == 0:
            await nc.flush()
            await asyncio.sleep(0.01)
    await nc.flush()


@pytest.mark.parametrize("path", ["/", "/?batch=1"], ids=["plain", "batch"])
async def test_stalled_client_gets_gaps_and_newest_quote_while_healthy_client_gets_everything(
    gateway, nc: NATS, tmp_path: Path, path: str
) -> None:
    port, mport = gateway("--config", small_bounds(tmp_path, "gap"))
    sym = unique_symbol("S")
    stalled = StalledClient(port, path)
    stalled.send_text(
        json.dumps(
            {"type": "SUBSCRIBE", "data": {"symbols": [sym], "data_types": ["trade", "quote"], "snapshot": False}}
        )
    )
    healthy = await Client.connect(port)
    await healthy.subscribe([sym], ["trade", "quote"], snapshot=False)
    await nc.flush()
    await asyncio.sleep(0.3)

    reader = asyncio.create_task(healthy.data(N_TRADES + N_TRADES // 10, timeout=60))
    await publish_burst(nc, sym)
    got = await reader
    trades = [d["seq"] for d in got if d["type"] == "trade"]
    quotes = [d["seq"] for d in got if d["type"] == "quote"]
    assert trades == list(range(1, N_TRADES + 1)), "the healthy client must get every trade, in order"
    assert quotes == list(range(1, N_TRADES // 10 + 1))

    frames = await asyncio.get_running_loop().run_in_executor(None, stalled.read_frames, 1.5)
    stalled.close()
    if path.endswith("batch=1"):
        assert any(isinstance(f, list) for f in frames)
        frames = [e for f in frames for e in (f if isinstance(f, list) else [f])]
    got_trades = [f["data"]["seq"] for f in frames if f["type"] == "DATA" and f["data"]["type"] == "trade"]
    got_quotes = [f["data"]["seq"] for f in frames if f["type"] == "DATA" and f["data"]["type"] == "quote"]
    all_gaps = [f["data"] for f in frames if f["type"] == "GAP"]
    gaps = [g for g in all_gaps if g["type"] == "trade"]
    assert gaps, "loss must be announced"
    assert len(got_trades) < N_TRADES // 2, "the stalled client's queue must have been bounded"
    assert all(g["symbol"] == sym and g["reason"] == "slow_consumer" for g in all_gaps)
    covered = sorted(got_trades + [s for g in gaps for s in range(g["from_seq"], g["to_seq"] + 1)])
    assert covered == list(range(1, N_TRADES + 1)), "every trade is either delivered or inside a GAP, once"
    assert got_trades == sorted(got_trades)
    assert got_quotes[-1] == N_TRADES // 10, "the newest quote survives conflation"
    assert len(got_quotes) < N_TRADES // 10
    # every quote conflated away is counted; those skipped while past the bound are also a GAP
    quote_gaps = [g for g in all_gaps if g["type"] == "quote"]
    in_gaps = sum(g["to_seq"] - g["from_seq"] + 1 for g in quote_gaps)
    conflated = await metric(mport, 'websocket_dropped_messages_total{why="conflated"}')
    assert quote_gaps and conflated >= N_TRADES // 10 - len(got_quotes) >= in_gaps
    assert all(q not in range(g["from_seq"], g["to_seq"] + 1) for q in got_quotes for g in quote_gaps)
    assert await metric(mport, 'websocket_gaps_total{reason="slow_consumer"}') == len(all_gaps)
    await healthy.close()


async def test_close_policy_disconnects_the_stalled_client_with_4008(gateway, nc: NATS, tmp_path: Path) -> None:
    port, mport = gateway("--config", small_bounds(tmp_path, "close"))
    sym = unique_symbol("C")
    stalled = StalledClient(port)
    stalled.send_text(
        json.dumps({"type": "SUBSCRIBE", "data": {"symbols": [sym], "data_types": ["trade"], "snapshot": False}})
    )
    healthy = await Client.connect(port)
    await healthy.subscribe([sym], ["trade"], snapshot=False)
    await nc.flush()
    await asyncio.sleep(0.3)
    reader = asyncio.create_task(healthy.data(N_TRADES, timeout=60))
    await publish_burst(nc, sym)
    assert [d["seq"] for d in await reader] == list(range(1, N_TRADES + 1))
    frames = await asyncio.get_running_loop().run_in_executor(None, stalled.read_frames, 1.5)
    stalled.close()
    assert any(f["type"] == "ERROR" and f["data"]["code"] == "SLOW_CONSUMER" for f in frames)
    assert stalled.close_code == 4008
    await asyncio.sleep(0.3)
    assert await metric(mport, 'websocket_disconnects_total{reason="slow consumer"}') == 1
    await healthy.close()


async def test_nothing_of_a_stream_follows_its_unsubscribed_even_when_the_client_was_behind(
    gateway, nc: NATS, tmp_path: Path
) -> None:
    port, _ = gateway("--config", small_bounds(tmp_path, "gap"))
    sym = unique_symbol("R")
    stalled = StalledClient(port)
    stalled.send_text(
        json.dumps(
            {"type": "SUBSCRIBE", "data": {"symbols": [sym], "data_types": ["trade", "quote"], "snapshot": False}}
        )
    )
    await asyncio.sleep(0.3)
    await publish_burst(nc, sym)  # far past the bounds: quotes conflate and trades gap, waiting for the client
    stalled.send_text(json.dumps({"type": "UNSUBSCRIBE", "data": {"symbols": [sym]}}))
    await asyncio.sleep(0.3)
    frames = await asyncio.get_running_loop().run_in_executor(None, stalled.read_frames, 1.5)
    stalled.close()
    kinds = [f["type"] for f in frames]
    assert "UNSUBSCRIBED" in kinds
    after = frames[kinds.index("UNSUBSCRIBED") + 1 :]
    assert [f for f in after if f["type"] in ("DATA", "GAP")] == [], "a held quote or GAP came after UNSUBSCRIBED"
