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
from typing import Any

from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_connect


class Counter:
    def __init__(self, sample_every: int) -> None:
        self.frames = 0
        self.data = 0
        self.latencies_us: list[int] = []
        self.sample_every = sample_every
        self.counting = False
        self.holes = 0  # seq numbers skipped within a client's stream (checked when every frame is parsed)


class Client(WSListener):
    def __init__(self, counter: Counter, subscribe: bytes) -> None:
        self.counter = counter
        self.subscribe = subscribe
        self.n = 0
        self.last_seq: dict[str, int] = {}

    def on_ws_connected(self, transport: WSTransport) -> None:
        transport.send(WSMsgType.TEXT, self.subscribe)

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        c = self.counter
        if not c.counting or frame.msg_type != WSMsgType.TEXT:
            return
        c.frames += 1
        self.n += 1
        if self.n % c.sample_every:
            return
        msg = json.loads(frame.get_payload_as_bytes())
        if msg.get("type") == "DATA" and not msg["data"].get("snapshot"):
            data = msg["data"]
            c.latencies_us.append(time.time_ns() // 1000 - data["ts"])
            if c.sample_every == 1:
                last = self.last_seq.get(data["symbol"])
                if last is not None and data["seq"] > last + 1:
                    c.holes += data["seq"] - last - 1
                self.last_seq[data["symbol"]] = data["seq"]


async def run_clients(
    url: str, plans: list[list[str]], warmup: float, duration: float, sample_every: int, out: Any
) -> dict[str, Any]:
    counter = Counter(sample_every)
    transports: list[WSTransport] = []
    t0 = time.monotonic()

    def factory(syms: list[str]):  # type: ignore[no-untyped-def]
        sub = json.dumps({"type": "SUBSCRIBE", "data": {"symbols": syms, "snapshot": False}}).encode()
        return lambda: Client(counter, sub)

    pending = list(plans)
    for _attempt in range(3):  # a busy gateway may time out some handshakes: try those again
        failed: list[list[str]] = []
        for i in range(0, len(pending), 200):  # connect in waves so the accept queue keeps up
            batch = pending[i : i + 200]
            results = await asyncio.gather(
                *(ws_connect(factory(syms), url, websocket_handshake_timeout=15) for syms in batch),
                return_exceptions=True,
            )
            for syms, r in zip(batch, results, strict=True):
                if isinstance(r, tuple):
                    transports.append(r[0])
                else:
                    failed.append(syms)
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
    for t in transports:
        t.disconnect()
    return {
        "connected": connected,
        "connect_s": connect_s,
        "frames": counter.frames,
        "holes": counter.holes,
        "elapsed": elapsed,
        "latencies_us": counter.latencies_us,
    }


def main(
    url: str, plans: list[list[str]], warmup: float, duration: float, sample_every: int, cpu: int | None, out: Any
) -> None:
    """Entry of the load-generator process; sends its result through `out` (a Connection)."""
    if cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {cpu})
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    try:
        import uvloop

        result = uvloop.run(run_clients(url, plans, warmup, duration, sample_every, out))
    except ImportError:
        result = asyncio.run(run_clients(url, plans, warmup, duration, sample_every, out))
    out.send(result)
