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


MAX_PARTS = 1024  # more pieces than any gateway's stream cap needs; beyond is a malformed set


class DemandTable:
    """Per-gateway wanted streams with expiry. Pure: the runner feeds it messages and clock ticks."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._gateways: dict[str, tuple[int, float, frozenset[Stream]]] = {}
        self._pieces: dict[str, tuple[int, float, dict[int, list[str]]]] = {}  # gateway -> (seq, until, parts)

    def apply(self, payload: bytes) -> bool:
        """Take one announcement (or one part of one); True when the union may have changed."""
        try:
            ann = _dec.decode(payload)
        except msgspec.MsgspecError as e:
            log.warning("bad demand announcement", extra={"error": str(e)})
            return False
        if not 0 <= ann.part < ann.parts <= MAX_PARTS:
            log.warning("bad demand announcement part", extra={"gateway": ann.gateway, "part": ann.part})
            return False
        prev = self._gateways.get(ann.gateway)
        if prev is not None and 1 < ann.seq < prev[0]:
            # A reordered old announcement. (seq 1 is a gateway that restarted under the same
            # configured id: it starts counting again and must not be ignored until the ttl runs out.)
            return False
        keys = ann.streams
        if ann.parts > 1:
            pending = self._pieces.get(ann.gateway)
            if pending is None or pending[0] != ann.seq:
                if pending is not None and 1 < ann.seq < pending[0]:
                    return False  # a part of an older set than the one being gathered
                pending = self._pieces[ann.gateway] = (ann.seq, self._clock() + ann.ttl, {})
            pending[2][ann.part] = ann.streams
            if len(pending[2]) < ann.parts:
                return False  # the set so far stays as it was until every part is here
            del self._pieces[ann.gateway]
            keys = [k for i in range(ann.parts) for k in pending[2][i]]
        else:
            self._pieces.pop(ann.gateway, None)
        streams: set[Stream] = set()
        bad: list[str] = []
        for key in keys:
            try:
                streams.add(parse_stream_key(key))
            except ValueError:
                bad.append(key)
        if bad:  # one line per announcement, however many keys it got wrong
            log.warning(
                "ignored bad stream keys in demand",
                extra={"gateway": ann.gateway, "count": len(bad), "key": bad[0][:80]},
            )
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
        for g in [g for g, (_, until, _) in self._pieces.items() if until < now]:
            del self._pieces[g]  # parts of a set that never completed
        return bool(dead)

    def union(self) -> frozenset[Stream]:
        out: set[Stream] = set()
        for _, _, streams in self._gateways.values():
            out |= streams
        return frozenset(out)

    def __len__(self) -> int:
        """Gateways with live announcements."""
        return len(self._gateways)
