"""A WebSocket client that counts DATA envelopes in the byte stream, with no call per frame.

At a million frames a second a Python callback per frame costs the load generator more than the
gateway spends sending them, so the figure would be the client's. This client does the handshake
itself, then counts a marker that every DATA envelope holds exactly once (`"type":"DATA"` in
JSON, the string `DATA` in MessagePack) in each TCP read with one C-level `bytes.count`, and
samples latency from the first `ts` of a read. It cannot see inside deflated frames; the picows
client in loadgen.py handles those and the runs that check every `seq`.
"""

from __future__ import annotations

import asyncio
import base64
import os
import re
import time
from typing import Any

JSON_MARK = b'"type":"DATA"'
MSGPACK_MARK = b"\xa4DATA"
# what snapshot and replayed DATA carry (both flags, in this order, on a replayed quote snapshot)
MARKS = {
    False: (b'"snapshot":true', b'"replay":true', b'"snapshot":true,"replay":true', b'"type":"REPLAYED"'),
    True: (b"\xa8snapshot\xc3", b"\xa6replay\xc3", b"\xa8snapshot\xc3\xa6replay\xc3", b"\xa8REPLAYED"),
}
_JSON_TS = re.compile(rb'"ts":(\d+)')
_MSGPACK_TS = b"\xa2ts\xcf"  # the key "ts", then a uint64
PONG = bytes((0x8A, 0x80)) + b"\x00\x00\x00\x00"  # unsolicited masked pong: keeps the server's heartbeat happy


def masked_frame(payload: bytes, binary: bool) -> bytes:
    mask = os.urandom(4)
    n = len(payload)
    op = 0x82 if binary else 0x81
    if n < 126:
        head = bytes((op, 0x80 | n))
    elif n < 65536:
        head = bytes((op, 0x80 | 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((op, 0x80 | 127)) + n.to_bytes(8, "big")
    body = (int.from_bytes(payload, "big") ^ int.from_bytes((mask * (n // 4 + 1))[:n], "big")).to_bytes(n, "big")
    return head + mask + body


def _count(mark: bytes, data: bytes, edge: bytes, tail: bytes, lead: bytes) -> int:
    """`mark`s that end in `data`: those inside it, and those begun in the tail before it
    (`edge` is `tail + lead`, `lead` the read's first bytes)."""
    return data.count(mark) + edge.count(mark) - tail.count(mark) - lead.count(mark)


class Initial:
    """What one client waits for after its SUBSCRIBEs: a snapshot per stream, a REPLAYED per
    history request; `at` is when it had all of it (monotonic seconds)."""

    __slots__ = ("at", "replayed", "sent_at", "snapshots", "want_replayed", "want_snapshots")

    def __init__(self, want_snapshots: int, want_replayed: int) -> None:
        self.want_snapshots = want_snapshots
        self.want_replayed = want_replayed
        self.snapshots = 0
        self.replayed = 0
        self.sent_at = 0.0
        self.at = 0.0 if (want_snapshots or want_replayed) else -1.0

    def seen(self, snapshots: int, replayed: int) -> None:
        self.snapshots += snapshots
        self.replayed += replayed
        if self.snapshots >= self.want_snapshots and self.replayed >= self.want_replayed:
            self.at = time.monotonic()


class CountingClient(asyncio.Protocol):
    def __init__(
        self, counter: Any, host: str, path: str, subscribes: list[bytes], binary: bool, initial: Initial, defer: bool
    ) -> None:
        self.counter = counter
        self.request = (
            f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {base64.b64encode(os.urandom(16)).decode()}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
        self.subscribes = b"".join(masked_frame(m, binary) for m in subscribes)
        self.defer = defer  # burst: SUBSCRIBE only when told (send_subscribes), not on connect
        self.binary = binary
        self.mark = MSGPACK_MARK if binary else JSON_MARK
        self.snap, self.replay, self.both, self.replayed = MARKS[binary]
        self.initial = initial
        self.keep = len(self.both) - 1  # bytes carried over so a marker split across reads still counts
        self.tail = b""
        self.head = b""
        self.n = 0
        self.debt = 0  # flagged frames whose marker an earlier read already counted as live
        self.transport: asyncio.Transport | None = None
        self.ready: asyncio.Future[bool] = asyncio.get_running_loop().create_future()

    def send_subscribes(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.initial.sent_at = time.monotonic()
            self.transport.write(self.subscribes)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        transport.write(self.request)  # type: ignore[attr-defined]

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.ready.done():
            self.ready.set_exception(ConnectionError("closed during handshake"))

    def data_received(self, data: bytes) -> None:
        if not self.ready.done():
            self.head += data
            end = self.head.find(b"\r\n\r\n")
            if end < 0:
                return
            if b" 101 " not in self.head[:20]:
                self.ready.set_exception(ConnectionError(self.head[:60].decode(errors="replace")))
                return
            data = self.head[end + 4 :]
            self.head = b""
            if not self.defer:
                self.send_subscribes()
            self.ready.set_result(True)
        # Markers split across two reads are found in `edge`, the carried-over tail and the new
        # read's first bytes; the read itself is scanned as it is (no copy: hot reads 480 MB/s).
        tail = self.tail
        lead = data[: self.keep]
        edge = tail + lead
        self.tail = (data if len(data) >= self.keep else edge)[-self.keep :]
        c = self.counter
        n = _count(self.mark, data, edge, tail, lead)
        # snapshots and replays are the subscribe's answer, not live delivery: counted apart
        snaps = _count(self.snap, data, edge, tail, lead)
        if self.initial.at:
            flagged = snaps  # live: replays come only before `initial.at`, so one scan fewer per read
        else:
            both = _count(self.both, data, edge, tail, lead)
            flagged = snaps + _count(self.replay, data, edge, tail, lead) - both
            self.initial.seen(snaps, _count(self.replayed, data, edge, tail, lead))
        # a frame's marker comes before its flag: split across reads, it was counted live, so the
        # flag found now is a debt on this read and the next
        n -= flagged + self.debt
        self.debt = max(0, -n)
        if not c.counting or n <= 0:
            return
        c.bytes += len(data)
        before = self.n
        self.n += n
        c.messages += n
        if self.n // c.sample_every != before // c.sample_every:
            ts = self._first_ts(data)
            if ts:
                c.latencies_us.append(time.time_ns() // 1000 - ts)

    def _first_ts(self, buf: bytes) -> int:
        if self.binary:
            i = buf.find(_MSGPACK_TS)
            return int.from_bytes(buf[i + 4 : i + 12], "big") if 0 <= i and i + 12 <= len(buf) else 0
        m = _JSON_TS.search(buf)
        return int(m.group(1)) if m and m.end() < len(buf) else 0  # digits cut by the read's end: skip

    def pong(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(PONG)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
