"""Talking to NATS without nats-py's per-call costs: subscribing without a round of the write
queue each, delivering without a task hop, publishing a batch as one buffer.

nats-py's `subscribe()` and `unsubscribe()` each push a future through the client's flusher queue
(1,024 deep) and wait for it, so a gateway opening 5,000 subjects in a subscribe wave waited
seconds for its own SUBs before it could ask the store for their snapshots. These do what nats-py
does inside those calls, minus the wait: the SUB (or UNSUB) joins the client's write queue at once
— so anything published after it reaches the server after it — and the flusher is woken once.

And nats-py hands each message to a per-subscription queue and task (a task switch per message,
15 % of the gateway's CPU under load); `subscribe_now` instead calls `deliver(msg)` right where
nats-py's reader parsed it, synchronously, in order. nats-py still owns the subscription and
re-subscribes it after a reconnect.

And nats-py's parser finds each MSG with a regex and awaits a coroutine per message to build a
`Msg` (~4 µs a message, ~15 % of the gateway's samples in heavy-bursty besides its own fan-out); the first
`subscribe_now` on a connection gives the connection's parser a fast path for plain MSGs to such
subscriptions (a `find`, a `split`, one call); everything else (HMSG, PING, INFO, -ERR, a MSG to one
of nats-py's own subscriptions) still goes through nats-py's parser, in order. It saves ~2 µs a
message (`make bench ABLATE=nats-py-parser`).

And nats-py queues every publish as its own small buffer, which its flusher hands to one
`writelines` (20 % of the mock's CPU under load, most of it the kernel walking hundreds of tiny
buffers); `publish_pubs` queues a whole batch as one, written into one buffer as it is built
(`PubBatch`), so a publisher encoding into a reused scratch buffer makes no bytes per message.

They use nats-py internals; `tests/service/test_natswire.py` pins that they keep working.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from nats.aio.client import Client
from nats.aio.subscription import Subscription
from nats.protocol import command
from nats.protocol.parser import AWAITING_CONTROL_LINE, MAX_CONTROL_LINE_SIZE, Parser

log = logging.getLogger("argus.nats")


class _Deliver:
    """Stands in for a subscription's pending queue: every message is handed over at once."""

    __slots__ = ("deliver", "sub")

    def __init__(self, deliver: Callable[[Any], None], sub: Any) -> None:
        self.deliver = deliver
        self.sub = sub

    def put_nowait(self, msg: Any) -> None:
        self.sub._pending_size -= len(msg.data)  # nothing stays pending
        try:
            self.deliver(msg)
        except Exception:  # a bug in one delivery must not take nats-py's reader down with it
            log.exception("message delivery failed", extra={"subject": msg.subject})

    def qsize(self) -> int:
        return 0

    def empty(self) -> bool:
        return True

    def task_done(self) -> None:
        return None

    async def join(self) -> None:
        return None


class Delivered:
    """A plain MSG as the fast path hands it over: what a delivery reads of nats-py's `Msg`."""

    __slots__ = ("_subject", "data")

    headers = None
    reply = ""

    def __init__(self, subject: bytes | bytearray, data: bytes) -> None:
        self._subject = subject
        self.data = data

    @property
    def subject(self) -> str:
        return self._subject.decode()  # on demand: the fan-out never reads it


class _FastParser(Parser):
    """nats-py's parser, taking the plain MSGs (no headers, no reply) of `subscribe_now`
    subscriptions itself: no regex, no await, no `Msg` per message. Anything else (and a payload
    nats-py's parser began on) goes to nats-py's own `parse` one item at a time, so the order of
    everything holds and each read goes back to the fast path after it."""

    async def parse(self, data: bytes = b"") -> None:
        buf = self.buf
        buf.extend(data)
        while buf:
            if self.state == AWAITING_CONTROL_LINE:
                self._take_plain(buf)
                if not buf:
                    return
                end = _extent(buf)
                if end is None:
                    if len(buf) >= MAX_CONTROL_LINE_SIZE and buf.find(b"\r\n", 0, MAX_CONTROL_LINE_SIZE) < 0:
                        await super().parse()  # no control line fits: nats-py says what is wrong
                    return  # the rest of the item is still on its way
            elif len(buf) >= self.needed + 2:
                end = self.needed + 2  # the payload nats-py's parser is waiting for, and its CRLF
            else:
                return
            # exactly that one item, nats-py's way: its parser reads `self.buf`, so it gets the item alone
            item = self.buf = buf[:end]
            del buf[:end]
            try:
                await super().parse()
            finally:
                reset = self.buf is not item  # the connection was reset meanwhile (reset() gave it a new buffer)
                if not reset:
                    self.buf = buf
            if reset:
                return  # what was read before the reset belongs to a connection that is gone
            if item:  # it did not take the item whole: it gets everything, as without this class
                buf[:0] = item
                await super().parse()
                return

    def _take_plain(self, buf: bytearray) -> None:
        """Deliver the plain MSGs at the head of `buf` to `subscribe_now` subscriptions."""
        nc: Any = self.nc
        subs = nc._subs
        n = len(buf)
        pos = taken = size = 0
        while buf.startswith(b"MSG ", pos):
            eol = buf.find(b"\r\n", pos, pos + MAX_CONTROL_LINE_SIZE)
            if eol < 0:
                break
            fields = buf[pos + 4 : eol].split(b" ")
            if len(fields) != 3 or not fields[1].isdigit() or not fields[2].isdigit():
                break  # a reply subject, or garbage (nats-py's parser says which)
            end = eol + 2 + int(fields[2])
            if end + 2 > n:
                break  # the payload is not all here yet
            sub = subs.get(int(fields[1]))
            queue = sub._pending_queue if sub is not None else None
            if type(queue) is not _Deliver:
                break  # one of nats-py's own subscriptions (or one gone): its path
            payload = bytes(buf[eol + 2 : end])
            pos = end + 2
            taken += 1
            size += end - eol - 2
            sub._received += 1
            try:
                queue.deliver(Delivered(fields[0], payload))  # split gave it its own bytearray
            except Exception:  # a bug in one delivery must not take the reader down with it
                log.exception("message delivery failed", extra={"subject": fields[0].decode(errors="replace")})
        if pos:
            del buf[:pos]
            nc.stats["in_msgs"] += taken
            nc.stats["in_bytes"] += size


