"""Connecting to NATS the same way in every service: retry the first connect, reconnect forever.

`stop` is honoured in every state: nats-py's own connect loop never returns while no server answers
(with reconnects allowed it retries forever), so each attempt runs as a task raced against `stop`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import ssl
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import nats
from nats.aio.client import Client

from .config import NatsConfig

log = logging.getLogger("argus.nats")
T = TypeVar("T")


async def connect_nats(
    cfg: NatsConfig,
    name: str,
    *,
    on_reconnect: Callable[[], Awaitable[None]] | None = None,
    on_disconnect: Callable[[], Awaitable[None]] | None = None,
    stop: asyncio.Event | None = None,
    pending_size: int = 64 * 1024 * 1024,
) -> Client:
    """Connect, retrying with capped backoff until connected; ConnectionError once `stop` is set."""
    connected = False

    async def error_cb(e: Exception) -> None:
        if connected:  # before that, the retry loop below reports each failed attempt
            log.warning("nats error", extra={"error": repr(e)})

    async def disconnected_cb() -> None:
        log.warning("nats disconnected", extra={"url": cfg.url})
        if on_disconnect is not None:
            await on_disconnect()

    async def reconnected_cb() -> None:
        log.info("nats reconnected", extra={"url": cfg.url})
        if on_reconnect is not None:
            await on_reconnect()

    options: dict[str, Any] = {
        "servers": [u.strip() for u in cfg.url.split(",")],
        "name": name,
        "allow_reconnect": True,
        "max_reconnect_attempts": -1,
        "reconnect_time_wait": 0.5,
        "error_cb": error_cb,
        "disconnected_cb": disconnected_cb,
        "reconnected_cb": reconnected_cb,
        "pending_size": pending_size,
        "connect_timeout": 2,
        "drain_timeout": 5,  # a drain on shutdown must not outlast the pod's grace period
    }
    if cfg.user:
        options["user"], options["password"] = cfg.user, cfg.password
    if cfg.token:
        options["token"] = cfg.token
    if cfg.creds:
        options["user_credentials"] = cfg.creds
    if cfg.tls_ca or cfg.url.startswith("tls://"):
        ctx = ssl.create_default_context(cafile=cfg.tls_ca or None)
        options["tls"] = ctx
    # The first connect gives up after one pass over the servers so that this loop (not nats-py's,
    # which never returns while max_reconnect_attempts < 0) retries, with backoff and logs.
    first = {**options, "allow_reconnect": False, "max_reconnect_attempts": 1}
    delay = 0.2
    while True:
        try:
            nc = await _until_stopped(nats.connect(**first), stop)
        except ConnectionError:
            raise
        except Exception as e:  # noqa: BLE001 - any failed attempt is retried; only `stop` ends the loop
            log.warning(
                "nats connect failed, retrying", extra={"url": cfg.url, "error": repr(e), "retry_in": round(delay, 2)}
            )
            await _until_stopped(asyncio.sleep(delay), stop)
            delay = min(delay * 2, 5.0) * (0.8 + random.random() * 0.4)
            continue
        # From now on nats-py reconnects by itself, forever.
        nc.options["allow_reconnect"] = True
        nc.options["max_reconnect_attempts"] = -1
        connected = True
        log.info("nats connected", extra={"url": nc.connected_url.netloc if nc.connected_url else cfg.url})
        return nc


async def _until_stopped(work: Coroutine[Any, Any, T], stop: asyncio.Event | None) -> T:
    """Await `work`, or cancel it and raise ConnectionError as soon as `stop` is set."""
    if stop is None:
        return await work
    if stop.is_set():
        work.close()
        raise ConnectionError("stopped while connecting to NATS")
    task = asyncio.ensure_future(work)
    waiter = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
    if task.done():
        return task.result()
    task.cancel()
    with contextlib.suppress(BaseException):
        await task
    raise ConnectionError("stopped while connecting to NATS")


DRAIN_SECONDS = 2.0  # a live NATS drains in milliseconds; longer means it is going away
CLOSE_SECONDS = 0.5  # closing writes what is still buffered: a frozen server's full socket holds it


async def let_go(nc: Client) -> None:
    """Drain a connected client (what is buffered goes out); close one that is reconnecting at
    once: nats-py refuses to drain it, and its reconnect loop would otherwise outlive the service.

    The drain runs as its own task because nats-py's drain swallows a cancel and then flushes
    for 10 s: on a server that stopped answering, a timeout around it would not end it.
    """
    if nc.is_closed:
        return
    drain = asyncio.ensure_future(nc.drain()) if nc.is_connected else None
    if drain is not None:
        done, _ = await asyncio.wait({drain}, timeout=DRAIN_SECONDS)
        if done and drain.exception() is None:
            return
    # closing cancels the PONG the drain's flush waits for, so the drain task ends with it
    closing = asyncio.ensure_future(nc.close())
    await asyncio.wait({closing}, timeout=CLOSE_SECONDS)
    for task in (closing, drain):
        if task is not None and task.done() and not task.cancelled():
            task.exception()  # retrieved: a failed drain or close is the expected end here
