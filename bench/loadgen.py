"""The load generator: many picows clients in one process, counting frames and sampling latency.

It runs in its own process pinned to its own core, so the CPU it spends is not the gateway's.
Latency is `receive time - data.ts` (the ingestor's publish time), so lateness caused by a slow
gateway is counted in full; one frame in `sample_every` is parsed, the others only counted.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import time
import zlib
from typing import Any
from urllib.parse import urlsplit

import msgspec
from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

from .counting import CountingClient


class Counter:
    def __init__(self, sample_every: int, batch: bool) -> None:
        self.messages = 0  # DATA envelopes (a batch=1 frame holds several)
        self.latencies_us: list[int] = []
        self.sample_every = sample_every
        self.batch = batch
        self.counting = False
        self.holes = 0  # seq numbers skipped within a client's stream (checked when every frame is parsed)


_TAIL = b"\x00\x00\xff\xff"
_DATA_JSON = b'{"type":"DATA"'
_DATA_MSGPACK = b"\xa4DATA"  # the msgpack string "DATA" (type values are never otherwise "DATA")


def _payload(frame: WSFrame) -> bytes:
    data = frame.get_payload_as_bytes()
    if frame.rsv1:  # permessage-deflate: the gateway deflates each message on its own
        data = zlib.decompressobj(-15).decompress(data + _TAIL)
    return data


class Client(WSListener):
    def __init__(self, counter: Counter, subscribe: bytes, binary: bool) -> None:
        self.counter = counter
        self.subscribe = subscribe
        self.binary = binary
        self.n = 0
        self.last_seq: dict[str, int] = {}

    def on_ws_connected(self, transport: WSTransport) -> None:
        if self.binary:
            transport.send(WSMsgType.BINARY, self.subscribe)
        else:
            transport.send(WSMsgType.TEXT, self.subscribe)

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        c = self.counter
        if not c.counting:
            return
        if c.batch:
            self._on_batch(frame)
            return
        mt = frame.msg_type
        if mt != WSMsgType.TEXT and mt != WSMsgType.BINARY:  # a million frames a second pass here
            return
        c.messages += 1
        self.n += 1
        if self.n % c.sample_every:
            return
        self._sample(_payload(frame), False)

    def _on_batch(self, frame: WSFrame) -> None:
        c = self.counter
        if frame.msg_type not in (WSMsgType.TEXT, WSMsgType.BINARY):
            return
        payload = _payload(frame)
        n = payload.count(_DATA_MSGPACK if self.binary else _DATA_JSON)
        before = self.n
        self.n += n
        c.messages += n
        if self.n // c.sample_every != before // c.sample_every:
            self._sample(payload, True)

    def _sample(self, payload: bytes, many: bool) -> None:
        c = self.counter
        msg = (msgspec.msgpack.decode if self.binary else json.loads)(payload)
        now = time.time_ns() // 1000
        for env in msg if many and isinstance(msg, list) else (msg,):
            if not isinstance(env, dict) or env.get("type") != "DATA" or env["data"].get("snapshot"):
                continue
            data = env["data"]
            c.latencies_us.append(now - data["ts"])
            if c.sample_every == 1:
                last = self.last_seq.get(data["symbol"])
                if last is not None and data["seq"] > last + 1:
                    c.holes += data["seq"] - last - 1
                self.last_seq[data["symbol"]] = data["seq"]
            else:
                break  # one sample per sampled frame


async def run_clients(
    url: str, plans: list[list[str]], warmup: float, duration: float, sample_every: int, out: Any, deflate: bool
) -> dict[str, Any]:
    counter = Counter(sample_every, "batch=1" in url)
    binary = "encoding=msgpack" in url
    encode = msgspec.msgpack.encode if binary else (lambda m: json.dumps(m).encode())
    headers = {"Sec-WebSocket-Extensions": "permessage-deflate"} if deflate else None
    transports: list[Any] = []
    t0 = time.monotonic()
    # Counting in the byte stream unless every frame must be parsed (seq checks) or inflated.
    counting = sample_every > 1 and not deflate
    split = urlsplit(url)
    path = split.path + (f"?{split.query}" if split.query else "")
    loop = asyncio.get_running_loop()

    def subscribe(syms: list[str]) -> bytes:
        return encode({"type": "SUBSCRIBE", "data": {"symbols": syms, "snapshot": False}})

    async def connect(syms: list[str]) -> Any:
        if counting:
            proto = CountingClient(counter, split.netloc, path, subscribe(syms), binary)
            await loop.create_connection(lambda: proto, split.hostname, split.port)
            try:
                await asyncio.wait_for(proto.ready, 15)
            except BaseException:
                proto.close()
                raise
            return proto
        sub = subscribe(syms)
        transport, _ = await ws_connect(
            lambda: Client(counter, sub, binary), url, websocket_handshake_timeout=15, extra_headers=headers
        )
        return transport

    async def keepalive() -> None:
        # The counting client never parses frames, so it never sees the gateway's pings: an
        # unsolicited pong every 10 s (from the first connection on) answers them all.
        while True:
            await asyncio.sleep(10)
            for t in transports:
                t.pong()

    pinger = asyncio.create_task(keepalive()) if counting else None
    pending = list(plans)
    for _attempt in range(3):  # a busy gateway may time out some handshakes: try those again
        failed: list[list[str]] = []
        for i in range(0, len(pending), 200):  # connect in waves so the accept queue keeps up
            batch = pending[i : i + 200]
            results = await asyncio.gather(*(connect(syms) for syms in batch), return_exceptions=True)
            for syms, r in zip(batch, results, strict=True):
                if isinstance(r, BaseException):
                    failed.append(syms)
                else:
                    transports.append(r)
        if not failed:
            break
        pending = failed
        await asyncio.sleep(1.0)
    connected = len(transports)

    connect_s = time.monotonic() - t0
    await asyncio.sleep(warmup)
    out.send("counting")  # the parent starts its CPU window now
    counter.counting = True
    start = time.monotonic()
    await asyncio.sleep(duration)
    counter.counting = False
    elapsed = time.monotonic() - start
    if pinger is not None:
        pinger.cancel()
    for t in transports:
        if counting:
            t.close()
        else:
            t.disconnect()
    return {
        "connected": connected,
        "connect_s": connect_s,
        "messages": counter.messages,
        "holes": counter.holes,
        "elapsed": elapsed,
        "latencies_us": counter.latencies_us,
        "client": "counting" if counting else "picows",
    }


def main(
    url: str,
    plans: list[list[str]],
    warmup: float,
    duration: float,
    sample_every: int,
    cpu: int | None,
    out: Any,
    deflate: bool = False,
) -> None:
    """Entry of the load-generator process; sends its result through `out` (a Connection)."""
    if cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {cpu})
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    try:
        import uvloop

        result = uvloop.run(run_clients(url, plans, warmup, duration, sample_every, out, deflate))
    except ImportError:
        result = asyncio.run(run_clients(url, plans, warmup, duration, sample_every, out, deflate))
    out.send(result)
