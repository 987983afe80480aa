"""Market state on subscribe: history of bars, 分时 and trades from JetStream, exact resume, and the
seam between replay and live data. The test plays the ingestor on a real nats-server."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from eventfactory import BarPlayer, subject, trade, unique_symbol
from nats.aio.client import Client as NATS
from natsserver import sync_subscriptions
from wsclient import Client

T0 = datetime(2026, 11, 30, 9, 30).astimezone()


def minute(i: int, day: int = 0) -> str:
    return (T0 + timedelta(days=day, minutes=i)).isoformat(timespec="seconds")


async def stored(nc: NATS) -> None:
    await nc.flush()
    await asyncio.sleep(0.2)  # JetStream stores what the core subscribers already have


def replay_of(c: Client, key_type: str) -> list[dict]:
    return [
        m["data"] for m in c.seen if m["type"] == "DATA" and m["data"]["type"] == key_type and m["data"].get("replay")
    ]


async def test_kline_history_is_the_newest_bars_with_the_forming_one_last(gateway, nc: NATS) -> None:
    port, _ = gateway()
    sym = unique_symbol()
    bars = BarPlayer(nc, "kline", sym)
    for i in range(30):
        await bars.bar(minute(i))
    await bars.bar(minute(30), versions=2, close=False)  # forming
    await stored(nc)
    c = await Client.connect(port)
    await c.subscribe([sym], ["kline"], periods=["1m"], history=10)
    replayed = await c.expect("REPLAYED")
    got = replay_of(c, "kline")
    assert [d["kline"]["open_time"] for d in got] == [minute(i) for i in range(21, 31)]
    assert all(d["kline"]["closed"] for d in got[:-1]) and not got[-1]["kline"]["closed"]
    assert all(d["replay"] is True and "snapshot" not in d for d in got)
    # one entry per bar: its newest version (the closing seq), and first_seq says where the bar began
    assert [d["seq"] for d in got[:-1]] == [b[2] for b in bars.bars[21:]]
    assert [d["first_seq"] for d in got[:-1]] == [b[1] for b in bars.bars[21:]]
    key = f"kline:{sym}:1m"
    assert replayed["data"]["streams"] == {
        key: {"from_seq": got[0]["seq"], "to_seq": bars.seq, "count": 10, "recovered": True}
    }
    assert replayed["id"] == "s"
    # live continues with the next seq: the forming bar's next version, then the next bar
    await bars.bar(minute(30), versions=1, close=True)
    live = (await c.data(1, symbol=sym))[0]
    assert live["seq"] == bars.seq and "replay" not in live and live["kline"]["closed"]
    # asking for more than is retained: everything, and recovered because the stream's start is there
    d = await Client.connect(port)
    await d.subscribe([sym], ["kline"], periods=["1m"], history=500)
    r2 = await d.expect("REPLAYED")
    assert r2["data"]["streams"][key]["count"] == 31 and r2["data"]["streams"][key]["recovered"] is True
    assert [x["kline"]["open_time"] for x in replay_of(d, "kline")] == [minute(i) for i in range(31)]
    await c.close()
    await d.close()


async def test_tick_history_day_is_the_line_since_the_open_in_order(gateway, nc: NATS) -> None:
    port, _ = gateway()
    sym = unique_symbol()
    line = BarPlayer(nc, "tick", sym)
    for i in range(5):
        await line.bar(minute(i, day=-1))  # yesterday's session
    for i in range(40):
        await line.bar(minute(i), versions=2)
    await line.bar(minute(40), versions=3, close=False)
    await stored(nc)
    c = await Client.connect(port)
    await c.subscribe([sym], ["tick"], history="day")
    replayed = await c.expect("REPLAYED")
    got = replay_of(c, "tick")
    assert [d["tick"]["time"] for d in got] == [minute(i) for i in range(41)]
    assert all(d["tick"]["closed"] for d in got[:-1]) and not got[-1]["tick"]["closed"]
    assert [d["seq"] for d in got] == sorted({d["seq"] for d in got})
    entry = replayed["data"]["streams"][f"tick:{sym}"]
    assert entry == {"from_seq": got[0]["seq"], "to_seq": line.seq, "count": 41, "recovered": True}
    await c.close()


async def test_trade_history_and_exact_resume_from_any_gateway(gateway, nc: NATS) -> None:
    port_a, _ = gateway()
    port_b, _ = gateway()
    sym = unique_symbol()
    for seq in range(1, 51):
        await nc.publish(subject("trade", sym), trade(sym, seq))
    await stored(nc)
    a = await Client.connect(port_a)
    await a.subscribe([sym], ["trade"], history=20)
    await a.expect("REPLAYED")
    assert [d["seq"] for d in replay_of(a, "trade")] == list(range(31, 51))
    await a.close()
    # the client was gone; more trades happened; it resumes on the other gateway
    for seq in range(51, 61):
        await nc.publish(subject("trade", sym), trade(sym, seq))
    await stored(nc)
    b = await Client.connect(port_b)
    await b.subscribe([sym], ["trade"], resume={f"trade:{sym}": 50})
    replayed = await b.expect("REPLAYED")
    assert [d["seq"] for d in replay_of(b, "trade")] == list(range(51, 61))
    assert replayed["data"]["streams"][f"trade:{sym}"] == {"from_seq": 51, "to_seq": 60, "count": 10, "recovered": True}
    assert not [m for m in b.seen if m["type"] == "GAP"]
    await nc.publish(subject("trade", sym), trade(sym, 61))
    assert (await b.data(1, symbol=sym))[0]["seq"] == 61
    await b.close()


async def test_live_events_during_the_replay_follow_it_without_duplicate_or_hole(gateway, nc: NATS) -> None:
    port, _ = gateway()
    sym = unique_symbol()
    for seq in range(1, 301):
        await nc.publish(subject("trade", sym), trade(sym, seq))
    await stored(nc)
    c = await Client.connect(port)
    publishing = True

    async def publish() -> None:
        seq = 300
        while publishing:
            seq += 1
            await nc.publish(subject("trade", sym), trade(sym, seq))
            await asyncio.sleep(0.002)

    task = asyncio.create_task(publish())
    await asyncio.sleep(0.05)
    await c.subscribe([sym], ["trade"], resume={f"trade:{sym}": 100})
    await c.expect("REPLAYED", timeout=10)
    await asyncio.sleep(0.3)
    publishing = False
    await task
    await asyncio.sleep(0.3)
    while True:
        try:
            await c.recv(0.3)
        except TimeoutError:
            break
    seqs = [m["data"]["seq"] for m in c.seen if m["type"] == "DATA"]
    assert seqs == list(range(101, seqs[-1] + 1)), "every seq after the resume point exactly once, in order"
    assert seqs[-1] > 320 and not [m for m in c.seen if m["type"] == "GAP"]
    await c.close()


async def test_resume_past_retention_gets_the_exact_gap_then_what_is_kept(own_nats, gateway, nc_for) -> None:
    port, _ = gateway(url=own_nats.url, env={"ARGUS_CONFIG": ""}, config={"retention": {"trade": {"per_subject": 20}}})
    nc = await nc_for(own_nats.url)
    sym = unique_symbol()
    for seq in range(1, 101):
        await nc.publish(subject("trade", sym), trade(sym, seq))
    await stored(nc)
    c = await Client.connect(port)
    await c.subscribe([sym], ["trade"], resume={f"trade:{sym}": 40})
    gap = await c.expect("GAP")
    assert gap["data"] == {"symbol": sym, "type": "trade", "from_seq": 41, "to_seq": 80, "reason": "resume_unavailable"}
    replayed = await c.expect("REPLAYED")
    assert [d["seq"] for d in replay_of(c, "trade")] == list(range(81, 101))
    assert replayed["data"]["streams"][f"trade:{sym}"] == {
        "from_seq": 81,
        "to_seq": 100,
        "count": 20,
        "recovered": False,
    }
    # a resume point past what the stream ever had: the numbering was reset since
    d = await Client.connect(port)
    await d.subscribe([sym], ["trade"], resume={f"trade:{sym}": 5000})
    reset = await d.expect("GAP")
    assert reset["data"]["reason"] == "reset" and reset["data"]["from_seq"] == 1
    r2 = await d.expect("REPLAYED")
    assert r2["data"]["streams"][f"trade:{sym}"]["recovered"] is False
    await c.close()
    await d.close()


async def test_history_for_a_stream_nobody_published_is_empty_and_not_recovered(gateway, nc: NATS) -> None:
    port, _ = gateway()
    sym = unique_symbol()
    c = await Client.connect(port)
    await c.subscribe([sym], ["trade", "quote"], history=5)
    replayed = await c.expect("REPLAYED")
    streams = replayed["data"]["streams"]
    assert streams[f"trade:{sym}"] == {"from_seq": 0, "to_seq": 0, "count": 0, "recovered": False}
    assert streams[f"quote:{sym}"]["count"] == 0
    await sync_subscriptions(nc)
    await nc.publish(subject("trade", sym), trade(sym, 1))
    assert (await c.data(1, symbol=sym))[0]["seq"] == 1
    await c.close()
