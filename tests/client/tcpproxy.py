"""A TCP proxy on loopback between a client and a gateway, to break the network in known ways:
`cut()` resets every connection (a dropped link), `freeze()` stops moving bytes on the current
connections while they stay open (a black-holed flow; new connections still pass)."""

from __future__ import annotations

import asyncio
import contextlib


class _Link:
    def __init__(self, client: asyncio.StreamWriter, upstream: asyncio.StreamWriter) -> None:
        self.writers = (client, upstream)
        self.flowing = asyncio.Event()
        self.flowing.set()
        self.tasks: list[asyncio.Task[None]] = []

    def abort(self) -> None:
        for w in self.writers:
            w.transport.abort()
        for t in self.tasks:
            t.cancel()


class TcpProxy:
    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self.links: list[_Link] = []
        self.accepted = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> TcpProxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/"

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.transport.abort()
            return
        link = _Link(writer, up_writer)
        self.links.append(link)
        link.tasks = [
            asyncio.create_task(self._pump(reader, up_writer, link)),
            asyncio.create_task(self._pump(up_reader, writer, link)),
        ]

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, link: _Link) -> None:
        try:
            while True:
                await link.flowing.wait()
                data = await reader.read(65536)
                if not data:
                    break
                await link.flowing.wait()  # read before the freeze: held, not delivered
                writer.write(data)
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    def cut(self) -> int:
        """Reset every open connection; returns how many there were."""
        links, self.links = self.links, []
        for link in links:
            link.abort()
        return len(links)

    def freeze(self) -> int:
        """Stop the current connections' bytes in both directions, keeping them open."""
        for link in self.links:
            link.flowing.clear()
        return len(self.links)

    async def close(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
