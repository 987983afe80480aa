"""The gateway's listening socket: each accepted connection starts as an `Opening`.

An `Opening` reads the first request line. A WebSocket upgrade of the client endpoint is answered
here and the socket becomes a `Connection` (connection.py); anything else is handed, with every
byte read so far, to aiohttp's request handler for the HTTP API, the board and the probes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, cast

from argus_protocol import ErrorCode

from .connection import Connection
from .upgrade import MAX_HEAD, Refusal, accept_key, is_upgrade, parse_head, wants_upgrade

if TYPE_CHECKING:
    from .server import Gateway

log = logging.getLogger("argus.gateway")


class Opening(asyncio.Protocol):
    __slots__ = ("buf", "gw", "http", "peer", "timer", "transport", "upgrade")

    def __init__(self, gw: Gateway, http: Callable[[], asyncio.Protocol]) -> None:
        self.gw = gw
        self.http = http  # aiohttp's protocol factory (its web.Server)
        self.buf = b""
        self.peer = ""
        self.upgrade = False  # the request line asked for the client endpoint
        self.timer: asyncio.TimerHandle | None = None
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)  # uvloop's are not asyncio.Transport subclasses
        self.transport = transport
        peer = self.gw.peers.accepted(transport)
        if peer is None:
            return  # refused with 429 and closed
        self.peer = peer
        # The header deadline: a socket that never finishes its request is closed.
        self.timer = asyncio.get_running_loop().call_later(self.gw.cfg.server.handshake_timeout, transport.close)

    def connection_lost(self, exc: BaseException | None) -> None:
        self._settle()
        self.gw.peers.closed(self.peer)
        self.peer = ""

    def _settle(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def data_received(self, data: bytes) -> None:
        buf = self.buf = self.buf + data
        if not self.upgrade:
            end = buf.find(b"\r\n")
            if end < 0:
                if len(buf) > MAX_HEAD:
                    self._hand_over()  # aiohttp answers an overlong request line
                return
            if not wants_upgrade(buf[:end]):
                self._hand_over()
                return
            self.upgrade = True
        end = buf.find(b"\r\n\r\n")
        transport = self.transport
        assert transport is not None
        try:
            if end > MAX_HEAD or (end < 0 and len(buf) > MAX_HEAD):
                raise Refusal(431, f"request head over {MAX_HEAD} bytes")
            if end < 0:
                return
            head = parse_head(buf[:end])
            if not is_upgrade(head):
                self._hand_over()
                return
            gw = self.gw
            origin = head.headers.get("origin")
            allowed = gw.cfg.security.allowed_origins
            if origin and "*" not in allowed and origin not in allowed:
                gw.metrics.errors.labels(ErrorCode.FORBIDDEN).inc()
                log.info("origin refused", extra={"origin": origin, "remote": self._remote()})
                raise Refusal(403, "origin not allowed")
            if gw.draining:
                raise Refusal(503, "draining", (("Retry-After", "1"),))
            accept = accept_key(head)
        except Refusal as r:
            self._settle()
            self.buf = b""
            transport.write(r.response())
            transport.close()
            return
        self._settle()
        self.buf = b""
        peer, self.peer = self.peer, ""  # the connection holds the peer's count from here on
        Connection.open(self.gw, transport, head, accept, peer, buf[end + 4 :])

    def _hand_over(self) -> None:
        """Not an upgrade of ours: aiohttp serves the socket from its first byte."""
        transport = self.transport
        assert transport is not None
        self._settle()
        self.gw.peers.closed(self.peer)  # aiohttp's server counts it again (PeerLimits.attach)
        self.peer = ""
        buf, self.buf = self.buf, b""
        handler = self.http()
        transport.set_protocol(handler)
        handler.connection_made(transport)
        if not transport.is_closing():
            handler.data_received(buf)

    def _remote(self) -> str:
        assert self.transport is not None
        peer = self.transport.get_extra_info("peername")
        return str(peer[0]) if isinstance(peer, tuple) and peer else ""
