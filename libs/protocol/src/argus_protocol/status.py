"""Source health as it travels on NATS and reaches clients as STATUS.

Subject: ``argus.status.{source}``. Each ingestor publishes a `SourceStatus` whenever a state
changes and re-publishes the current source-wide state every `interval` seconds; that repeat is
the source's heartbeat, so a gateway that hears nothing for 3 intervals reports the source `down`.
A status with `symbol` set concerns that symbol only (e.g. `halted`), otherwise the whole source.
"""

from __future__ import annotations

from typing import Literal

import msgspec

State = Literal["live", "stale", "down", "halted", "closed", "draining"]
STATES: tuple[str, ...] = ("live", "stale", "down", "halted", "closed", "draining")


class SourceStatus(msgspec.Struct, omit_defaults=True, kw_only=True):
    source: str
    state: State
    since: str  # ISO-8601 with offset: when this state began
    symbol: str | None = None
    reason: str | None = None
    interval: float = 5.0  # seconds until the next repeat; the heartbeat contract
    unsupported: list[str] = []  # data types this source cannot provide
    ts: int = 0  # epoch microseconds at publish
    started: str = ""  # when the publishing ingestor started: a change tells gateways it restarted or was replaced
