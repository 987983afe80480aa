"""The memory floor under any Python WebSocket server: RSS per open connection with nothing on top.

A server process on the stack's core (uvloop, as the gateway runs) accepts `connections` WebSocket
upgrades and sends each one 120-byte frame a second; the client side, on the load generator's
core, holds every socket open and drains them, as the benchmark's clients do. Two servers:

- `aiohttp`: the gateway's own socket layer, a `WebSocketResponse` per connection, the handler
  waiting in `receive()` (heartbeat off, as the gateway sets it);
- `protocol`: a bare `asyncio.Protocol` that answers the upgrade itself and keeps only its transport,
  what Python can hold a socket for when no framework owns it.

(RSS with every socket open - RSS before the first) / connections is what `wide`'s RSS per
connection is charged before Argus holds a session or a subscription.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import os
import socket
import subprocess
import sys
import time
from typing import Any

from .ports import free_port
from .procstat import rss_kb

FRAME = b"\x81\x78" + b"x" * 120  # one unmasked 120-byte text frame
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def _accept_key(request: bytes) -> bytes:
    for line in request.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"sec-websocket-key":
            return base64.b64encode(hashlib.sha1(value.strip() + GUID).digest())
    raise ValueError("no Sec-WebSocket-Key")


class _Upgrade(asyncio.Protocol):
    """Answers one upgrade, then ignores what the client sends."""

    __slots__ = ("buf", "held", "transport")

    def __init__(self, held: set[asyncio.Transport]) -> None:
        self.held = held
        self.buf = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no asyncio.Transport subclass

    def data_received(self, data: bytes) -> None:
        if self.buf is None or self.transport is None:
            return
        self.buf += data
        if b"\r\n\r\n" not in self.buf:
            return
        accept = _accept_key(self.buf)
        self.buf = None  # type: ignore[assignment]
        self.transport.write(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n"
        )
        self.held.add(self.transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.transport is not None:
            self.held.discard(self.transport)


async def _serve(mode: str, port: int) -> None:
    held: set[Any] = set()
    if mode == "aiohttp":
        from aiohttp import WSMsgType, web

        ENDED = (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED)

        async def handler(request: web.Request) -> web.StreamResponse:
            ws = web.WebSocketResponse(heartbeat=None, autoping=False)
            await ws.prepare(request)
            assert request.transport is not None
            held.add(request.transport)
            try:
                while (await ws.receive()).type not in ENDED:
                    pass
            finally:
                held.discard(request.transport)
            return ws

        app = web.Application()
        app.router.add_get("/", handler)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port, backlog=4096).start()
    else:
        loop = asyncio.get_running_loop()
        await loop.create_server(lambda: _Upgrade(held), "127.0.0.1", port, backlog=4096)
    print("ready", flush=True)
    while True:
        await asyncio.sleep(1.0)
        for transport in list(held):
            transport.write(FRAME)


def _open(port: int, count: int) -> list[socket.socket]:
    sub = b'{"type":"subscribe","symbols":["000001.SZ"]}'
    mask = os.urandom(4)
    frame = bytes([0x81, 0x80 | len(sub)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(sub))
    out = []
    for i in range(count):
        key = base64.b64encode(os.urandom(16))
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(
            b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " + key + b"\r\n\r\n"
        )
        if b" 101 " not in s.recv(4096):
            raise RuntimeError("upgrade refused")
        s.sendall(frame)
        s.setblocking(False)
        out.append(s)
        if i % 500 == 499:
            time.sleep(0.02)  # let the server's loop keep up, as a burst of real clients would
    return out


def _drain(conns: list[socket.socket], seconds: float) -> int:
    got = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for c in conns:
            try:
                while chunk := c.recv(1 << 16):
                    got += len(chunk)
            except BlockingIOError:
                pass
        time.sleep(0.05)
    return got


def measure(
    mode: str = "aiohttp",
    connections: int = 10_000,
    seconds: float = 5.0,
    core: int | None = 0,
    client_core: int | None = 1,
) -> dict[str, Any]:
    """KB of the server's RSS per open WebSocket, with every socket sent a frame a second."""
    port = free_port()
    argv = [sys.executable, "-m", "bench.connfloor", "--serve", mode, "--port", str(port)]
    server = subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        preexec_fn=(lambda: os.sched_setaffinity(0, {core})) if core is not None else None,
    )
    before = os.sched_getaffinity(0)
    try:
        assert server.stdout is not None
        if server.stdout.readline().strip() != b"ready":
            raise RuntimeError("the floor's server did not start")
        time.sleep(0.5)
        base = rss_kb(server.pid)
        if client_core is not None:
            os.sched_setaffinity(0, {client_core})
        conns = _open(port, connections)
        received = _drain(conns, seconds)
        held = rss_kb(server.pid)
        for c in conns:
            c.close()
    finally:
        os.sched_setaffinity(0, before)
        server.kill()
        server.wait()
    return {
        "mode": mode,
        "connections": connections,
        "base_mb": round(base / 1024, 1),
        "kb_per_connection": round((held - base) / connections, 2),
        "frames_received": received // len(FRAME),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--serve", choices=("aiohttp", "protocol"))
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--connections", type=int, default=10_000)
    ap.add_argument("--seconds", type=float, default=5.0)
    args = ap.parse_args()
    if args.serve:
        import uvloop

        uvloop.run(_serve(args.serve, args.port))
        return
    for mode in ("aiohttp", "protocol"):
        print(measure(mode, args.connections, args.seconds))


if __name__ == "__main__":
    main()
