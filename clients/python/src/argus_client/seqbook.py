"""Per-stream sequence state: what to drop as a duplicate, what to report as missing, and where to
resume after a reconnect.

Rules (docs/protocol.md §4, §5):
- an event whose seq is at or below the last one seen is a duplicate and is dropped;
- `GAP reason=reset` starts a new numbering: the last seq becomes the GAP's `to_seq` (often 0), so
  the lower seqs that follow are accepted;
- a trade whose seq skips without a GAP, or a bar/minute whose `first_seq` lies past the next seq,
  is a loss the server did not announce: the client reports it as `GAP reason=unannounced`;
- quotes supersede each other: skipped quote seqs are never a loss (conflation, resume).
"""

from __future__ import annotations

from collections.abc import Iterable

import msgspec

from .models import DataEvent, Gap, KlineEvent, TickEvent, TradeEvent


class SeqBook:
    def __init__(self) -> None:
        self.last: dict[str, int] = {}  # stream key -> last seq delivered (0: nothing yet)
        self.duplicates = 0

    def admit(self, event: DataEvent) -> tuple[bool, Gap | None]:
        """(deliver?, a GAP to deliver before it)."""
        key = event.key
        last = self.last.get(key, 0)
        seq = event.seq
        if last and seq <= last:
            self.duplicates += 1
            return False, None
        gap = None
        if last:
            if isinstance(event, TradeEvent) and seq > last + 1:
                gap = _gap(event, last + 1, seq - 1)
            elif isinstance(event, (KlineEvent, TickEvent)) and event.first_seq > last + 1:
                gap = _gap(event, last + 1, event.first_seq - 1)
        self.last[key] = seq
        return True, gap

    def gap(self, gap: Gap) -> Gap | None:
        """A server GAP: the range still missing from what this client has, or None if it has it all."""
        key = gap.key
        last = self.last.get(key, 0)
        if gap.reason == "reset":
            self.last[key] = gap.to_seq
            return gap
        if gap.to_seq <= last:
            return None  # received earlier (on a previous connection)
        if gap.from_seq <= last:
            gap = msgspec.structs.replace(gap, from_seq=last + 1)
        self.last[key] = gap.to_seq
        return gap

    def resume_points(self, keys: Iterable[str]) -> dict[str, int]:
        return {k: n for k in keys if (n := self.last.get(k, 0)) > 0}

    def forget(self, keys: Iterable[str]) -> None:
        for k in keys:
            self.last.pop(k, None)


def _gap(event: DataEvent, from_seq: int, to_seq: int) -> Gap:
    period = event.kline.period if isinstance(event, KlineEvent) else None
    return Gap(event.symbol, event.type, from_seq, to_seq, "unannounced", period)
