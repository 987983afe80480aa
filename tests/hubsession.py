"""A gateway session on a hub, over a stand-in transport: for tests of the hub's write path alone."""

from __future__ import annotations

from typing import Any

from argus_gateway.fanout import Hub
from argus_gateway.session import Session


def hub_session(hub: Hub, transport: Any, name: str = "s") -> Session:
    """A plain JSON session with room to spare, whose writes go to `transport`."""
    return Session(
        name,
        transport,
        "json",
        outbox_bytes=1 << 20,
        high_water=1 << 18,
        slow_close=False,
        on_dirty=hub.mark_dirty,
        on_slow=lambda s: None,
        gap_frame=hub.gap_frame,
    )
