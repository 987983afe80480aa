"""A fake Yahoo pricing streamer (aiohttp WebSocket server on 127.0.0.1).

It speaks the real wire format: clients send `{"subscribe": [...]}`; the server sends
`{"type": "pricing", "message": base64(PricingData)}` built with yfinance's own protobuf class, so
the ingestor's real yfinance decoder parses it. It can close cleanly, drop the TCP connection
without a close frame, and send garbage.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web
from yfinance.pricing_pb2 import PricingData


def pricing_frame(**fields: Any) -> str:
    """One pricing frame; fields as in pricing.proto (`time` in epoch ms, zero fields omitted by protobuf)."""
    msg = PricingData(**fields)
    return json.dumps({"type": "pricing", "message": base64.b64encode(msg.SerializeToString()).decode()})


@dataclass
class Conn:
    ws: web.WebSocketResponse
    request: web.Request
    received: list[Any] = field(default_factory=list)  # parsed client messages, in order
    closed: bool = False

    def subscribed(self) -> set[str]:
        """Tickers subscribed and not unsubscribed since, on this connection."""
        out: set[str] = set()
        for m in self.received:
            out |= set(m.get("subscribe", []))
            out -= set(m.get("unsubscribe", []))
        return out


class FakeStreamer:
    def __init__(self) -> None:
        self.conns: list[Conn] = []
        self.port = 0
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/?version=2"

    async def start(self) -> FakeStreamer:
        app = web.Application()
        app.router.add_get("/", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def stop(self) -> None:
        for c in self.open():
            await c.ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        conn = Conn(ws, request)
        self.conns.append(conn)
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                conn.received.append(json.loads(msg.data))
        conn.closed = True
        return ws

    def open(self) -> list[Conn]:
        return [c for c in self.conns if not c.closed and not c.ws.closed]

    @property
    def current(self) -> Conn:
        live = self.open()
        assert live, "no open connection"
        return live[-1]

    async def send(self, text: str) -> None:
        for c in self.open():
            await c.ws.send_str(text)

    async def push(self, **fields: Any) -> None:
        await self.send(pricing_frame(**fields))

    async def close_clean(self) -> None:
        """A normal close handshake (code 1000), as Yahoo does when it recycles a connection."""
        for c in self.open():
            await c.ws.close(code=1000, message=b"bye")

    def drop(self) -> None:
        """The TCP connection dies without a close frame (abnormal closure, 1006)."""
        for c in self.open():
            transport = c.request.transport
            assert transport is not None
            transport.abort()
            c.closed = True

    async def wait(self, cond: Callable[[], Any], timeout: float = 5.0) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not cond():
            if loop.time() > deadline:
                raise AssertionError(f"timed out; connections={len(self.conns)} received={self.received()}")
            await asyncio.sleep(0.01)

    def received(self) -> list[list[Any]]:
        return [c.received for c in self.conns]
