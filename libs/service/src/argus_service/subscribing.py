"""Subscribing without a round of the write queue per subscription.

nats-py's `subscribe()` and `unsubscribe()` each push a future through the client's flusher queue
(1,024 deep) and wait for it, so a gateway opening 5,000 subjects in a subscribe wave waited
seconds for its own SUBs before it could ask the store for their snapshots. These do what nats-py
does inside those calls, minus the wait: the SUB (or UNSUB) joins the client's write queue at once
— so anything published after it reaches the server after it — and the flusher is woken once.
nats-py still owns the subscription: it delivers to it and re-subscribes it after a reconnect.
They use nats-py internals; `tests/service/test_subscribing.py` pins that they keep working.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from nats.aio.client import Client
from nats.aio.subscription import Subscription
from nats.protocol import command


def _wake_flusher(nc: Any) -> None:
    queue = nc._flush_queue
    if queue is not None and queue.empty() and nc.is_connected:
        queue.put_nowait(asyncio.get_running_loop().create_future())


def subscribe_now(
    nc: Client,
    subject: str,
    cb: Callable[[Any], Awaitable[None]],
    *,
    pending_msgs_limit: int = 200_000,
    pending_bytes_limit: int = 256 * 1024 * 1024,
) -> Subscription:
    """`nc.subscribe(subject, cb=cb)` that returns at once; `subject` must be valid already."""
    c: Any = nc
    if c.is_closed or c.is_draining:
        raise ConnectionError("NATS connection closed or draining")
    c._sid += 1
    sid = c._sid
    sub = Subscription(
        nc, sid, subject, cb=cb, pending_msgs_limit=pending_msgs_limit, pending_bytes_limit=pending_bytes_limit
    )
    sub._start(c._error_cb)
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
