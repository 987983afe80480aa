"""The gateway tells the truth about itself: a lost NATS connection, no source at all, events that
arrive too late to be live, and events on a subject that is not theirs."""

from __future__ import annotations

import asyncio
import json
import urllib.request

import nats
from argus_protocol import Quote, QuoteEvent, Trade, TradeEvent, encode_event, now_us
from eventfactory import BarPlayer, quote, subject, trade, unique_symbol
from nats.aio.client import Client as NATS
from natsserver import sync_subscriptions
from wsclient import Client


def get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def old_trade(symbol: str, seq: int, age_s: float) -> bytes:
    t = Trade(time="2026-11-23T10:00:00+08:00", price=10.0, volume=100, side="B", trade_id=str(seq))
    return encode_event(TradeEvent(symbol=symbol, source="test", seq=seq, ts=now_us() - int(age_s * 1e6), trade=t))


def old_quote(symbol: str, seq: int, age_s: float) -> bytes:
    q = Quote(price=10 + seq / 100, open=10, high=11, low=9, prev_close=10, volume=seq, amount=seq, timestamp="x")
    return encode_event(QuoteEvent(symbol=symbol, source="test", seq=seq, ts=now_us() - int(age_s * 1e6), quote=q))


async def test_a_nats_outage_is_the_gateways_own_status_and_readiness_rides_out_a_blip(
    own_nats, gateway, ingestor
) -> None:
    ingestor("mock", "--universe", "1", "--rate", "5", "--history", "0", url=own_nats.url)
    port, mport = gateway(url=own_nats.url, config={"server": {"nats_grace": 30}})
    c = await Client.connect(port)
    await c.subscribe(["000001.SZ"], ["quote"], snapshot=False)
    await c.data(2, timeout=15)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, own_nats.stop)
    down = await c.expect("STATUS", timeout=5, source="gateway")
    assert down["data"]["state"] == "stale" and "NATS" in down["data"]["reason"]
    status, body = await loop.run_in_executor(None, get, mport, "/readyz")
    assert status == 200 and "degraded" in body, "a blip shorter than nats_grace keeps the gateway in service"
    await asyncio.sleep(1.0)
    await loop.run_in_executor(None, own_nats.start)
    back = await c.expect("STATUS", timeout=15, source="gateway")
    assert back["data"]["state"] == "live"
    await c.data(2, timeout=15)
    # the source was never blamed for the gateway's own outage
    assert not [
        m for m in c.seen if m["type"] == "STATUS" and m["data"]["source"] == "mock" and m["data"]["state"] == "down"
    ]
    await c.close()


async def test_with_no_source_at_all_clients_and_operators_are_told(own_nats, gateway) -> None:
    port, mport = gateway(
        url=own_nats.url, config={"datasource": {"status_interval": 1}, "nats": {"subject_prefix": "elsewhere"}}
    )
    c = await Client.connect(port)
    await c.subscribe(["000001.SZ"], ["quote"], snapshot=False)
    st = await c.expect("STATUS", timeout=10, source="gateway")
    assert st["data"]["state"] == "down" and "'elsewhere'" in st["data"]["reason"]
    loop = asyncio.get_running_loop()
    _, body = await loop.run_in_executor(None, get, mport, "/readyz")
    assert "no source heard" in json.loads(body)["reason"]
    _, metrics = await loop.run_in_executor(None, get, mport, "/metrics")
    assert "gateway_sources_down 1.0" in metrics
    await c.close()


async def test_events_too_old_to_be_live_become_a_gap_and_the_newest_a_snapshot(gateway, nc: NATS) -> None:
    port, _ = gateway()
    sym = unique_symbol()
    c = await Client.connect(port)
    await c.subscribe([sym], ["quote", "trade"], snapshot=False)
    await sync_subscriptions(nc)
    await asyncio.sleep(0.2)
    await nc.publish(subject("trade", sym), trade(sym, 1))
    await nc.publish(subject("quote", sym), quote(sym, 1))
    for seq in range(2, 6):  # what NATS held back through an outage, delivered at once
        await nc.publish(subject("trade", sym), old_trade(sym, seq, 20))
        await nc.publish(subject("quote", sym), old_quote(sym, seq, 20))
    await nc.flush()
    await asyncio.sleep(0.6)
    await nc.publish(subject("trade", sym), trade(sym, 6))
    await nc.publish(subject("quote", sym), quote(sym, 6))
    got = await c.data(5, timeout=5)
    gaps = {m["data"]["type"]: m["data"] for m in c.seen if m["type"] == "GAP"}
    assert gaps["trade"]["reason"] == "late" and (gaps["trade"]["from_seq"], gaps["trade"]["to_seq"]) == (2, 5)
    assert (gaps["quote"]["from_seq"], gaps["quote"]["to_seq"]) == (2, 4)
    by_type = {t: [(d["seq"], bool(d.get("snapshot"))) for d in got if d["type"] == t] for t in ("trade", "quote")}
    assert by_type["trade"] == [(1, False), (6, False)]
    assert by_type["quote"] == [(1, False), (5, True), (6, False)], "the newest late quote comes as a snapshot"
    await c.close()


