"""Following demand on the ingestor side: the union of live gateways' announcements.

Protocol: see `argus_protocol.demand`. This module only listens, expires and unions.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import msgspec
from argus_protocol import DemandAnnouncement, Stream, parse_stream_key

log = logging.getLogger("argus.demand")

_dec = msgspec.msgpack.Decoder(DemandAnnouncement)


class DemandTable:
    """Per-gateway wanted streams with expiry. Pure: the runner feeds it messages and clock ticks."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._gateways: dict[str, tuple[int, float, frozenset[Stream]]] = {}

    def apply(self, payload: bytes) -> bool:
        """Take one announcement; True when the union may have changed."""
        try:
            ann = _dec.decode(payload)
        except msgspec.MsgspecError as e:
            log.warning("bad demand announcement", extra={"error": str(e)})
            return False
        prev = self._gateways.get(ann.gateway)
        if prev is not None and 1 < ann.seq < prev[0]:
            # A reordered old announcement. (seq 1 is a gateway that restarted under the same
            # configured id: it starts counting again and must not be ignored until the ttl runs out.)
            return False
        streams: set[Stream] = set()
        for key in ann.streams:
            try:
                streams.add(parse_stream_key(key))
            except ValueError:
                log.warning("ignored bad stream key in demand", extra={"gateway": ann.gateway, "key": key[:80]})
        frozen = frozenset(streams)
        if not frozen:
            return self._gateways.pop(ann.gateway, None) is not None
        self._gateways[ann.gateway] = (ann.seq, self._clock() + ann.ttl, frozen)
        return prev is None or prev[2] != frozen

    def expire(self) -> bool:
        now = self._clock()
        dead = [g for g, (_, until, _) in self._gateways.items() if until < now]
        for g in dead:
            log.info("gateway demand expired", extra={"gateway": g})
            del self._gateways[g]
        return bool(dead)

    def union(self) -> frozenset[Stream]:
        out: set[Stream] = set()
        for _, _, streams in self._gateways.values():
            out |= streams
        return frozenset(out)

    @property
    def gateways(self) -> list[str]:
        return sorted(self._gateways)
