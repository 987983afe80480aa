"""A small test client over aiohttp, plus raw-socket clients that see exact frames or stop reading."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import zlib
from typing import Any

import aiohttp
import msgspec


class Client:
    """JSON (or msgpack) WebSocket client that keeps every message it reads in `seen`."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, http: aiohttp.ClientSession, binary: bool) -> None:
        self.ws = ws
        self.http = http
        self.binary = binary
        self.seen: list[dict[str, Any]] = []

    @classmethod
    async def connect(cls, port: int, path: str = "/", binary: bool = False, **kw: Any) -> Client:
        http = aiohttp.ClientSession()
        try:
            ws = await http.ws_connect(f"http://127.0.0.1:{port}{path}", max_msg_size=0, **kw)
        except Exception:
            await http.close()
            raise
        return cls(ws, http, binary)

    async def close(self) -> None:
        await self.ws.close()
        await self.http.close()

    async def send(self, kind: str, data: Any = None, id: Any = None) -> None:
        msg: dict[str, Any] = {"type": kind}
        if data is not None:
            msg["data"] = data
        if id is not None:
            msg["id"] = id
        if self.binary:
            await self.ws.send_bytes(msgspec.msgpack.encode(msg))
        else:
            await self.ws.send_str(json.dumps(msg))

    async def recv(self, timeout: float = 5.0) -> dict[str, Any]:
        msg = await self.ws.receive(timeout=timeout)
        if msg.type == aiohttp.WSMsgType.TEXT:
            out = json.loads(msg.data)
        elif msg.type == aiohttp.WSMsgType.BINARY:
            out = msgspec.msgpack.decode(msg.data)
        else:
            raise ConnectionError(f"connection closed: {msg.type.name} {self.ws.close_code}")
        self.seen.append(out)
        return out

    async def expect(self, kind: str, timeout: float = 5.0, **match: Any) -> dict[str, Any]:
        """The next message of `kind` whose data has the given items (others are kept in `seen`)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            left = deadline - loop.time()
            if left <= 0:
                raise TimeoutError(f"no {kind} {match} within {timeout}s; last: {self.seen[-3:]}")
            msg = await self.recv(left)
            if msg["type"] == kind and all(msg["data"].get(k) == v for k, v in match.items()):
                return msg

    async def subscribe(self, symbols: list[str], types: list[str] | None = None, **extra: Any) -> dict[str, Any]:
        data: dict[str, Any] = {"symbols": symbols, **extra}
        if types is not None:
            data["data_types"] = types
        await self.send("SUBSCRIBE", data, id="s")
        return await self.expect("SUBSCRIBED")

    async def data(self, n: int, timeout: float = 5.0, **match: Any) -> list[dict[str, Any]]:
        out = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(out) < n:
            msg = await self.expect("DATA", max(0.01, deadline - loop.time()), **match)
            out.append(msg["data"])
        return out

    async def closed(self, timeout: float = 5.0) -> int | None:
        """Read until the server closes; returns the close code."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            msg = await self.ws.receive(timeout=max(0.01, deadline - loop.time()))
            if msg.type in (
                aiohttp.WSMsgType.CLOSE,
                aiohttp.WSMsgType.CLOSING,
                aiohttp.WSMsgType.CLOSED,
                aiohttp.WSMsgType.ERROR,
            ):
                return self.ws.close_code
            if msg.type == aiohttp.WSMsgType.TEXT:
                self.seen.append(json.loads(msg.data))
        raise TimeoutError("connection still open")


class RawFrame:
    __slots__ = ("compressed", "opcode", "payload")

    def __init__(self, opcode: int, compressed: bool, payload: bytes) -> None:
        self.opcode = opcode
        self.compressed = compressed
        self.payload = payload

    def message(self, window_bits: int = 15) -> Any:
        """The decoded message: inflated first when RSV1 says the frame is compressed."""
        data = self.payload
        if self.compressed:
            data = zlib.decompressobj(-window_bits).decompress(data + b"\x00\x00\xff\xff")
        return msgspec.msgpack.decode(data) if self.opcode == 2 else json.loads(data)


