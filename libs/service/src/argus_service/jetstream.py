"""The retention streams: JetStream keeps each data type's recent history (argus_protocol.retention).

Gateways and ingestors both make sure the streams exist. An existing stream is only ever raised
to what the config asks (replicas, limits), never lowered: an operator who gave a stream more
replicas or room keeps them across restarts.
"""

from __future__ import annotations

import logging

from argus_protocol import Subjects, stores
from nats.aio.client import Client
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig

from .config import RetentionConfig

log = logging.getLogger("argus.jetstream")


def stream_configs(cfg: RetentionConfig, subjects: Subjects) -> list[StreamConfig]:
    storage = StorageType.FILE if cfg.storage == "file" else StorageType.MEMORY
    out = []
    for kind, store in stores(subjects).items():
        per_subject, max_bytes, max_age = cfg.limits(kind)
        out.append(
            StreamConfig(
                name=store.name,
                subjects=store.subjects,
                retention=RetentionPolicy.LIMITS,
                storage=storage,
                max_msgs_per_subject=per_subject,
                max_bytes=max_bytes,
                max_age=max_age or None,
                discard=DiscardPolicy.OLD,
                allow_direct=True,  # batched direct gets serve snapshots and history
                num_replicas=cfg.replicas,
                duplicate_window=0,  # events carry no message id; no dedupe table to keep
            )
        )
    return out


def _raised(have: StreamConfig, want: StreamConfig) -> StreamConfig | None:
    """`have` with every limit raised to `want`'s where it is lower; None if nothing changes."""
    changed = False

    def higher(field: str, unlimited: float = -1) -> None:
        nonlocal changed
        a, b = getattr(have, field), getattr(want, field)
        a = unlimited if a in (None, 0, -1) else a
        b = unlimited if b in (None, 0, -1) else b
        if a != unlimited and (b == unlimited or b > a):
            setattr(have, field, getattr(want, field))
            changed = True

    higher("max_msgs_per_subject")
    higher("max_bytes")
    higher("max_age")
    if (want.num_replicas or 1) > (have.num_replicas or 1):
        have.num_replicas = want.num_replicas
        changed = True
    if sorted(have.subjects or []) != sorted(want.subjects or []):
        have.subjects = want.subjects
        changed = True
    if not have.allow_direct:
        have.allow_direct = True
        changed = True
    return have if changed else None


async def ensure_streams(nc: Client, cfg: RetentionConfig, subjects: Subjects) -> bool:
    """Create the retention streams, or raise existing ones to the config; False (logged) if
    JetStream is unavailable, which turns snapshots, history and resume off until it is back."""
    if not cfg.enabled:
        return False
    js = nc.jetstream()
    try:
        for want in stream_configs(cfg, subjects):
            assert want.name is not None
            try:
                info = await js.stream_info(want.name)
            except Exception:  # noqa: BLE001 - not found (or JetStream busy): try to create it
                await js.add_stream(want)
                log.info("retention stream created", extra={"stream": want.name, "replicas": want.num_replicas})
                continue
            update = _raised(info.config, want)
            if update is not None:
                await js.update_stream(update)
                log.info("retention stream raised", extra={"stream": want.name, "replicas": update.num_replicas})
        return True
    except Exception as e:  # noqa: BLE001 - any failure only turns retention off
        log.warning("retention streams unavailable", extra={"error": repr(e)})
        return False
