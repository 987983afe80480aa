"""The last-value stream: JetStream keeps the newest event per data subject for snapshots."""

from __future__ import annotations

import logging

from nats.aio.client import Client
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig

log = logging.getLogger("argus.jetstream")


async def ensure_last_value_stream(nc: Client, name: str, subjects: list[str]) -> bool:
    """Create or update the stream; False (logged) when JetStream is unavailable."""
    if not name:
        return False
    config = StreamConfig(
        name=name,
        subjects=subjects,
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.MEMORY,  # a cache: fast, and rebuilt by live traffic after a restart
        max_msgs_per_subject=1,
        discard=DiscardPolicy.OLD,
        max_age=86400.0,
        allow_direct=True,
        num_replicas=1,
    )
    js = nc.jetstream()
    try:
        try:
            await js.add_stream(config)
        except Exception:  # noqa: BLE001 - exists with other settings: update in place
            await js.update_stream(config)
        return True
    except Exception as e:  # noqa: BLE001 - any failure only turns snapshots off
        log.warning("last-value stream unavailable; snapshots off", extra={"stream": name, "error": repr(e)})
        return False
