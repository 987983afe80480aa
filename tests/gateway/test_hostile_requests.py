"""Requests a hostile client sends (issue 10, rows 2, 3, 5, 6 and 7 of its table): each is answered with
the right ERROR or close code, costs the gateway bounded memory and loop time, and leaves a normal
client receiving with bounded latency."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from typing import Any

import aiohttp
import msgspec
import pytest
from eventfactory import quote, subject, unique_symbol
from nats.aio.client import Client as NATS
from probes import log_problems, metric, rss_mb
from wsclient import Client, StalledClient


async def still_works(c: Client) -> None:
    await c.send("SUBSCRIPTIONS", id="alive")
    assert (await c.expect("SUBSCRIPTIONS"))["id"] == "alive"


class Watch:
    """A normal client on one stream while the test publishes it 20 times a second: its worst latency."""

    def __init__(self, c: Client, nc: NATS, sym: str) -> None:
        self.c, self.nc, self.sym = c, nc, sym
        self.worst = 0.0
        self.received = 0
        self._tasks: list[asyncio.Task[None]] = []

    @classmethod
    async def start(cls, port: int, nc: NATS) -> Watch:
        sym = unique_symbol("W")
        c = await Client.connect(port)
        await c.subscribe([sym], ["quote"], snapshot=False)
        w = cls(c, nc, sym)
        w._tasks = [asyncio.create_task(w._publish()), asyncio.create_task(w._read())]
        await asyncio.sleep(0.5)
        assert w.received, "the normal client gets nothing even before the attack"
        return w

    async def _publish(self) -> None:
        seq = 0
        while True:
            seq += 1
            await self.nc.publish(subject("quote", self.sym), quote(self.sym, seq))
            await asyncio.sleep(0.05)

    async def _read(self) -> None:
        while True:
            d = (await self.c.data(1, timeout=30, symbol=self.sym))[0]
            self.worst = max(self.worst, time.time() - d["ts"] / 1e6)
            self.received += 1
            self.c.seen.clear()

    async def stop(self) -> None:
        """Stop watching; the normal client still gets answers."""
        for t in self._tasks:
            t.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await t
        await still_works(self.c)
        await self.c.close()


def raw_frames(stalled: StalledClient, idle: float = 1.5) -> list[tuple[int, bytes]]:
    return [(f.opcode, f.payload) for f in stalled.frames(idle)]


def decoded(frames: list[tuple[int, bytes]]) -> list[dict[str, Any]]:
    return [json.loads(p) for op, p in frames if op == 1]


def close_code(frames: list[tuple[int, bytes]]) -> int | None:
    return next((int.from_bytes(p[:2], "big") for op, p in frames if op == 8 and len(p) >= 2), None)


def send_for(
    stalled: StalledClient, text: str, per_second: float, seconds: float, stop: threading.Event | None = None
) -> int:
    """Send `text` at a steady rate until the time is up, `stop` is set or the gateway closes; messages sent."""
    sent = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end and not (stop is not None and stop.is_set()):
        try:
            stalled.send_text(text)
        except OSError:
            break
        sent += 1
        time.sleep(1 / per_second)
    return sent


# ---------------------------------------------------------------- row 2: control replies are bounded


async def test_a_client_that_never_reads_flooding_invalid_subscribes_is_cut_off_with_memory_bounded(
    gateway: Any, nc: NATS, procs: list[Any]
) -> None:
    port, _ = gateway()
    watch = await Watch.start(port, nc)
    before = rss_mb(procs[-1])
    text = json.dumps({"type": "SUBSCRIBE", "data": {"symbols": [str(i) for i in range(9000)]}}, separators=(",", ":"))
    assert 60_000 < len(text) < 65_536  # under max_message_bytes, as in the report (9,000 invalid symbols)
    stalled = StalledClient(port)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, send_for, stalled, text, 40, 7.0)
    grown = rss_mb(procs[-1]) - before
    frames = await loop.run_in_executor(None, raw_frames, stalled)
    stalled.close()
    msgs = decoded(frames)
    assert grown < 25, f"gateway RSS grew {grown:.0f} MB (the report: 89 MB in 7 s)"
    assert max(len(p) for _, p in frames) < 4096, "no reply is larger than a few KB"
    errors = [m["data"] for m in msgs if m["type"] == "ERROR"]
    assert errors[0]["code"] == "INVALID_MESSAGE" and "at most 1000" in errors[0]["message"]
    assert any(e["code"] == "RATE_LIMITED" for e in errors)
    assert close_code(frames) == 1008  # each costs the tokens of 1,000 streams: refused, then closed
    assert watch.worst < 1.0, f"the normal client waited {watch.worst:.2f} s"
    await watch.stop()
    assert log_problems(procs[-1]) == []


async def test_replies_a_client_does_not_read_count_against_its_outbox_then_4008(
    gateway: Any, nc: NATS, procs: list[Any]
) -> None:
    port, mport = gateway()
    watch = await Watch.start(port, nc)
    stalled = StalledClient(port)
    syms = [unique_symbol("C") for _ in range(500)]
    stalled.send_text(json.dumps({"type": "SUBSCRIBE", "data": {"symbols": syms, "snapshot": False}}))
    await asyncio.sleep(0.5)
    before = rss_mb(procs[-1])
    # every SUBSCRIPTIONS reply lists 500 streams (~25 KB): 40 a second is within the rate limit, and
    # 400 of them (10 MB) are past the outbox bound and every socket buffer (the kernel's up to 4 MB)
    loop = asyncio.get_running_loop()
    stop = threading.Event()
    sender = loop.run_in_executor(None, send_for, stalled, json.dumps({"type": "SUBSCRIPTIONS"}), 40, 15.0, stop)
    while await metric(mport, "websocket_errors_total", 'code="SLOW_CONSUMER"') < 1:
        assert not sender.done(), "the gateway never closed the client"
        await asyncio.sleep(0.1)
    stop.set()
    sent = await sender
    grown = rss_mb(procs[-1]) - before
    frames = await loop.run_in_executor(None, raw_frames, stalled, 3.0)
    stalled.close()
    msgs = decoded(frames)
    replies = [m for m in msgs if m["type"] == "SUBSCRIPTIONS"]
    assert 0 < len(replies) < sent, "what did not fit was never written"
    # the close frame follows ERROR SLOW_CONSUMER, unless requests still unread turned the close into a reset
    if close_code(frames) is not None:
        assert close_code(frames) == 4008
        assert msgs[-1]["type"] == "ERROR" and msgs[-1]["data"]["code"] == "SLOW_CONSUMER"
    assert grown < 25, f"gateway RSS grew {grown:.0f} MB"
    assert watch.worst < 1.0
    await watch.stop()
    assert log_problems(procs[-1]) == []


async def test_rejections_are_listed_up_to_the_cap_then_counted_with_one_error_per_code(gateway: Any) -> None:
    port, _ = gateway()
    c = await Client.connect(port)
    bad = [f"BAD{i}" for i in range(450)]
    ack = await c.subscribe([*bad, "000001.XX", "000001.SZ"], ["quote", "depth"])
    data = ack["data"]
    assert data["added"] == ["quote:000001.SZ"]
    assert len(data["rejected"]) == 20 and data["rejected_count"] == 452
    errors = [await c.expect("ERROR"), await c.expect("ERROR")]
    assert {e["data"]["code"] for e in errors} == {"INVALID_SYMBOL", "UNSUPPORTED_DATA_TYPE"}
    assert any(e["data"]["message"].startswith("451 item(s) rejected") for e in errors)
    await c.close()


# ---------------------------------------------------------------- row 3: request cost


async def test_huge_msgpack_subscribes_cost_no_loop_time_another_client_would_notice(
    gateway: Any, nc: NATS, procs: list[Any]
) -> None:
    port, mport = gateway()
    watch = await Watch.start(port, nc)
    symbols = [f"{i:x}" for i in range(10_935)]
    types = ["quote", "tick", "trade", "kline"]
    periods = ["1m", "5m", "15m", "30m", "60m", "1d"]
    raw = msgspec.msgpack.encode(
        {"type": "SUBSCRIBE", "data": {"symbols": symbols, "data_types": types, "periods": periods}}
    )
    assert len(raw) < 65_536  # 10,935 symbols x 9 streams in one message, as in the report
    attacker = await Client.connect(port, "/?encoding=msgpack", binary=True)
    await attacker.expect("WELCOME")
    worst_health = 0.0
    async with aiohttp.ClientSession() as http:
        for _ in range(8):
            await attacker.ws.send_bytes(raw)
        for _ in range(10):
            t0 = time.monotonic()
            async with http.get(f"http://127.0.0.1:{mport}/healthz") as r:
                assert r.status == 200
            worst_health = max(worst_health, time.monotonic() - t0)
            await asyncio.sleep(0.05)
    first = await attacker.expect("ERROR")
    assert first["data"]["code"] == "INVALID_MESSAGE" and "at most 1000 per request" in first["data"]["message"]
    assert (await attacker.expect("ERROR", code="RATE_LIMITED"))["data"]["code"] == "RATE_LIMITED"
    await asyncio.sleep(0.5)
    assert watch.worst < 1.0, f"another client's DATA took {watch.worst:.2f} s (the report: 2.3 s)"
    assert worst_health < 1.0, f"/healthz took {worst_health:.2f} s (the report: 1.6 s)"
    await attacker.close()
    await watch.stop()


async def test_requests_are_charged_per_stream(gateway: Any) -> None:
    port, _ = gateway()
    c = await Client.connect(port)
    welcome = await c.expect("WELCOME")
    assert welcome["data"]["limits"]["max_items_per_request"] == 1000  # so a client can split its requests
    # 1,000 streams each: 21 tokens of a 100-token burst, so the fifth in a row is refused
    for i in range(5):
        await c.send("UNSUBSCRIBE", {"symbols": [f"{n:06d}.SZ" for n in range(1000)]}, id=i)
    replies = [await c.recv() for _ in range(5)]
    kinds = [(m["type"], m["data"].get("code")) for m in replies]
    assert kinds[:4] == [("UNSUBSCRIBED", None)] * 4 and kinds[4] == ("ERROR", "RATE_LIMITED")
    await asyncio.sleep(0.6)  # tokens come back at 50 a second
    await still_works(c)
    await c.close()


# ---------------------------------------------------------------- row 5: malformed shapes


DEEP = "[" * 20_000 + "]" * 20_000
MALFORMED_JSON = [
    '{"type":"SUBSCRIBE","data":{"symbols":["000001.SZ"],"data_types":[[1]]}}',
    '{"type":"SUBSCRIBE","data":{"symbols":["000001.SZ"],"data_types":["kline"],"periods":[{}]}}',
    '{"type":"SUBSCRIBE","data":{"symbols":' + DEEP + "}}",
    '{"type":"SUBSCRIBE","data":{"symbols":["000001.SZ"],"history":' + "9" * 40 + "}}",
    '{"type":"SUBSCRIBE","data":{"symbols":["000001.SZ"],"resume":{"quote:000001.SZ":' + "9" * 40 + "}}}",
    '{"type":"SUBSCRIBE","id":' + "9" * 40 + ',"data":{"symbols":["000001.SZ"]}}',
    '{"type":"SUBSCRIBE","id":"' + "x" * 200 + '","data":{"symbols":["000001.SZ"]}}',
    '{"type":"SUBSCRIBE","data":{"symbols":[1e999]}}',
    '{"type":"UNSUBSCRIBE","data":{"data_types":[{"a":[1]}]}}',
    '{"type":"AUTH","data":{"token":[1]}}',
    '{"type":"HEARTBEAT","data":[]}',
    '{"type":"SUBSCRIBE","data":"' + "\\ud800" + '"}',
]


@pytest.mark.parametrize("raw", MALFORMED_JSON, ids=range(len(MALFORMED_JSON)))
async def test_malformed_json_shapes_get_invalid_message_and_the_connection_carries_on(
    gateway: Any, procs: list[Any], raw: str
) -> None:
    port, _ = gateway()
    c = await Client.connect(port)
    await c.expect("WELCOME")
    await c.ws.send_str(raw)
    err = await c.expect("ERROR")
    assert err["data"]["code"] == "INVALID_MESSAGE", err
    await still_works(c)
    await c.close()
    assert log_problems(procs[-1]) == []


MALFORMED_MSGPACK = [
    b"\x82\xa4type\xa4AUTH\xa4data\x81\xa5token\xa3\xff\xfe\xfd",  # a string that is not UTF-8
    msgspec.msgpack.encode({"type": "SUBSCRIBE", "data": msgspec.msgpack.Ext(7, b"\x00" * 16)}),
    msgspec.msgpack.encode({"type": msgspec.msgpack.Ext(1, b"x"), "data": {}}),
    msgspec.msgpack.encode(
        {"type": "SUBSCRIBE", "data": {"symbols": ["000001.SZ"], "snapshot": msgspec.msgpack.Ext(-1, b"\x00" * 4)}}
    ),
    msgspec.msgpack.encode({"type": "SUBSCRIBE", "id": 2**64 - 1, "data": {"symbols": ["000001.SZ"]}}),
    b"\x91" * 5000 + b"\xc0",  # arrays 5,000 deep
    b"\xdd\xff\xff\xff\xff",  # an array claiming 4 billion items
]


@pytest.mark.parametrize("raw", MALFORMED_MSGPACK, ids=range(len(MALFORMED_MSGPACK)))
async def test_malformed_msgpack_shapes_get_invalid_message_and_the_connection_carries_on(
    gateway: Any, procs: list[Any], raw: bytes
) -> None:
    port, _ = gateway()
    c = await Client.connect(port, "/?encoding=msgpack", binary=True)
    await c.expect("WELCOME")
    await c.ws.send_bytes(raw)
    err = await c.expect("ERROR")
    assert err["data"]["code"] == "INVALID_MESSAGE", err
    await still_works(c)
    await c.close()
    assert log_problems(procs[-1]) == []


async def test_odd_symbol_items_are_rejected_one_by_one(gateway: Any, procs: list[Any]) -> None:
    port, _ = gateway()
    c = await Client.connect(port, "/?encoding=msgpack", binary=True)
    items: list[Any] = [[1], {"a": 1}, None, True, 2**63, msgspec.msgpack.Ext(3, b"ab"), [[[["x"]]]], "000001.SZ"]
    ack = await c.subscribe(items, ["quote"], snapshot=False)
    assert ack["data"]["added"] == ["quote:000001.SZ"]
    assert [r["code"] for r in ack["data"]["rejected"]] == ["INVALID_SYMBOL"] * 7
    assert {r["symbol"] for r in ack["data"]["rejected"]} >= {"<list>", "<dict>", "<Ext>", "<NoneType>"}
    await still_works(c)
    await c.close()
    assert log_problems(procs[-1]) == []


# ---------------------------------------------------------------- row 6: oversized messages


async def test_a_burst_of_oversized_messages_is_rate_limited_then_closed(gateway: Any, procs: list[Any]) -> None:
    port, _ = gateway()
    neighbour = await Client.connect(port)
    await neighbour.expect("WELCOME")
    c = await Client.connect(port)
    await c.expect("WELCOME")
    big = json.dumps({"type": "SUBSCRIBE", "data": {"symbols": ["000001.SZ"] * 6000}})
    assert 65_536 < len(big) < 1_048_576
    with contextlib.suppress(ConnectionError):
        for _ in range(300):
            await c.ws.send_str(big)
    assert await c.closed(timeout=10) == 1008
    codes = [m["data"]["code"] for m in c.seen if m["type"] == "ERROR"]
    assert 1 <= codes.count("MESSAGE_TOO_LARGE") <= 10, codes  # the report: 300 replies and 300 log lines
    assert "RATE_LIMITED" in codes
    logged = [ln for ln in procs[-1].log().splitlines() if '"client error"' in ln]
    assert len(logged) < 20
    await still_works(neighbour)
    await neighbour.close()
    await c.close()


# ---------------------------------------------------------------- row 7: one spelling per instrument


async def test_only_canonical_spellings_are_accepted(gateway: Any) -> None:
    port, _ = gateway()
    c = await Client.connect(port)
    ack = await c.subscribe(
        ["aapl.US", "700.HK", "0700.HK", "00700.HK", "AAPL.US", "RB2501.SF", "rb2501.SF", "if2412.IF", "1.SZ"],
        ["quote"],
        snapshot=False,
    )
    assert sorted(ack["data"]["added"]) == ["quote:00700.HK", "quote:AAPL.US", "quote:rb2501.SF"]
    hints = {r["symbol"]: r["message"] for r in ack["data"]["rejected"]}
    assert hints == {
        "aapl.US": "'aapl.US' is spelled 'AAPL.US'",
        "700.HK": "'700.HK' is spelled '00700.HK'",
        "0700.HK": "'0700.HK' is spelled '00700.HK'",
        "RB2501.SF": "'RB2501.SF' is spelled 'rb2501.SF'",
        "if2412.IF": "'if2412.IF' is spelled 'IF2412.IF'",
        "1.SZ": "'1.SZ' is spelled '000001.SZ'",
    }
    assert {r["code"] for r in ack["data"]["rejected"]} == {"INVALID_SYMBOL"}
    await c.close()
