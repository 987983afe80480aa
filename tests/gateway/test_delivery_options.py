"""Per-connection delivery options (PROTOCOL.md §1): their exact wire shape, next to plain clients."""

from __future__ import annotations

import asyncio
import json
import time
from itertools import pairwise
from pathlib import Path

import aiohttp
import msgspec
import pytest
from eventfactory import quote, subject, trade, unique_symbol
from nats.aio.client import Client as NATS
from wsclient import Client, RawClient, RawFrame

DEFLATE_OFFER = {"Sec-WebSocket-Extensions": "permessage-deflate; client_max_window_bits"}


def deflate_allowed(tmp_path: Path) -> str:
    cfg = tmp_path / "deflate.yaml"
    cfg.write_text("server:\n  permessage_deflate: true\n")
    return str(cfg)


def subscribe_msg(symbols: list[str], types: list[str]) -> str:
    return json.dumps({"type": "SUBSCRIBE", "data": {"symbols": symbols, "data_types": types, "snapshot": False}})


async def raw_frames(client: RawClient, idle: float = 1.0) -> list[RawFrame]:
    return await asyncio.get_running_loop().run_in_executor(None, client.frames, idle)


async def burst(nc: NATS, sym: str, n: int) -> None:
    """n quotes and n trades published back to back: they reach the gateway in one read."""
    for seq in range(1, n + 1):
        await nc.publish(subject("quote", sym), quote(sym, seq, 10 + seq / 100))
        await nc.publish(subject("trade", sym), trade(sym, seq))
    await nc.flush()


async def test_batch_puts_a_turns_data_in_one_json_array_and_leaves_control_messages_single(gateway, nc: NATS) -> None:
    port, _ = gateway()
    sym = unique_symbol("B")
    raw = RawClient(port, "/?batch=1")
    raw.send_text(subscribe_msg([sym], ["quote", "trade"]))
    plain = await Client.connect(port)
    await plain.subscribe([sym], ["quote", "trade"], snapshot=False)
    await asyncio.sleep(0.3)
    await burst(nc, sym, 20)

    frames = [f.message() for f in await raw_frames(raw)]
    raw.close()
    welcome, subscribed, *rest = frames
    assert welcome["type"] == "WELCOME" and welcome["data"]["options"]["batch"] is True
    assert subscribed["type"] == "SUBSCRIBED"
    assert rest and all(isinstance(f, list) for f in rest), "every later frame is an array of DATA envelopes"
    envelopes = [e for f in rest for e in f]
    assert all(e["type"] == "DATA" and "timestamp" in e for e in envelopes)
    assert max(len(f) for f in rest) > 1, "a burst shares frames"
    assert len(rest) < len(envelopes)
    for kind in ("quote", "trade"):
        assert [e["data"]["seq"] for e in envelopes if e["data"]["type"] == kind] == list(range(1, 21))
    # the plain client beside it still gets one envelope per frame, and the same events
    got = await plain.data(40)
    assert [(d["type"], d["seq"]) for d in got] == [(e["data"]["type"], e["data"]["seq"]) for e in envelopes]
    await plain.close()


async def test_batch_with_msgpack_sends_msgpack_arrays(gateway, nc: NATS) -> None:
    port, _ = gateway()
    sym = unique_symbol("M")
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(f"http://127.0.0.1:{port}/?encoding=msgpack&batch=1") as ws,
    ):
        welcome = msgspec.msgpack.decode((await ws.receive(timeout=5)).data)
        assert welcome["type"] == "WELCOME" and welcome["data"]["options"]["batch"] is True
        await ws.send_bytes(
            msgspec.msgpack.encode(
                {"type": "SUBSCRIBE", "data": {"symbols": [sym], "data_types": ["trade"], "snapshot": False}}
            )
        )
        msg = await ws.receive(timeout=5)
        assert msg.type == aiohttp.WSMsgType.BINARY
        assert msgspec.msgpack.decode(msg.data)["type"] == "SUBSCRIBED"
        await asyncio.sleep(0.2)
        for seq in range(1, 31):
            await nc.publish(subject("trade", sym), trade(sym, seq))
        await nc.flush()
        seqs: list[int] = []
        sizes: list[int] = []
        while len(seqs) < 30:
            msg = await ws.receive(timeout=5)
            assert msg.type == aiohttp.WSMsgType.BINARY
            batch = msgspec.msgpack.decode(msg.data)
            assert isinstance(batch, list)
            sizes.append(len(batch))
            for env in batch:
                assert env["type"] == "DATA" and env["data"]["symbol"] == sym
                seqs.append(env["data"]["seq"])
        assert seqs == list(range(1, 31))
        assert max(sizes) > 1


