"""Demand announcements, source status and drain: the gateway's side of the control plane."""

from __future__ import annotations

import asyncio
import signal
import time

import msgspec
from argus_protocol import DemandAnnouncement, SourceStatus, Subjects, encode_msgpack, iso_now
from eventfactory import unique_symbol
from nats.aio.client import Client as NATS
from wsclient import Client

ann_dec = msgspec.msgpack.Decoder(DemandAnnouncement)


class Announcements:
    def __init__(self) -> None:
        self.items: list[DemandAnnouncement] = []

    async def on(self, msg) -> None:  # type: ignore[no-untyped-def]
        self.items.append(ann_dec.decode(msg.data))

    async def wait(self, pred, timeout: float = 2.0) -> DemandAnnouncement:  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for a in reversed(self.items):
                if pred(a):
                    return a
            await asyncio.sleep(0.02)
        raise TimeoutError(f"no matching announcement; last: {self.items[-1:]}")


async def test_gateway_announces_demand_on_change_on_query_and_withdraws_on_exit(gateway, nc: NATS, procs) -> None:
    anns = Announcements()
    await nc.subscribe(Subjects().demand_all(), cb=anns.on)
    port, _ = gateway()
    sym = unique_symbol("D")
    c = await Client.connect(port)
    t0 = time.monotonic()
    await c.subscribe([sym], ["quote", "kline"], periods=["5m"])
    a = await anns.wait(lambda a: f"quote:{sym}" in a.streams, timeout=1.0)
    assert time.monotonic() - t0 < 1.0
    assert f"kline:{sym}:5m" in a.streams and a.ttl > 0
    gw = a.gateway
    # an ingestor that (re)starts asks, and the gateway answers at once
    anns.items.clear()
    await nc.publish(Subjects().demand_query(), b"")
    await anns.wait(lambda a: a.gateway == gw and f"quote:{sym}" in a.streams, timeout=1.0)
    await c.send("UNSUBSCRIBE", {"data_types": ["quote"]})
    await c.expect("UNSUBSCRIBED")
    await anns.wait(lambda a: a.gateway == gw and f"quote:{sym}" not in a.streams and f"kline:{sym}:5m" in a.streams)
    await c.close()
    await anns.wait(lambda a: a.gateway == gw and not a.streams)
    # seq grows, so ingestors can ignore reordered announcements
    seqs = [a.seq for a in anns.items if a.gateway == gw]
    assert seqs == sorted(seqs)
    # a clean shutdown withdraws everything at once
    c2 = await Client.connect(port)
    await c2.subscribe([sym])
    await anns.wait(lambda a: a.gateway == gw and a.streams)
    anns.items.clear()
    procs[-1].proc.send_signal(signal.SIGTERM)
    await anns.wait(lambda a: a.gateway == gw and a.streams == [], timeout=10)
    await c2.close()


async def publish_status(nc: NATS, st: SourceStatus) -> None:
    await nc.publish(Subjects().status(st.source), encode_msgpack(st))
    await nc.flush()


async def test_source_status_reaches_the_right_clients_and_silence_means_down(gateway, nc: NATS) -> None:
    port, _ = gateway()
    src = f"src{int(time.time() * 1000) % 100000}"
    sym, other = unique_symbol("H"), unique_symbol("O")
    a, b = await Client.connect(port), await Client.connect(port)
    await a.subscribe([sym])
    await b.subscribe([other])
    await publish_status(nc, SourceStatus(source=src, state="live", since=iso_now(), interval=0.5))
    await publish_status(
        nc, SourceStatus(source=src, state="halted", since=iso_now(), symbol=sym, reason="suspended", interval=0.5)
    )
    st = await a.expect("STATUS", symbol=sym)
    assert st["data"]["state"] == "halted" and st["data"]["source"] == src and st["data"]["reason"] == "suspended"
    # a later subscriber to the halted symbol learns it at once
    c = await Client.connect(port)
    await c.subscribe([sym])
    assert (await c.expect("STATUS", symbol=sym))["data"]["state"] == "halted"
    # source-wide change: every subscribed client hears it
    await publish_status(
        nc, SourceStatus(source=src, state="stale", since=iso_now(), reason="no data for 30s", interval=0.5)
    )
    for x in (a, b, c):
        st = await x.expect("STATUS", source=src, state="stale")
        assert "symbol" not in st["data"]
    # the source goes quiet: after 3 missed heartbeats the gateway says it is down
    down = await b.expect("STATUS", timeout=5, source=src, state="down")
    assert "heartbeat" in down["data"]["reason"]
    # and it comes back
    await publish_status(nc, SourceStatus(source=src, state="live", since=iso_now(), interval=0.5))
    await b.expect("STATUS", source=src, state="live")
    for x in (a, b, c):
        await x.close()


async def test_sigterm_drains_status_then_close_1012_and_not_ready(gateway, procs) -> None:
    import aiohttp

    port, mport = gateway()
    c = await Client.connect(port)
    await c.subscribe(["000001.SZ"])
    procs[-1].proc.send_signal(signal.SIGTERM)
    st = await c.expect("STATUS", state="draining")
    assert st["data"]["reconnect_after_ms"] > 0
    async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{mport}/readyz") as r:
        assert r.status == 503
    assert await c.closed(timeout=10) == 1012
    await c.close()
    assert procs[-1].proc.wait(10) == 0