async def test_an_event_whose_payload_names_another_stream_is_dropped(gateway, nc: NATS) -> None:
    port, mport = gateway()
    sym, other = unique_symbol(), unique_symbol()
    c = await Client.connect(port)
    await c.subscribe([sym], ["trade"], snapshot=False)
    await sync_subscriptions(nc)
    await asyncio.sleep(0.2)
    await nc.publish(subject("trade", sym), trade(sym, 1))
    await nc.publish(subject("trade", sym), trade(other, 2))  # someone publishing where it should not
    await nc.publish(subject("trade", sym), quote(sym, 3))
    await nc.publish(subject("trade", sym), trade(sym, 2))
    got = await c.data(2, timeout=5)
    assert [(d["symbol"], d["type"], d["seq"]) for d in got] == [(sym, "trade", 1), (sym, "trade", 2)]
    await asyncio.sleep(0.2)
    assert not [m for m in c.seen if m["type"] == "GAP"]
    _, metrics = await asyncio.get_running_loop().run_in_executor(None, get, mport, "/metrics")
    assert 'websocket_dropped_messages_total{why="foreign"} 2.0' in metrics
    await c.close()


async def test_a_snapshot_the_store_cannot_give_is_retried_then_told_and_live_data_follows(own_nats, gateway) -> None:
    port, mport = gateway(url=own_nats.url)
    admin = await nats.connect(own_nats.url)
    js = admin.jetstream()
    await js.delete_stream("ARGUS_LAST")  # the newest-value store is gone (a node lost, an operator's slip)
    sym = unique_symbol()
    c = await Client.connect(port)
    await c.subscribe([sym], ["quote"], snapshot=True)
    told = await c.expect("STATUS", timeout=10)
    assert told["data"]["source"] == "gateway" and told["data"]["state"] == "stale"
    assert told["data"]["symbol"] == sym and "did not answer" in told["data"]["reason"]
    await admin.publish(subject("quote", sym), quote(sym, 1))
    await admin.flush()
    got = await c.data(1, timeout=5)
    assert got[0]["seq"] == 1 and not got[0].get("snapshot"), "the subscription itself carries on"
    _, metrics = get(mport, "/metrics")
    errors = [line for line in metrics.splitlines() if line.startswith("gateway_store_errors_total ")]
    assert errors and float(errors[0].split()[1]) >= 3, "each try counted: retried before telling"
    await c.close()
    await admin.close()


async def test_a_history_the_store_cannot_read_is_told_and_the_newest_bar_and_live_data_follow(
    own_nats, gateway
) -> None:
    port, _ = gateway(url=own_nats.url)
    admin = await nats.connect(own_nats.url)
    js = admin.jetstream()
    await js.delete_stream("ARGUS_KLINE")  # closed bars' store gone; the forming bar's (ARGUS_LAST) is not
    sym = unique_symbol()
    bars = BarPlayer(admin, "kline", sym)
    for i in range(3):
        await bars.bar(f"2026-01-05T09:3{i}:00+08:00")
    await bars.bar("2026-01-05T09:33:00+08:00", versions=2, close=False)  # forming, in ARGUS_LAST
    await admin.flush()
    await asyncio.sleep(0.3)
    c = await Client.connect(port)
    await c.subscribe([sym], ["kline"], periods=["1m"], history=10)
    replayed = await c.expect("REPLAYED", timeout=10)
    told = [m["data"] for m in c.seen if m["type"] == "STATUS"]
    assert told and told[0]["source"] == "gateway" and told[0]["state"] == "stale" and told[0]["symbol"] == sym
    assert "no history" in told[0]["reason"] and "newest value" in told[0]["reason"]
    got = [m["data"] for m in c.seen if m["type"] == "DATA" and m["data"].get("replay")]
    assert [d["kline"]["open_time"] for d in got] == ["2026-01-05T09:33:00+08:00"], "the forming bar still comes"
    assert replayed["data"]["streams"][f"kline:{sym}:1m"]["recovered"] is False
    await admin.close()
    await c.close()
