"""The gateway's own WebSocket layer (upgrade.py, wsreader.py): the opening handshake, frames as
RFC 6455 and RFC 7692 have them, and every broken or hostile frame closed with its code while the
other clients carry on. Raw sockets, so the test writes the exact bytes a client would."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import socket
import struct
import zlib
from typing import Any

import aiohttp
import pytest
from probes import log_problems
from wsclient import Client

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def frame(opcode: int, payload: bytes, *, fin: bool = True, rsv: int = 0, masked: bool = True) -> bytes:
    n = len(payload)
    b0 = (0x80 if fin else 0) | rsv | opcode
    if n < 126:
        head = bytes((b0, (0x80 if masked else 0) | n))
    elif n < 65536:
        head = bytes((b0, (0x80 if masked else 0) | 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((b0, (0x80 if masked else 0) | 127)) + n.to_bytes(8, "big")
    if not masked:
        return head + payload
    mask = os.urandom(4)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def text(message: dict[str, Any]) -> bytes:
    return json.dumps(message).encode()


class Raw:
    """A client on a plain blocking socket: the handshake's answer and the frames, byte for byte."""

    def __init__(self, port: int, headers: dict[str, str] | None = None, *, request: bytes | None = None) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.key = base64.b64encode(os.urandom(16)).decode()
        base = {
            "Host": f"127.0.0.1:{port}",
            "Upgrade": "websocket",
            "Connection": "Upgrade",
            "Sec-WebSocket-Key": self.key,
            "Sec-WebSocket-Version": "13",
        }
        base.update(headers or {})
        lines = "".join(f"{k}: {v}\r\n" for k, v in base.items() if v is not None)
        self.sock.sendall(request if request is not None else f"GET / HTTP/1.1\r\n{lines}\r\n".encode())
        self.sock.settimeout(5)
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(1)
            if not chunk:
                break
            head += chunk
        status, *fields = head.decode("latin-1").split("\r\n")
        self.status = int(status.split(" ")[1]) if status else 0
        self.headers = {k.strip().lower(): v.strip() for k, v in (f.split(":", 1) for f in fields if ":" in f)}
        self.buf = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def next_frame(self, timeout: float = 5.0) -> tuple[int, int, bytes] | None:
        """(first byte, opcode, payload) of the next frame, or None when the socket closed."""
        self.sock.settimeout(timeout)
        while True:
            buf = self.buf
            if len(buf) >= 2:
                n, at = buf[1] & 0x7F, 2
                if n == 126:
                    n, at = int.from_bytes(buf[2:4], "big"), 4
                elif n == 127:
                    n, at = int.from_bytes(buf[2:10], "big"), 10
                if len(buf) >= at + n:
                    self.buf = buf[at + n :]
                    return buf[0], buf[0] & 0x0F, buf[at : at + n]
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                return None
            if not chunk:
                return None
            self.buf += chunk

    def message(self, kind: str) -> dict[str, Any]:
        while True:
            f = self.next_frame()
            assert f is not None, f"closed before {kind}"
            if f[1] == 1:
                msg: dict[str, Any] = json.loads(f[2])
                if msg["type"] == kind:
                    return msg

    def close_code(self) -> tuple[int | None, bool]:
        """The code of the server's close frame, and whether the server then closed the socket."""
        code = None
        while True:
            try:
                f = self.next_frame()
            except TimeoutError:
                return code, False
            if f is None:
                return code, True
            if f[1] == 8:
                code = int.from_bytes(f[2][:2], "big") if len(f[2]) >= 2 else None

    def close(self) -> None:
        self.sock.close()


async def in_thread(fn: Any, *args: Any) -> Any:
    return await asyncio.get_running_loop().run_in_executor(None, fn, *args)


async def test_the_handshake_answers_as_rfc_6455_says(gateway: Any) -> None:
    port, _ = gateway()
    c = await in_thread(Raw, port, {"Sec-WebSocket-Protocol": "other, argus.v1.msgpack"})
    assert c.status == 101
    expect = base64.b64encode(hashlib.sha1(c.key.encode() + GUID).digest()).decode()
    assert c.headers["sec-websocket-accept"] == expect
    assert c.headers["sec-websocket-protocol"] == "argus.v1.msgpack"
    assert "sec-websocket-extensions" not in c.headers, "no compression unless the server allows it"
    c.close()
    for headers, status in [
        ({"Sec-WebSocket-Version": "8"}, 426),
        ({"Sec-WebSocket-Key": "c2hvcnQ="}, 400),
        ({"Sec-WebSocket-Key": None}, 400),
        ({"Connection": "keep-alive"}, 400),
    ]:
        r = await in_thread(Raw, port, headers)
        assert r.status == status, headers
        if status == 426:
            assert r.headers["sec-websocket-version"] == "13"
        r.close()
    big = await in_thread(Raw, port, {f"X-Pad-{i}": "x" * 200 for i in range(90)})
    assert big.status == 431
    big.close()
    # A GET of the endpoint without an upgrade, and the HTTP API on the same port, pipelined.
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET /v1/openapi.json HTTP/1.1\r\nHost: x\r\n\r\n")
    first = await reader.readuntil(b"\r\n\r\n")
    assert first.startswith(b"HTTP/1.1 426"), first
    length = int(next(ln for ln in first.split(b"\r\n") if ln.lower().startswith(b"content-length")).split(b":")[1])
    await reader.readexactly(length)
    second = await reader.readuntil(b"\r\n\r\n")
    assert second.startswith(b"HTTP/1.1 200"), second
    writer.close()


