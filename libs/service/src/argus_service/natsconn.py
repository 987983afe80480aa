"""Connecting to NATS the same way in every service: retry the first connect, reconnect forever."""

from __future__ import annotations

import asyncio
import logging
import random
import ssl
from collections.abc import Awaitable, Callable
from typing import Any

import nats
from nats.aio.client import Client

from .config import NatsConfig

log = logging.getLogger("argus.nats")


async def connect_nats(
    cfg: NatsConfig,
    name: str,
    *,
    on_reconnect: Callable[[], Awaitable[None]] | None = None,
    on_disconnect: Callable[[], Awaitable[None]] | None = None,
    stop: asyncio.Event | None = None,
    pending_size: int = 64 * 1024 * 1024,
) -> Client:
    """Connect, retrying with capped backoff until connected or `stop` is set."""

    async def error_cb(e: Exception) -> None:
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
    delay = 0.2
    while True:
        try:
            nc = await nats.connect(**options)
            log.info("nats connected", extra={"url": nc.connected_url.netloc if nc.connected_url else cfg.url})
            return nc
        except Exception as e:
            if stop is not None and stop.is_set():
                raise
            log.warning(
                "nats connect failed, retrying", extra={"url": cfg.url, "error": repr(e), "retry_in": round(delay, 2)}
            )
            if stop is not None:
                try:
                    await asyncio.wait_for(stop.wait(), delay)
                    raise ConnectionError("stopped while connecting to NATS") from e
                except TimeoutError:
                    pass
            else:
                await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0) * (0.8 + random.random() * 0.4)
