"""A client's whole conversation with a real gateway, data played onto a real nats-server."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import msgspec
from eventfactory import quote, subject, trade, unique_symbol
from nats.aio.client import Client as NATS
from wsclient import Client


async def wait_subscribed(nc: NATS, subj: str) -> None:
    """Gateways subscribe NATS asynchronously; give the SUB a moment to reach the server."""
    await nc.flush()
    await asyncio.sleep(0.15)


async def test_welcome_subscribe_and_live_data_with_seq_and_ts(gateway, nc: NATS) -> None:
    port, _ = gateway()
    sym = unique_symbol()
    for path in ("/", "/ws"):
        c = await Client.connect(port, path)
        welcome = await c.expect("WELCOME")
        assert welcome["data"]["protocol_version"] == 1
        assert welcome["data"]["heartbeat_interval"] > 0 and welcome["data"]["limits"]["max_subscriptions"] > 0
        assert welcome["timestamp"].endswith("+00:00")
        ack = await c.subscribe([sym], ["quote"], snapshot=False)
        assert ack["data"]["added"] == [f"quote:{sym}"] and ack["data"]["rejected"] == []
        assert ack["id"] == "s"
        await wait_subscribed(nc, subject("quote", sym))
        start = time.time_ns() // 1000
        for seq in (1, 2, 3):
            await nc.publish(subject("quote", sym), quote(sym, seq + (10 if path == "/ws" else 0), 10 + seq))
        got = await c.data(3, symbol=sym)
        assert [d["seq"] for d in got] == ([1, 2, 3] if path == "/" else [11, 12, 13])
        assert [d["quote"]["price"] for d in got] == [11, 12, 13]
        assert all(d["type"] == "quote" and d["ts"] >= start - 1_000_000 for d in got)
        assert len(got[0]["quote"]["bid_prices"]) == 5
        await c.close()


async def test_subscribe_is_idempotent_and_subscriptions_lists_streams(gateway) -> None:
    port, _ = gateway()
    c = await Client.connect(port)
    a = await c.subscribe(["000001.SZ"], ["quote", "kline"], periods=["1m", "5m"])
    assert sorted(a["data"]["added"]) == ["kline:000001.SZ:1m", "kline:000001.SZ:5m", "quote:000001.SZ"]
    b = await c.subscribe(["000001.SZ"], ["quote"])
    assert b["data"]["added"] == [] and b["data"]["total"] == 3
    await c.send("SUBSCRIPTIONS", id=9)
    subs = await c.expect("SUBSCRIPTIONS")
    assert subs["id"] == 9
    assert subs["data"]["streams"] == ["kline:000001.SZ:1m", "kline:000001.SZ:5m", "quote:000001.SZ"]
    assert subs["data"]["symbols"] == {"000001.SZ": ["kline:1m", "kline:5m", "quote"]}
    await c.close()


async def test_unsubscribe_stops_the_stream(gateway, nc: NATS) -> None:
    port, _ = gateway()
    sym = unique_symbol()
    c = await Client.connect(port)
    await c.subscribe([sym], ["quote", "trade"])
    await wait_subscribed(nc, subject("quote", sym))
    await nc.publish(subject("quote", sym), quote(sym, 1))
    await c.data(1, symbol=sym)
    await c.send("UNSUBSCRIBE", {"symbols": [sym], "data_types": ["quote"]})
    un = await c.expect("UNSUBSCRIBED")
    assert un["data"]["removed"] == [f"quote:{sym}"] and un["data"]["total"] == 1
    await nc.publish(subject("quote", sym), quote(sym, 2))
    await nc.publish(subject("trade", sym), trade(sym, 1))
    d = await c.expect("DATA")
    assert d["data"]["type"] == "trade", "quotes must stop after UNSUBSCRIBE"
    await nc.publish(subject("quote", sym), quote(sym, 3))
    await c.send("UNSUBSCRIBE", {})  # all
    un = await c.expect("UNSUBSCRIBED")
    assert un["data"]["total"] == 0
    await nc.publish(subject("trade", sym), trade(sym, 2))
    await c.send("HEARTBEAT", {})
    await c.expect("HEARTBEAT")
    assert not [m for m in c.seen if m["type"] == "DATA" and m["data"]["seq"] >= 2]
    await c.close()


async def test_two_clients_get_exactly_their_own_streams(gateway, nc: NATS) -> None:
    port, _ = gateway()
    a_sym, b_sym = unique_symbol("A"), unique_symbol("B")
    a, b = await Client.connect(port), await Client.connect(port)
    await a.subscribe([a_sym], ["quote"])
    await b.subscribe([b_sym], ["quote", "trade"])
    await wait_subscribed(nc, subject("quote", a_sym))
    for seq in range(1, 6):
        await nc.publish(subject("quote", a_sym), quote(a_sym, seq))
        await nc.publish(subject("quote", b_sym), quote(b_sym, seq))
        await nc.publish(subject("trade", b_sym), trade(b_sym, seq))
        await nc.publish(subject("trade", a_sym), trade(a_sym, seq))
    got_a = await a.data(5)
    got_b = await b.data(10)
    await asyncio.sleep(0.3)
    for c in (a, b):
        await c.send("HEARTBEAT")
        await c.expect("HEARTBEAT")
    extra_a = [m for m in a.seen if m["type"] == "DATA"][5:]
    extra_b = [m for m in b.seen if m["type"] == "DATA"][10:]
    assert {(d["type"], d["symbol"]) for d in got_a} == {("quote", a_sym)} and not extra_a
    assert {(d["type"], d["symbol"]) for d in got_b} == {("quote", b_sym), ("trade", b_sym)} and not extra_b
    assert [d["seq"] for d in got_b if d["type"] == "trade"] == [1, 2, 3, 4, 5]
    await a.close()
    await b.close()


async def test_snapshot_on_subscribe_and_a_quote_resume_gets_the_newest_value(gateway, nc: NATS) -> None:
    port, _ = gateway()
    sym = unique_symbol()
    # Published before anyone subscribed: only JetStream's last-value stream holds it.
    for seq in range(1, 8):
        await nc.publish(subject("quote", sym), quote(sym, seq, 20 + seq))
    await nc.flush()
    await asyncio.sleep(0.2)
    c = await Client.connect(port)
    await c.subscribe([sym], ["quote"])
    snap = (await c.data(1, symbol=sym))[0]
    assert snap["snapshot"] is True and snap["seq"] == 7 and snap["quote"]["price"] == 27
    # A second client resumes from seq 4 on a stream held here: the newest value from memory (a
    # quote supersedes the ones before it, so 5 and 6 are no loss), then REPLAYED.
    d = await Client.connect(port)
    await d.subscribe([sym], ["quote"], resume={f"quote:{sym}": 4})
    snap2 = (await d.data(1, symbol=sym))[0]
    assert snap2["seq"] == 7 and snap2["snapshot"] is True and snap2["replay"] is True
    replayed = await d.expect("REPLAYED")
    assert replayed["data"]["streams"] == {f"quote:{sym}": {"from_seq": 7, "to_seq": 7, "count": 1, "recovered": True}}
    assert not [m for m in d.seen if m["type"] == "GAP"]
    # snapshot=false: nothing until live data.
    e = await Client.connect(port)
    await e.subscribe([sym], ["quote"], snapshot=False)
    await nc.publish(subject("quote", sym), quote(sym, 8))
    live = (await e.data(1, symbol=sym))[0]
    assert live["seq"] == 8 and "snapshot" not in live
    for x in (c, d, e):
        await x.close()


async def test_upstream_sequence_hole_becomes_a_gap(gateway, nc: NATS) -> None:
    port, _ = gateway()
    sym = unique_symbol()
    c = await Client.connect(port)
    await c.subscribe([sym], ["trade"], snapshot=False)
    await wait_subscribed(nc, subject("trade", sym))
    for seq in (1, 2, 6, 7):
        await nc.publish(subject("trade", sym), trade(sym, seq))
    await c.data(2, symbol=sym)
    gap = await c.expect("GAP")
    assert gap["data"] == {"symbol": sym, "type": "trade", "from_seq": 3, "to_seq": 5, "reason": "upstream"}
    rest = await c.data(2, symbol=sym)
    assert [d["seq"] for d in rest] == [6, 7]
    await c.close()


async def test_msgpack_by_query_and_by_subprotocol(gateway, nc: NATS) -> None:
    port, _ = gateway()
    sym = unique_symbol()
    q = await Client.connect(port, "/?encoding=msgpack", binary=True)
    p = await Client.connect(port, "/", binary=True, protocols=("argus.v1.msgpack",))
    assert p.ws.protocol == "argus.v1.msgpack"
    j = await Client.connect(port)
    for c in (q, p, j):
        w = await c.expect("WELCOME")
        assert w["data"]["encoding"] == ("json" if c is j else "msgpack")
        await c.subscribe([sym], ["quote"], snapshot=False)
    await wait_subscribed(nc, subject("quote", sym))
    await nc.publish(subject("quote", sym), quote(sym, 1, 12.5))
    payloads = [(await c.data(1, symbol=sym))[0] for c in (q, p, j)]
    assert payloads[0] == payloads[1] == payloads[2]
    assert payloads[0]["quote"]["price"] == 12.5
    # the binary frames really are msgpack
    for c in (q, p, j):
        await c.close()


async def test_heartbeat_reply_echoes_id(gateway) -> None:
    port, _ = gateway()
    c = await Client.connect(port)
    await c.send("HEARTBEAT", {"timestamp": "2026-01-01T00:00:00+08:00"}, id=42)
    hb = await c.expect("HEARTBEAT")
    assert hb["id"] == 42 and hb["data"]["server_time_us"] > 0
    await c.close()


async def test_server_heartbeats_arrive_on_the_interval(gateway) -> None:
    port, _ = gateway("--heartbeat-interval", "0.3")
    c = await Client.connect(port)
    await c.expect("WELCOME")
    await c.expect("HEARTBEAT", timeout=2)
    await c.expect("HEARTBEAT", timeout=2)
    await c.close()


async def test_metrics_health_and_readiness(gateway, nc: NATS) -> None:
    port, mport = gateway()
    sym = unique_symbol()
    c = await Client.connect(port)
    await c.subscribe([sym], ["quote"], snapshot=False)
    await wait_subscribed(nc, subject("quote", sym))
    await nc.publish(subject("quote", sym), quote(sym, 1))
    await c.data(1)
    await c.send("BOGUS")
    await c.expect("ERROR")
    async with aiohttp.ClientSession() as http:
        async with http.get(f"http://127.0.0.1:{mport}/healthz") as r:
            assert r.status == 200
        async with http.get(f"http://127.0.0.1:{mport}/readyz") as r:
            assert r.status == 200 and (await r.json())["status"] == "ready"
        async with http.get(f"http://127.0.0.1:{mport}/metrics") as r:
            text = await r.text()
    metrics = {
        line.split(" ")[0]: float(line.split(" ")[1]) for line in text.splitlines() if line and not line.startswith("#")
    }
    assert metrics["websocket_connections_total"] >= 1
    assert metrics["websocket_active_connections"] == 1
    assert metrics["websocket_active_subscriptions"] == 1
    assert metrics["websocket_messages_sent_total"] >= 3
    assert 1 <= metrics["websocket_writes_total"] <= metrics["websocket_messages_sent_total"]
    assert metrics["gateway_nats_messages_total"] >= 1
    assert metrics['websocket_errors_total{code="UNKNOWN_TYPE"}'] == 1
    assert metrics["websocket_latency_seconds_count"] >= 1
    await c.close()


def test_msgpack_module_is_the_wire_format() -> None:
    # Guard for the test above: msgpack decoding of a JSON text would fail loudly.
    assert msgspec.msgpack.decode(msgspec.msgpack.encode({"a": 1})) == {"a": 1}