async def test_fragments_join_and_control_frames_between_them_are_answered(gateway: Any) -> None:
    port, _ = gateway()
    c = await in_thread(Raw, port)
    c.message("WELCOME")
    body = text({"type": "SUBSCRIPTIONS", "id": "frag"})
    c.send(frame(1, body[:5], fin=False) + frame(9, b"mid") + frame(0, body[5:9], fin=False) + frame(0, body[9:]))
    f = await in_thread(c.next_frame)
    assert f is not None and f[1] == 10 and f[2] == b"mid", "the PING inside the message is answered first"
    assert (await in_thread(c.message, "SUBSCRIPTIONS"))["id"] == "frag"
    c.send(frame(8, struct.pack("!H", 1000) + b"bye"))
    assert await in_thread(c.close_code) == (1000, True), "our close echoed, then the socket closed"


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (frame(1, b'{"type":"HEARTBEAT"}', masked=False), 1002),
        (frame(3, b"x"), 1002),
        (frame(1, b"{}", rsv=0x20), 1002),
        (frame(1, b"{}", rsv=0x40), 1002),  # compressed without permessage-deflate
        (frame(9, b"x" * 126), 1002),
        (frame(9, b"x", fin=False), 1002),
        (frame(0, b"x"), 1002),
        (frame(1, b"{", fin=False) + frame(1, b"}"), 1002),
        (frame(1, b'{"type": "\xff"}'), 1007),
        (frame(8, b"\x03\xed"), 1002),  # 1005 may never be sent
        (frame(8, b"\x03"), 1002),
        (bytes((0x82, 0xFF)) + (1 << 62).to_bytes(8, "big") + b"mask", 1009),  # declared, never sent
        (frame(2, b"x" * 40000, fin=False) + frame(0, b"x" * 40000), 1009),
    ],
    ids=[
        "unmasked",
        "unknown-opcode",
        "rsv2",
        "rsv1-without-deflate",
        "long-ping",
        "fragmented-ping",
        "stray-continuation",
        "message-inside-message",
        "text-not-utf8",
        "close-1005",
        "close-one-byte",
        "huge-declared-length",
        "fragments-past-the-frame-limit",
    ],
)
async def test_a_broken_frame_closes_with_its_code_and_others_carry_on(gateway: Any, data: bytes, code: int) -> None:
    port, _ = gateway(config={"server": {"max_frame_bytes": 65536}})
    other = await Client.connect(port)
    await other.expect("WELCOME")
    c = await in_thread(Raw, port)
    c.message("WELCOME")
    c.send(data)
    assert await in_thread(c.close_code) == (code, True)
    await other.send("SUBSCRIPTIONS", id="alive")
    assert (await other.expect("SUBSCRIPTIONS"))["id"] == "alive"
    await other.close()


async def test_compressed_client_messages_inflate_each_on_its_own_and_a_bomb_is_refused(
    gateway: Any, procs: list[Any]
) -> None:
    port, _ = gateway(config={"server": {"max_frame_bytes": 65536, "permessage_deflate": True}})
    offer = {"Sec-WebSocket-Extensions": "permessage-deflate; server_max_window_bits=10; client_max_window_bits"}
    c = await in_thread(Raw, port, offer)
    ext = c.headers["sec-websocket-extensions"]
    assert ext.startswith("permessage-deflate") and "client_no_context_takeover" in ext
    assert "server_max_window_bits=10" in ext
    c.message("WELCOME")
    for i in range(2):  # two messages, each deflated on its own
        z = zlib.compressobj(9, zlib.DEFLATED, -15)
        body = z.compress(text({"type": "SUBSCRIPTIONS", "id": f"z{i}"})) + z.flush(zlib.Z_SYNC_FLUSH)
        c.send(frame(1, body[:-4], rsv=0x40))
        f = await in_thread(c.next_frame)
        assert f is not None
        reply = json.loads(f[2] if not f[0] & 0x40 else zlib.decompressobj(-10).decompress(f[2] + b"\x00\x00\xff\xff"))
        assert reply["type"] == "SUBSCRIPTIONS" and reply["id"] == f"z{i}"
    z = zlib.compressobj(9, zlib.DEFLATED, -15)
    bomb = z.compress(b" " * 10_000_000) + z.flush(zlib.Z_SYNC_FLUSH)
    assert len(bomb) < 65536
    c.send(frame(1, bomb[:-4], rsv=0x40))
    assert await in_thread(c.close_code) == (1009, True)
    # aiohttp's client compresses what it sends once the handshake offers it
    async with aiohttp.ClientSession() as http, http.ws_connect(f"http://127.0.0.1:{port}/", compress=15) as ws:
        assert ws.compress == 15
        await ws.receive(timeout=5)  # WELCOME
        await ws.send_str(json.dumps({"type": "SUBSCRIPTIONS", "id": "aio"}))
        assert json.loads((await ws.receive(timeout=5)).data)["id"] == "aio"
    assert log_problems(procs[-1]) == []


async def test_a_client_that_does_not_answer_our_close_is_closed_after_the_close_timeout(gateway: Any) -> None:
    port, _ = gateway()
    c = await in_thread(Raw, port)
    c.message("WELCOME")
    c.send(frame(1, b'{"type":"HEARTBEAT"}', masked=False))  # closed 1002; we never answer it
    assert await in_thread(c.close_code) == (1002, True), "closed by the gateway within the close timeout"
