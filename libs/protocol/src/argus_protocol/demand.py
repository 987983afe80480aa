"""Demand: how gateways tell ingestors which streams their clients want (ARCHITECTURE rule 4).

Announce + periodic refresh on core NATS; no JetStream needed, nothing to clean up:

- Each gateway publishes its *whole* wanted set as a `DemandAnnouncement` on
  ``argus.demand.announce.{gateway_id}`` as soon as it changes (coalesced over a few ms) and again
  every `refresh` seconds. `ttl` (3 × refresh by default) tells ingestors how long the
  announcement stays valid: a gateway that dies stops refreshing and its wants expire.
- A gateway shutting down cleanly announces an empty set, so its wants vanish at once.
- An ingestor that starts (or reconnects) publishes on ``argus.demand.query``; every gateway
  answers by re-announcing immediately, so a restarted ingestor knows the demand within a second.
- An ingestor follows the union of all unexpired announcements plus its own always-on list.

An announcement larger than the server's `max_payload` travels in `parts` messages with the same `seq`
(`part` 0..parts-1, each below the limit); an ingestor replaces a gateway's set only once every part
of one `seq` has arrived, so a lost or late part never shrinks it.

`streams` holds stream keys (`quote:000001.SZ`, `kline:600000.SH:5m`); ingestors validate them
again, since a subject is only as safe as the last check before it is built.
"""

from __future__ import annotations

import msgspec


class DemandAnnouncement(msgspec.Struct, kw_only=True):
    gateway: str
    seq: int  # increases per announcement of this gateway; stale reorderings are ignored
    ttl: float  # seconds this announcement stays valid
    streams: list[str]
    part: int = 0  # which piece of the set this message holds
    parts: int = 1  # how many pieces the set was split into


class DemandQuery(msgspec.Struct, kw_only=True):
    requester: str