def _extent(buf: bytearray) -> int | None:
    """Where the protocol item at the head of `buf` ends; None while it is not all here."""
    eol = buf.find(b"\r\n", 0, MAX_CONTROL_LINE_SIZE)
    if eol < 0:
        return None
    if buf.startswith(b"MSG ") or buf.startswith(b"HMSG "):
        size = buf[:eol].rpartition(b" ")[2]
        if not size.isdigit():
            return eol + 2  # malformed: nats-py's parser raises on it
        end = eol + 2 + int(size) + 2
        return end if end <= len(buf) else None
    return eol + 2


def _wake_flusher(nc: Any) -> None:
    queue = nc._flush_queue
    if queue is not None and queue.empty() and nc.is_connected:
        queue.put_nowait(asyncio.get_running_loop().create_future())


def subscribe_now(nc: Client, subject: str, deliver: Callable[[Any], None]) -> Subscription:
    """Subscribe `subject` (valid already) at once; `deliver(msg)` is called for each message, in
    nats-py's read loop: it must not block."""
    c: Any = nc
    if c.is_closed or c.is_draining:
        raise ConnectionError("NATS connection closed or draining")
    if type(c._ps) is Parser:
        c._ps.__class__ = _FastParser  # the same parser with its state, from its next read on
    c._sid += 1
    sid = c._sid
    sub = Subscription(nc, sid, subject, pending_bytes_limit=0)  # no task, no queue, no slow-consumer cut
    s: Any = sub
    s._pending_queue = _Deliver(deliver, sub)
    c._subs[sid] = sub
    if not c.is_reconnecting:  # a reconnect sends every held subscription anyway
        cmd = command.sub_cmd(subject, "", sid)
        c._pending.append(cmd)
        c._pending_data_size += len(cmd)
        _wake_flusher(c)
    return sub


def unsubscribe_now(sub: Subscription) -> None:
    """`await sub.unsubscribe()` without waiting for the flusher; nothing more is delivered to it."""
    c: Any = sub._conn
    s: Any = sub
    if s._closed or c.is_closed:
        return
    s._closed = True
    s._stop_processing()
    c._remove_sub(s._id)
    if not c.is_reconnecting and not c.is_draining:
        cmd = command.unsub_cmd(s._id, 0)
        c._pending.append(cmd)
        c._pending_data_size += len(cmd)
        _wake_flusher(c)


class BufferFull(Exception):
    """NATS is away and nats-py's reconnect buffer (`pending_size`) cannot take the batch."""


def pub_prefix(subject: str) -> bytes:
    """The start of a PUB to `subject`, up to its size: made once per subject, reused per message."""
    return f"PUB {subject}  ".encode()


class PubBatch:
    """PUBs written into one buffer as they come (no bytes object per message, no join)."""

    __slots__ = ("buffer", "count", "payload_bytes")

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.count = 0
        self.payload_bytes = 0

    def add(self, prefix: bytes, payload: bytes | bytearray) -> None:
        """A PUB of `payload` to the subject `prefix` was made for (`pub_prefix`)."""
        n = len(payload)
        buf = self.buffer
        buf += prefix
        buf += b"%d\r\n" % n
        buf += payload
        buf += b"\r\n"
        self.count += 1
        self.payload_bytes += n

    def add_pubs(self, pubs: bytes, count: int, payload_bytes: int) -> None:
        """`count` whole PUBs laid out elsewhere (quoteblock.py), carrying `payload_bytes` of payload."""
        self.buffer += pubs
        self.count += count
        self.payload_bytes += payload_bytes


def publish_batch(nc: Client, messages: list[tuple[str, bytes]]) -> None:
    """`publish_pubs` of (valid subject, payload) pairs; ValueError for a payload over the server's
    max_payload (nothing queued)."""
    max_payload = nc.max_payload
    batch = PubBatch()
    for subject, payload in messages:
        if len(payload) > max_payload:
            raise ValueError(f"payload of {len(payload)} bytes over the server's max_payload {max_payload}")
        batch.add(pub_prefix(subject), payload)
    publish_pubs(nc, batch)


def publish_pubs(nc: Client, batch: PubBatch) -> None:
    """Queue a batch's PUBs as one buffer and wake the flusher once; raises BufferFull (nothing
    queued) while disconnected with the reconnect buffer full. Never waits: the flusher writes it
    on its next turn."""
    c: Any = nc
    if c.is_closed or c.is_draining_pubs:
        raise ConnectionError("NATS connection closed or draining")
    blob = bytes(batch.buffer)
    if not c.is_connected and (c._max_pending_size <= 0 or len(blob) + c._pending_data_size > c._max_pending_size):
        raise BufferFull(f"{batch.count} messages: reconnect buffer full")
    c.stats["out_msgs"] += batch.count
    c.stats["out_bytes"] += batch.payload_bytes
    c._pending.append(blob)
    c._pending_data_size += len(blob)
    _wake_flusher(c)
