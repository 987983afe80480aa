"""Connection-level limits (issue 10, deliverable 6 and the half-sent-request row): a header deadline,
connections per address (X-Forwarded-For believed only from trusted proxies), and a cap on sessions
waiting for AUTH."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from typing import Any

import aiohttp
from probes import log_problems, metric
from wsclient import Client


def half_sent(port: int, source: str = "127.0.0.1") -> socket.socket:
    s = socket.socket()
    s.bind((source, 0))
    s.connect(("127.0.0.1", port))
    s.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n")  # never finished
    return s


def closed_by_peer(s: socket.socket, timeout: float) -> bytes | None:
    """What the gateway sent before closing, or None if the socket is still open after `timeout`."""
    s.settimeout(timeout)
    got = b""
    try:
        while True:
            chunk = s.recv(4096)
            if not chunk:
                return got
            got += chunk
    except TimeoutError:
        return None
    except ConnectionResetError:
        return got


async def connect_from(port: int, source: str, **kw: Any) -> Client:
    http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(local_addr=(source, 0)))
    try:
        ws = await http.ws_connect(f"http://127.0.0.1:{port}/", **kw)
    except Exception:
        await http.close()
        raise
    return Client(ws, http, False)


async def test_half_sent_requests_are_closed_at_the_header_deadline(gateway: Any, procs: list[Any]) -> None:
    port, _ = gateway(config={"server": {"handshake_timeout": 2}})
    loop = asyncio.get_running_loop()
    socks = [half_sent(port) for _ in range(50)]
    idle = socket.create_connection(("127.0.0.1", port))  # connects and says nothing at all
    plain = socket.create_connection(("127.0.0.1", port))
    plain.sendall(b"GET /nothing-here HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")  # answered, then kept alive
    c = await Client.connect(port)  # meanwhile a real client is served
    await c.expect("WELCOME")
    t0 = time.monotonic()
    results = await asyncio.gather(*(loop.run_in_executor(None, closed_by_peer, s, 8.0) for s in [*socks, idle]))
    assert all(r is not None for r in results), "a half-sent request is still open after 8 s"
    assert time.monotonic() - t0 < 6  # the report: all 50 still open after 25 s
    answer = await loop.run_in_executor(None, closed_by_peer, plain, 8.0)
    assert answer is not None and answer.startswith(b"HTTP/1.1 404"), "an idle keep-alive is closed too"
    await c.send("HEARTBEAT")
    await c.expect("HEARTBEAT")  # an upgraded session is not subject to the header deadline
    for s in [*socks, idle, plain]:
        s.close()
    await c.close()
    assert log_problems(procs[-1]) == []


async def test_connections_per_address_are_limited_from_accept(gateway: Any) -> None:
    port, mport = gateway(config={"server": {"max_connections_per_ip": 5}})
    loop = asyncio.get_running_loop()
    socks = [half_sent(port) for _ in range(5)]
    sixth = half_sent(port)
    answer = await loop.run_in_executor(None, closed_by_peer, sixth, 3.0)
    assert answer is not None and answer.startswith(b"HTTP/1.1 429")
    # another address is not affected; the first one gets room back as its connections go
    other = await connect_from(port, "127.0.0.2")
    await other.expect("WELCOME")
    for s in socks:
        s.close()
    await asyncio.sleep(0.3)
    again = await Client.connect(port)
    await again.expect("WELCOME")
    async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{mport}/metrics") as r:
        assert 'gateway_refused_connections_total{why="per_ip"} 1.0' in await r.text()
    for c in (other, again):
        await c.close()
    sixth.close()


async def test_forwarded_for_is_believed_only_from_trusted_proxies(gateway: Any, procs: list[Any]) -> None:
    port, _ = gateway(config={"server": {"max_connections_per_ip": 2, "trusted_proxies": ["127.0.0.1/32"]}})
    via = {"X-Forwarded-For": "203.0.113.5"}
    a, b = await Client.connect(port, headers=via), await Client.connect(port, headers=via)
    for c in (a, b):
        await c.expect("WELCOME")
    third = await Client.connect(port, headers={"X-Forwarded-For": "198.51.100.1, 203.0.113.5"})  # forged hop first
    err = await third.expect("ERROR")
    assert err["data"]["code"] == "UNAVAILABLE" and "per address" in err["data"]["message"]
    assert await third.closed() == 1013
    other = await Client.connect(port, headers={"X-Forwarded-For": "203.0.113.6"})
    await other.expect("WELCOME")
    assert '"remote":"203.0.113.5"' in procs[-1].log()
    # 127.0.0.2 is no proxy: its X-Forwarded-For is ignored and it is limited as itself
    spoofers = [await connect_from(port, "127.0.0.2", headers={"X-Forwarded-For": f"192.0.2.{i}"}) for i in range(2)]
    for c in spoofers:
        await c.expect("WELCOME")
    try:
        await connect_from(port, "127.0.0.2", headers={"X-Forwarded-For": "192.0.2.99"})
        raise AssertionError("a third connection from 127.0.0.2 was accepted")
    except aiohttp.WSServerHandshakeError as e:
        assert e.status == 429
    for c in (a, b, third, other, *spoofers):
        await c.close()


async def test_sessions_waiting_for_auth_are_capped(gateway: Any) -> None:
    port, _ = gateway("--enable-auth", env={"ARGUS_API_KEYS": "k1"}, config={"security": {"max_unauthenticated": 3}})
    waiting = [await Client.connect(port) for _ in range(3)]
    for c in waiting:
        await c.expect("WELCOME")
    fourth = await Client.connect(port)
    err = await fourth.expect("ERROR")
    assert err["data"]["code"] == "UNAVAILABLE" and "authenticate" in err["data"]["message"]
    assert await fourth.closed() == 1013
    with_token = await Client.connect(port, headers={"Authorization": "Bearer k1"})  # not waiting: not counted
    await with_token.expect("WELCOME")
    await waiting[0].send("AUTH", {"token": "k1"})
    await waiting[0].expect("AUTHENTICATED")
    fifth = await Client.connect(port)
    await fifth.expect("WELCOME")
    await fifth.send("AUTH", {"token": "k1"})
    await fifth.expect("AUTHENTICATED")
    for c in (*waiting, fourth, with_token, fifth):
        await c.close()


async def test_a_peer_that_stops_answering_pings_is_closed_and_one_that_answers_stays(
    gateway: Any, procs: list[Any]
) -> None:
    """One ping sweep for every connection: a client silent for an interval gets a WebSocket PING;
    one that does not answer is closed 1008 half an interval later, one whose library answers (or
    that sends anything) stays however long it is otherwise silent."""
    port, mport = gateway(config={"server": {"heartbeat_interval": 1.0}})
    answers = await Client.connect(port)  # aiohttp answers pings by itself, as it reads
    mute = await Client.connect(port, autoping=False)  # reads everything, answers nothing
    await answers.expect("WELCOME")
    await mute.expect("WELCOME")

    async def read_answers() -> None:
        async for msg in answers.ws:
            answers.seen.append(json.loads(msg.data))

    reading = asyncio.create_task(read_answers())
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    pings = 0
    while True:
        msg = await mute.ws.receive(timeout=6.0)
        if msg.type == aiohttp.WSMsgType.PING:
            pings += 1
        elif msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
            break
    waited = loop.time() - t0
    assert pings >= 1 and mute.ws.close_code == 1008
    assert 1.0 <= waited < 4.0, waited  # pinged after 1-1.5 s of silence, closed 0.5 s later
    await asyncio.sleep(2.0)  # several more sweeps: the answering client is pinged, not closed
    await answers.send("HEARTBEAT", id=1)
    for _ in range(50):
        if any(m.get("id") == 1 for m in answers.seen):
            break
        await asyncio.sleep(0.1)
    assert [m["type"] for m in answers.seen if m.get("id") == 1] == ["HEARTBEAT"]
    assert not answers.ws.closed
    assert await metric(mport, "websocket_disconnects_total", 'reason="ping timeout"') == 1
    # and a client's own ping is answered with its payload
    await mute.close()
    raw = await Client.connect(port, autoping=False)
    await raw.expect("WELCOME")
    await raw.ws.ping(b"are you there")
    while (msg := await raw.ws.receive(timeout=5.0)).type != aiohttp.WSMsgType.PONG:
        pass
    assert msg.data == b"are you there"
    assert log_problems(procs[-1]) == []
    await raw.close()
    await answers.close()
    await reading
