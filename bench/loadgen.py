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

from .counting import MARKS, CountingClient, Initial


class Counter:
    def __init__(self, sample_every: int, batch: bool) -> None:
        self.messages = 0  # DATA envelopes (a batch=1 frame holds several)
        self.latencies_us: list[int] = []
        self.sample_every = sample_every
        self.batch = batch
        self.counting = False
        self.holes = 0  # seq numbers skipped within a client's stream (checked when every frame is parsed)
        self.bytes = 0  # bytes read while counting (counting client only): what each message costs the wire


_TAIL = b"\x00\x00\xff\xff"
_DATA_JSON = b'{"type":"DATA"'
_DATA_MSGPACK = b"\xa4DATA"  # the msgpack string "DATA" (type values are never otherwise "DATA")


def _payload(frame: WSFrame) -> bytes:
    data = frame.get_payload_as_bytes()
    if frame.rsv1:  # permessage-deflate: the gateway deflates each message on its own
        data = zlib.decompressobj(-15).decompress(data + _TAIL)
    return data


class Client(WSListener):
    def __init__(self, counter: Counter, subscribes: list[bytes], binary: bool, initial: Initial) -> None:
        self.counter = counter
        self.subscribes = subscribes
        self.binary = binary
        self.initial = initial
        self.snap, self.replay, _, self.replayed = MARKS[binary]
        self.n = 0
        self.last_seq: dict[str, int] = {}

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.initial.sent_at = time.monotonic()
        for m in self.subscribes:
            transport.send(WSMsgType.BINARY if self.binary else WSMsgType.TEXT, m)

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        c = self.counter
        mt = frame.msg_type
        if mt != WSMsgType.TEXT and mt != WSMsgType.BINARY:  # a million frames a second pass here
            return
        if not self.initial.at or not c.counting:
            payload = _payload(frame)
            if self.snap in payload or self.replay in payload or self.replayed in payload:
                if not self.initial.at:
                    self.initial.seen(payload.count(self.snap), payload.count(self.replayed))
                return  # the subscribe's answer, not live delivery
        if not c.counting:
            return
        if c.batch:
            self._on_batch(frame)
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
    url: str,
    plans: list[list[dict[str, Any]]],
    waits: tuple[int, int],
    burst: bool,
    warmup: float,
    duration: float,
    sample_every: int,
    out: Any,
    deflate: bool,
) -> dict[str, Any]:
    """`plans`: each client's SUBSCRIBE messages; `waits`: (snapshots, REPLAYEDs) each client
    should get for them; `burst`: connect everyone, then send every SUBSCRIBE at once."""
    counter = Counter(sample_every, "batch=1" in url)
    binary = "encoding=msgpack" in url
    encode = msgspec.msgpack.encode if binary else (lambda m: json.dumps(m).encode())
    initials: list[Initial] = []
    headers = {"Sec-WebSocket-Extensions": "permessage-deflate"} if deflate else None
    transports: list[Any] = []
    t0 = time.monotonic()
    # Counting in the byte stream unless every frame must be parsed (seq checks) or inflated.
    counting = sample_every > 1 and not deflate
    split = urlsplit(url)
    path = split.path + (f"?{split.query}" if split.query else "")
    loop = asyncio.get_running_loop()

    async def connect(messages: list[dict[str, Any]]) -> Any:
        subs = [encode(m) for m in messages]
        initial = Initial(*waits)
        if counting:
            proto = CountingClient(counter, split.netloc, path, subs, binary, initial, defer=burst)
            await loop.create_connection(lambda: proto, split.hostname or "127.0.0.1", split.port or 80)
            try:
                await asyncio.wait_for(proto.ready, 15)
            except BaseException:
                proto.close()
                raise
            initials.append(initial)
            return proto
        transport, _ = await ws_connect(
            lambda: Client(counter, subs, binary, initial), url, websocket_handshake_timeout=15, extra_headers=headers
        )
        initials.append(initial)
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
        failed: list[list[dict[str, Any]]] = []
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
    subscribe_s = 0.0
    if burst and counting:
        out.send("connected")  # the parent reads the gateway's RSS before the wave
        t1 = time.monotonic()
        for t in transports:  # the whole wave in one loop turn: every SUBSCRIBE within a second
            t.send_subscribes()
        subscribe_s = time.monotonic() - t1
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
    ready = sorted(i.at - i.sent_at for i in initials if i.at > 0)
    return {
        "connected": connected,
        "connect_s": connect_s,
        "subscribe_s": subscribe_s,
        "ready_s": ready,  # per client: SUBSCRIBE to holding every snapshot and REPLAYED it asked for
        "waiting": sum(1 for i in initials if i.at == 0),
        "messages": counter.messages,
        "bytes": counter.bytes,
        "holes": counter.holes,
        "elapsed": elapsed,
        "latencies_us": counter.latencies_us,
        "client": "counting" if counting else "picows",
    }


def main(
    url: str,
    plans: list[list[dict[str, Any]]],
    waits: tuple[int, int],
    burst: bool,
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
    coro = run_clients(url, plans, waits, burst, warmup, duration, sample_every, out, deflate)
    try:
        import uvloop

        result = uvloop.run(coro)
    except ImportError:
        result = asyncio.run(coro)
    out.send(result)