async def test_conflate_ms_sends_at_most_one_quote_per_interval_always_the_newest_and_every_trade(
    gateway, nc: NATS
) -> None:
    port, _ = gateway()
    sym = unique_symbol("C")
    conflated = await Client.connect(port, "/?conflate_ms=300")
    welcome = await conflated.expect("WELCOME")
    assert welcome["data"]["options"]["conflate_ms"] == 300
    await conflated.subscribe([sym], ["quote", "trade"], snapshot=False)
    plain = await Client.connect(port)
    await plain.subscribe([sym], ["quote"], snapshot=False)
    await asyncio.sleep(0.3)

    arrivals: list[tuple[float, dict]] = []

    async def read() -> None:
        while True:
            msg = await conflated.expect("DATA", 5)
            arrivals.append((time.monotonic(), msg["data"]))
            if msg["data"]["type"] == "quote" and msg["data"]["seq"] == 60:
                return

    reader = asyncio.create_task(read())
    for seq in range(1, 61):  # 60 quotes over ~1.2 s, a trade every tenth
        await nc.publish(subject("quote", sym), quote(sym, seq, 10 + seq / 100))
        if seq % 10 == 0:
            await nc.publish(subject("trade", sym), trade(sym, seq // 10))
        await nc.flush()
        await asyncio.sleep(0.02)
    await asyncio.wait_for(reader, 10)

    quotes = [(t, d) for t, d in arrivals if d["type"] == "quote"]
    seqs = [d["seq"] for _, d in quotes]
    assert seqs == sorted(seqs) and seqs[-1] == 60, "the newest quote always arrives last"
    assert 2 <= len(seqs) <= 8, f"about one quote per 300 ms over ~1.2 s, not {len(seqs)}"
    gaps = [b - a for (a, _), (b, _) in pairwise(quotes)]
    assert min(gaps) > 0.2, f"quotes of one stream come at least ~300 ms apart: {gaps}"
    assert quotes[-1][1]["quote"]["price"] == 10.6
    assert [d["seq"] for _, d in arrivals if d["type"] == "trade"] == [1, 2, 3, 4, 5, 6], "trades never conflate"
    # the plain client on the same stream is untouched by its neighbour's option
    assert [d["seq"] for d in await plain.data(60)] == list(range(1, 61))
    await conflated.close()
    await plain.close()


async def test_permessage_deflate_compresses_data_frames_when_offered_and_allowed(
    gateway, nc: NATS, tmp_path: Path
) -> None:
    port, _ = gateway("--config", deflate_allowed(tmp_path))
    sym = unique_symbol("D")
    raw = RawClient(port, "/", DEFLATE_OFFER)
    assert raw.headers["sec-websocket-extensions"].startswith("permessage-deflate")
    raw.send_text(subscribe_msg([sym], ["quote"]))
    async with aiohttp.ClientSession() as http, http.ws_connect(f"http://127.0.0.1:{port}/", compress=15) as ws:
        assert ws.compress == 15, "aiohttp's client negotiated compression"
        assert json.loads((await ws.receive(timeout=5)).data)["data"]["options"]["compression"] == "permessage-deflate"
        await ws.send_str(subscribe_msg([sym], ["quote"]))
        assert json.loads((await ws.receive(timeout=5)).data)["type"] == "SUBSCRIBED"
        await asyncio.sleep(0.3)
        for seq in range(1, 6):
            await nc.publish(subject("quote", sym), quote(sym, seq, 11.0 + seq))
        await nc.flush()
        via_aiohttp = [json.loads((await ws.receive(timeout=5)).data)["data"] for _ in range(5)]
    assert [(d["seq"], d["quote"]["price"]) for d in via_aiohttp] == [(s, 11.0 + s) for s in range(1, 6)]

    frames = await raw_frames(raw)
    raw.close()
    data = [f for f in frames if f.opcode == 1 and f.message()["type"] == "DATA"]
    assert [f.message()["data"]["seq"] for f in data] == [1, 2, 3, 4, 5]
    assert all(f.compressed for f in data), "DATA frames carry RSV1 and a deflated payload"
    assert all(len(f.payload) < len(json.dumps(f.message())) for f in data), "and they are smaller for it"
    assert frames[0].message()["data"]["options"]["compression"] == "permessage-deflate"


async def test_no_compression_unless_the_server_allows_it(gateway, nc: NATS) -> None:
    port, _ = gateway()  # permessage_deflate defaults to false
    sym = unique_symbol("N")
    raw = RawClient(port, "/", DEFLATE_OFFER)
    assert "sec-websocket-extensions" not in raw.headers
    raw.send_text(subscribe_msg([sym], ["quote"]))
    await asyncio.sleep(0.3)
    await nc.publish(subject("quote", sym), quote(sym, 1))
    await nc.flush()
    frames = await raw_frames(raw)
    raw.close()
    assert not any(f.compressed for f in frames)
    assert frames[0].message()["data"]["options"]["compression"] == "none"
    assert frames[-1].message()["data"]["seq"] == 1


async def test_batch_and_deflate_together_send_compressed_arrays(gateway, nc: NATS, tmp_path: Path) -> None:
    port, _ = gateway("--config", deflate_allowed(tmp_path))
    sym = unique_symbol("Z")
    raw = RawClient(port, "/?batch=1", DEFLATE_OFFER)
    raw.send_text(subscribe_msg([sym], ["trade"]))
    await asyncio.sleep(0.3)
    for seq in range(1, 11):
        await nc.publish(subject("trade", sym), trade(sym, seq))
    await nc.flush()
    frames = await raw_frames(raw)
    raw.close()
    arrays = [f for f in frames if isinstance(f.message(), list)]
    assert arrays and all(f.compressed for f in arrays)
    assert [e["data"]["seq"] for f in arrays for e in f.message()] == list(range(1, 11))


async def test_bad_option_values_get_an_error_and_the_connection_works_without_them(gateway, nc: NATS) -> None:
    port, _ = gateway()
    sym = unique_symbol("O")
    client = await Client.connect(port, "/?conflate_ms=soon&batch=maybe")
    welcome = await client.expect("WELCOME")
    assert welcome["data"]["options"]["conflate_ms"] == 0 and welcome["data"]["options"]["batch"] is False
    errors = [await client.expect("ERROR"), await client.expect("ERROR")]
    assert {e["data"]["code"] for e in errors} == {"INVALID_MESSAGE"}
    assert any("conflate_ms" in e["data"]["message"] for e in errors)
    assert any("batch" in e["data"]["message"] for e in errors)
    await client.subscribe([sym], ["quote"], snapshot=False)
    await asyncio.sleep(0.2)
    await nc.publish(subject("quote", sym), quote(sym, 1))
    await nc.flush()
    msg = await client.expect("DATA")
    assert msg["data"]["seq"] == 1, "one envelope per frame, as without options"
    over = await Client.connect(port, "/?conflate_ms=999999")
    await over.expect("WELCOME")
    assert "conflate_ms" in (await over.expect("ERROR"))["data"]["message"]
    await over.close()
    await client.close()


async def test_flush_interval_gathers_a_burst_into_one_write_and_loses_nothing(gateway, nc: NATS) -> None:
    port, _ = gateway(env={"WEBSOCKET_FLUSH_INTERVAL_MS": "150"})
    sym = unique_symbol("F")
    raw = RawClient(port, "/")
    raw.send_text(subscribe_msg([sym], ["trade"]))
    await asyncio.sleep(0.3)
    await raw_frames(raw, 0.3)  # WELCOME, SUBSCRIBED

    def read_chunks() -> list[bytes]:
        """Each recv as it arrives: separate writes 20 ms apart arrive as separate chunks."""
        chunks: list[bytes] = []
        raw.sock.settimeout(3)
        while sum(c.count(b'"type":"DATA"') for c in chunks) < 5:
            chunks.append(raw.sock.recv(1 << 20))
        return chunks

    reader = asyncio.get_running_loop().run_in_executor(None, read_chunks)
    for seq in range(1, 6):  # five trades 20 ms apart: all inside one 150 ms gathering window
        await nc.publish(subject("trade", sym), trade(sym, seq))
        await nc.flush()
        await asyncio.sleep(0.02)
    chunks = await reader
    raw.buf = b"".join(chunks)
    frames = await raw_frames(raw, 0.2)
    raw.close()
    assert [f.message()["data"]["seq"] for f in frames] == [1, 2, 3, 4, 5]
    assert len(chunks) == 1, "the five frames left the gateway in one write"


async def test_a_quote_held_for_conflation_is_not_sent_after_unsubscribe(gateway, nc: NATS) -> None:
    port, _ = gateway()
    sym = unique_symbol("U")
    client = await Client.connect(port, "/?conflate_ms=500")
    await client.subscribe([sym], ["quote"], snapshot=False)
    await asyncio.sleep(0.2)
    await nc.publish(subject("quote", sym), quote(sym, 1))
    await nc.flush()
    await asyncio.sleep(0.1)  # the quote is now held, its window still open
    await client.send("UNSUBSCRIBE", {"symbols": [sym]})
    await client.expect("UNSUBSCRIBED")
    with pytest.raises(TimeoutError):
        await client.expect("DATA", timeout=1.0)
    await client.close()
