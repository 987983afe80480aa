"""Every ERROR code a client can trigger: the reply, the connection carrying on, others unharmed."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time

import aiohttp
import jwt
import msgspec
import pytest
from eventfactory import quote, subject, unique_symbol
from nats.aio.client import Client as NATS
from wsclient import Client

SECRET = "test-secret-of-at-least-32-bytes-for-hs256"


def make_jwt(claims: dict[str, object], secret: str) -> str:
    return jwt.encode(claims, secret, algorithm="HS256")


async def still_works(c: Client) -> None:
    await c.send("SUBSCRIPTIONS", id="alive")
    reply = await c.expect("SUBSCRIPTIONS")
    assert reply["id"] == "alive"


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("{not json", "INVALID_MESSAGE"),
        ("[1, 2, 3]", "INVALID_MESSAGE"),
        ('{"data": {}}', "INVALID_MESSAGE"),
        ('{"type": "SUBSCRIBE", "data": {"symbols": "000001.SZ"}}', "INVALID_MESSAGE"),
        ('{"type": "SUBSCRIBE", "data": {}}', "INVALID_MESSAGE"),
        ('{"type": "SUBSCRIBE", "data": {"symbols": ["000001.SZ"], "snapshot": "yes"}}', "INVALID_MESSAGE"),
        ('{"type": "TRADE_NOW", "data": {}}', "UNKNOWN_TYPE"),
        ('{"type": 7}', "INVALID_MESSAGE"),
    ],
)
async def test_malformed_and_unknown_messages(gateway, raw: str, code: str) -> None:
    port, _ = gateway()
    c = await Client.connect(port)
    await c.expect("WELCOME")
    await c.ws.send_str(raw)
    err = await c.expect("ERROR")
    assert err["data"]["code"] == code and err["data"]["message"]
    await still_works(c)
    await c.close()


async def test_error_echoes_request_id(gateway) -> None:
    port, _ = gateway()
    c = await Client.connect(port)
    await c.send("NOPE", {}, id="req-1")
    err = await c.expect("ERROR")
    assert err["id"] == "req-1" and err["data"]["id"] == "req-1" and err["data"]["code"] == "UNKNOWN_TYPE"
    await c.close()


async def test_bad_symbols_and_types_are_rejected_per_item(gateway, nc: NATS) -> None:
    port, _ = gateway()
    good = unique_symbol()
    c = await Client.connect(port)
    bad = ["000001", "quote.>.SZ", "*.SZ", "000001.XX", "", " 000001.SZ", 5]
    await c.send(
        "SUBSCRIBE", {"symbols": [good, *bad], "data_types": ["quote", "depth", "kline"], "periods": ["1m", "7m"]}, id=3
    )
    ack = await c.expect("SUBSCRIBED")
    assert sorted(ack["data"]["added"]) == [f"kline:{good}:1m", f"quote:{good}"]
    codes = [r["code"] for r in ack["data"]["rejected"]]
    assert codes.count("INVALID_SYMBOL") == len(bad)
    assert codes.count("UNSUPPORTED_DATA_TYPE") == 2  # "depth" and period "7m"
    errors = {e["data"]["code"] for e in [await c.expect("ERROR"), await c.expect("ERROR")]}
    assert errors == {"INVALID_SYMBOL", "UNSUPPORTED_DATA_TYPE"}
    # the good part of the request is live
    await nc.flush()
    await asyncio.sleep(0.15)
    await nc.publish(subject("quote", good), quote(good, 1))
    assert (await c.data(1, symbol=good))[0]["seq"] == 1
    await c.close()


async def test_too_many_subscriptions(gateway) -> None:
    port, _ = gateway("--max-subscriptions", "3")
    c = await Client.connect(port)
    await c.send("SUBSCRIBE", {"symbols": ["000001.SZ", "000002.SZ", "000003.SZ", "000004.SZ", "000005.SZ"]})
    ack = await c.expect("SUBSCRIBED")
    assert len(ack["data"]["added"]) == 3 and ack["data"]["total"] == 3
    assert [r["code"] for r in ack["data"]["rejected"]] == ["TOO_MANY_SUBSCRIPTIONS"] * 2
    assert (await c.expect("ERROR"))["data"]["code"] == "TOO_MANY_SUBSCRIPTIONS"
    await c.send("UNSUBSCRIBE", {"symbols": ["000001.SZ"]})
    await c.expect("UNSUBSCRIBED")
    ack = await c.subscribe(["000009.SZ"])
    assert ack["data"]["added"] == ["quote:000009.SZ"] and ack["data"]["rejected"] == []
    await c.close()


async def test_message_too_large_keeps_the_connection_and_huge_frame_closes_1009(gateway) -> None:
    port, _ = gateway()
    c = await Client.connect(port)
    await c.expect("WELCOME")
    big = json.dumps({"type": "SUBSCRIBE", "data": {"symbols": ["000001.SZ"] * 8000}})
    assert 65536 < len(big) < 1048576
    await c.ws.send_str(big)
    err = await c.expect("ERROR")
    assert err["data"]["code"] == "MESSAGE_TOO_LARGE"
    await still_works(c)
    other = await Client.connect(port)
    with contextlib.suppress(ConnectionError):  # the gateway may close before the last byte is sent
        await c.ws.send_str("x" * (1048576 + 1024))
    assert await c.closed() == 1009
    await still_works(other)
    await other.close()
    await c.close()


async def test_flood_is_rate_limited_then_closed_1008(gateway) -> None:
    port, _ = gateway()
    c = await Client.connect(port)
    await c.expect("WELCOME")
    for _ in range(112):  # burst of 100 allowed, then refused (fewer strikes than the close threshold)
        await c.send("HEARTBEAT")
    err = await c.expect("ERROR", timeout=5)
    assert err["data"]["code"] == "RATE_LIMITED"
    await asyncio.sleep(0.5)  # tokens refill: the connection works again
    await still_works(c)
    neighbour = await Client.connect(port)
    for _ in range(400):
        await c.send("HEARTBEAT")
    assert await c.closed() == 1008
    await still_works(neighbour)
    await neighbour.close()
    await c.close()


async def test_connection_limit_closes_1013(gateway) -> None:
    port, _ = gateway("--max-connections", "2")
    a, b = await Client.connect(port), await Client.connect(port)
    await a.expect("WELCOME")
    await b.expect("WELCOME")
    c = await Client.connect(port)
    err = await c.expect("ERROR")
    assert err["data"]["code"] == "UNAVAILABLE"
    assert await c.closed() == 1013
    await c.close()
    await a.close()
    await asyncio.sleep(0.2)
    d = await Client.connect(port)
    await d.expect("WELCOME")
    await still_works(b)
    await b.close()
    await d.close()


async def test_auth_with_api_key_header_query_and_auth_message(gateway) -> None:
    port, _ = gateway("--enable-auth", env={"ARGUS_API_KEYS": "k1,k2"})
    ok = await Client.connect(port, headers={"Authorization": "Bearer k1"})
    assert (await ok.expect("WELCOME"))["data"]["auth_required"] is True
    await still_works(ok)
    q = await Client.connect(port, "/?token=k2")
    await q.expect("WELCOME")
    await still_works(q)
    m = await Client.connect(port)
    await m.expect("WELCOME")
    await m.send("AUTH", {"token": "k2"}, id="a")
    assert (await m.expect("AUTHENTICATED"))["id"] == "a"
    await still_works(m)
    bad = await Client.connect(port, headers={"Authorization": "Bearer nope"})
    err = await bad.expect("ERROR")
    assert err["data"]["code"] == "UNAUTHORIZED"
    assert await bad.closed() == 1008
    first = await Client.connect(port)
    await first.expect("WELCOME")
    await first.send("SUBSCRIBE", {"symbols": ["000001.SZ"]})
    assert (await first.expect("ERROR"))["data"]["code"] == "UNAUTHORIZED"
    assert await first.closed() == 1008
    for c in (ok, q, m, bad, first):
        await c.close()


async def test_auth_timeout_expired_and_entitlements(gateway) -> None:
    port, _ = gateway("--enable-auth", env={"ARGUS_JWT_SECRET": SECRET}, config={"security": {"jwt_leeway": 0}})
    silent = await Client.connect(port)
    await silent.expect("WELCOME")
    # no AUTH: the default 10 s wait is long for a test, so check the expired token path first
    expired = make_jwt({"sub": "u1", "exp": int(time.time()) - 5}, SECRET)
    e = await Client.connect(port, headers={"Authorization": f"Bearer {expired}"})
    err = await e.expect("ERROR")
    assert err["data"]["code"] == "UNAUTHORIZED" and "expired" in err["data"]["message"]
    assert await e.closed() == 1008
    forged = make_jwt({"sub": "u1"}, "another-secret-also-32-bytes-long!!")
    f = await Client.connect(port, f"/?token={forged}")
    assert "signature" in (await f.expect("ERROR"))["data"]["message"]
    short = make_jwt({"sub": "u2", "exp": int(time.time()) + 2, "markets": ["SH"], "data_types": ["quote"]}, SECRET)
    s = await Client.connect(port, headers={"Authorization": f"Bearer {short}"})
    await s.expect("WELCOME")
    await s.send("SUBSCRIBE", {"symbols": ["600000.SH", "000001.SZ"], "data_types": ["quote", "trade"]})
    ack = await s.expect("SUBSCRIBED")
    assert ack["data"]["added"] == ["quote:600000.SH"]
    assert sorted((r["symbol"], r["data_type"]) for r in ack["data"]["rejected"]) == [
        ("000001.SZ", "quote"),
        ("000001.SZ", "trade"),
        ("600000.SH", "trade"),
    ]
    assert {r["code"] for r in ack["data"]["rejected"]} == {"FORBIDDEN"}
    assert (await s.expect("ERROR"))["data"]["code"] == "FORBIDDEN"
    # the token runs out mid-session: told why, then closed
    err = await s.expect("ERROR", timeout=5)
    assert err["data"]["code"] == "UNAUTHORIZED" and "expired" in err["data"]["message"]
    assert await s.closed() == 1008
    assert await silent.closed(timeout=15) == 1008
    assert any(m["type"] == "ERROR" and m["data"]["code"] == "UNAUTHORIZED" for m in silent.seen)
    for c in (silent, e, f, s):
        await c.close()


async def test_disallowed_origin_is_refused_at_handshake(gateway, tmp_path) -> None:
    cfg = tmp_path / "origins.yaml"
    cfg.write_text('security:\n  allowed_origins: ["https://dash.example"]\n')
    port, _ = gateway("--config", str(cfg))
    with pytest.raises(aiohttp.WSServerHandshakeError) as e:
        await Client.connect(port, headers={"Origin": "https://evil.example"})
    assert e.value.status == 403
    ok = await Client.connect(port, headers={"Origin": "https://dash.example"})
    await ok.expect("WELCOME")
    await ok.close()


async def test_msgpack_garbage_gets_invalid_message(gateway) -> None:
    port, _ = gateway()
    c = await Client.connect(port, "/?encoding=msgpack", binary=True)
    await c.expect("WELCOME")
    await c.ws.send_bytes(b"\xc1\xff\x00")
    assert (await c.expect("ERROR"))["data"]["code"] == "INVALID_MESSAGE"
    await c.ws.send_bytes(msgspec.msgpack.encode({"type": "SUBSCRIPTIONS"}))
    await c.expect("SUBSCRIPTIONS")
    await c.close()