class RawClient:
    """A WebSocket client on a plain socket, to see frames exactly as the server wrote them."""

    def __init__(
        self, port: int, path: str = "/", headers: dict[str, str] | None = None, rcvbuf: int | None = None
    ) -> None:
        self.sock = socket.socket()
        if rcvbuf is not None:  # before connect, so the window the server sees is small from the start
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.connect(("127.0.0.1", port))
        key = base64.b64encode(os.urandom(16)).decode()
        extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        self.sock.sendall(
            (
                f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
            ).encode()
        )
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(1)
            if not chunk:
                raise ConnectionError("closed during handshake")
            head += chunk
        lines = head.decode().split("\r\n")
        assert " 101 " in lines[0], head
        self.headers = {k.strip().lower(): v.strip() for k, v in (ln.split(":", 1) for ln in lines[1:] if ":" in ln)}
        self.buf = b""

    def send_text(self, text: str) -> None:
        payload = text.encode()
        mask = os.urandom(4)
        n = len(payload)
        header = bytes([0x81, 0x80 | n]) if n < 126 else bytes([0x81, 0x80 | 126]) + n.to_bytes(2, "big")
        self.sock.sendall(header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    def frames(self, idle: float = 1.0) -> list[RawFrame]:
        """Every complete frame that arrives until the socket has been quiet for `idle` seconds."""
        self.sock.settimeout(idle)
        while True:
            try:
                chunk = self.sock.recv(1 << 20)
            except TimeoutError:
                break
            except ConnectionResetError:  # closed with our last sends unread: what came before still counts
                break
            if not chunk:
                break
            self.buf += chunk
        out = []
        buf = self.buf
        while len(buf) >= 2:
            n = buf[1] & 0x7F
            off = 2
            if n == 126:
                n, off = int.from_bytes(buf[2:4], "big"), 4
            elif n == 127:
                n, off = int.from_bytes(buf[2:10], "big"), 10
            if len(buf) < off + n:
                break
            assert buf[0] & 0x80, "the gateway never fragments"
            out.append(RawFrame(buf[0] & 0x0F, bool(buf[0] & 0x40), buf[off : off + n]))
            buf = buf[off + n :]
        self.buf = buf
        return out

    def close(self) -> None:
        self.sock.close()


class StalledClient(RawClient):
    """A raw client with a tiny receive buffer that reads nothing until told to."""

    def __init__(self, port: int, path: str = "/") -> None:
        super().__init__(port, path, rcvbuf=4096)
        self.close_code: int | None = None

    def read_frames(self, idle: float = 1.0) -> list[Any]:
        """Drain the socket until it has been quiet for `idle` seconds; decode the text frames."""
        out = []
        for f in self.frames(idle):
            if f.opcode == 1:
                out.append(f.message())
            elif f.opcode == 8 and len(f.payload) >= 2:
                self.close_code = int.from_bytes(f.payload[:2], "big")
        return out


class LiteClient:
    """A WebSocket client on asyncio streams, cheap enough to open thousands at once."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(cls, port: int, path: str = "/") -> LiteClient:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            (
                f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        head = await reader.readuntil(b"\r\n\r\n")
        if b" 101 " not in head.split(b"\r\n", 1)[0]:
            raise ConnectionError(head.decode(errors="replace"))
        return cls(reader, writer)

    def send(self, message: dict[str, Any]) -> None:
        payload = json.dumps(message).encode()
        mask = os.urandom(4)
        n = len(payload)
        header = bytes([0x81, 0x80 | n]) if n < 126 else bytes([0x81, 0x80 | 126]) + n.to_bytes(2, "big")
        self.writer.write(header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    async def message(self) -> dict[str, Any]:
        """The next text message (the gateway never fragments and never masks)."""
        while True:
            head = await self.reader.readexactly(2)
            n = head[1] & 0x7F
            if n == 126:
                n = int.from_bytes(await self.reader.readexactly(2), "big")
            elif n == 127:
                n = int.from_bytes(await self.reader.readexactly(8), "big")
            payload = await self.reader.readexactly(n)
            if head[0] & 0x0F == 1:
                out: dict[str, Any] = json.loads(payload)
                return out
            if head[0] & 0x0F == 8:
                raise ConnectionError("closed by the gateway")

    def close(self) -> None:
        self.writer.close()
