"""Who a connection comes from, and how many connections one address may hold.

A client's address is the TCP peer's, unless the peer is a configured trusted proxy: then it is the
nearest address in `X-Forwarded-For` that is not itself a trusted proxy (entries further left are
the client's own say and are not believed). `max_connections_per_ip` bounds open TCP connections
per peer (trusted proxies exempt: they carry everyone) from the moment they are accepted, so
half-sent requests count too, and WebSocket sessions per client address.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections.abc import Iterable
from typing import Any

from aiohttp import web

from .metrics import GatewayMetrics

log = logging.getLogger("argus.gateway")

MAX_HOPS = 32  # X-Forwarded-For entries looked at, from the right
REFUSAL = b"HTTP/1.1 429 Too Many Requests\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _address(text: str) -> str | None:
    """A normalised IP address, or None (an `IP:port` or `[v6]:port` entry loses its port)."""
    text = text.strip()
    if text.startswith("["):
        text = text[1 : text.find("]")] if "]" in text else text
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


class PeerLimits:
    def __init__(self, max_per_ip: int, trusted: Iterable[str], metrics: GatewayMetrics) -> None:
        self.max_per_ip = max_per_ip
        self.trusted: tuple[Network, ...] = tuple(ipaddress.ip_network(t, strict=False) for t in trusted)
        self.metrics = metrics
        self._open: dict[str, int] = {}  # peer address -> open TCP connections
        self._by_handler: dict[Any, str] = {}
        self._sessions: dict[str, int] = {}  # client address -> open WebSocket sessions

    def is_trusted(self, address: str) -> bool:
        if not self.trusted:
            return False
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in net for net in self.trusted)

    def client_address(self, peer: str, forwarded: str | None) -> str:
        if not forwarded or not self.is_trusted(peer):
            return peer
        hops = forwarded.split(",")[-MAX_HOPS:]
        for hop in reversed(hops):
            address = _address(hop)
            if address is None:
                return peer  # a malformed entry where a proxy should have written one: trust none of it
            if not self.is_trusted(address):
                return address
        return _address(hops[0]) or peer

    # ---------------------------------------------------------------- TCP connections
    def accepted(self, transport: asyncio.Transport) -> str | None:
        """Count an accepted connection by peer address before a byte is read: the address to
        hand back to `closed` ("" when it is not counted), or None when it was refused (429)."""
        if self.max_per_ip <= 0:
            return ""
        peer = transport.get_extra_info("peername")
        address = str(peer[0]) if isinstance(peer, tuple) and peer else ""
        if not address or self.is_trusted(address):
            return ""
        n = self._open.get(address, 0)
        if n >= self.max_per_ip:
            self.metrics.refused.labels("per_ip").inc()
            log.info("connection refused", extra={"remote": address, "why": "per_ip", "limit": self.max_per_ip})
            transport.write(REFUSAL)
            transport.close()
            return None
        self._open[address] = n + 1
        return address

    def closed(self, address: str) -> None:
        if not address:
            return
        left = self._open[address] - 1
        if left:
            self._open[address] = left
        else:
            del self._open[address]

    def attach(self, server: web.Server) -> None:
        """Count the connections the listener hands to aiohttp's server (listener.py), as it is
        told of each one (`connection_made`/`connection_lost`)."""
        if self.max_per_ip <= 0:
            return
        made, lost = server.connection_made, server.connection_lost

        def connection_made(handler: Any, transport: asyncio.Transport) -> None:
            made(handler, transport)
            address = self.accepted(transport)
            if address:
                self._by_handler[handler] = address

        def connection_lost(handler: Any, exc: BaseException | None = None) -> None:
            self.closed(self._by_handler.pop(handler, ""))
            lost(handler, exc)

        server.connection_made = connection_made  # type: ignore[method-assign]
        server.connection_lost = connection_lost  # type: ignore[method-assign]

    # ---------------------------------------------------------------- sessions
    def admit(self, address: str) -> bool:
        """Take a session slot for `address`; False when it holds its limit."""
        if self.max_per_ip <= 0:
            return True
        n = self._sessions.get(address, 0)
        if n >= self.max_per_ip:
            self.metrics.refused.labels("per_ip").inc()
            return False
        self._sessions[address] = n + 1
        return True

    def release(self, address: str) -> None:
        if self.max_per_ip <= 0:
            return
        left = self._sessions.get(address, 0) - 1
        if left > 0:
            self._sessions[address] = left
        else:
            self._sessions.pop(address, None)
