"""Ground truth for "every event once, or a GAP": what ingestors published, read straight from NATS,
against what the application got from the SDK."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from argus_client import Gap, KlineEvent, TickEvent, TradeEvent
from argus_protocol import KlineEvent as NatsKline
from argus_protocol import TickEvent as NatsTick
from argus_protocol import decode_event, stream_key
from nats.aio.client import Client as NATS


class Published:
    """Every trade, tick and kline event published, by stream key: seq -> bar mark (trade id)."""

    def __init__(self) -> None:
        self.streams: dict[str, dict[int, str]] = defaultdict(dict)

    async def start(self, nc: NATS) -> None:
        for subject in ("trade.>", "tick.>", "kline.>"):
            await nc.subscribe(subject, cb=self._on)
        await nc.flush()

    async def _on(self, msg: Any) -> None:
        ev = decode_event(msg.data)
        if isinstance(ev, NatsKline):
            mark = ev.kline.open_time
        elif isinstance(ev, NatsTick):
            mark = ev.tick.time
        else:
            mark = ev.trade.trade_id
        self.streams[stream_key(ev)][ev.seq] = mark

    def newest(self, key: str) -> int:
        return max(self.streams.get(key) or [0])


def problems(events: list[Any], published: Published, key: str, upto: int) -> list[str]:
    """What breaks "each seq exactly once, in order, or inside a GAP" for one stream, from the
    application's first event of it up to seq `upto`. Bars and 分时 count per bar: a version the
    application did not get is no loss when a newer version of the same bar came."""
    truth = published.streams.get(key, {})
    seen: list[Any] = [e for e in events if isinstance(e, (TradeEvent, TickEvent, KlineEvent, Gap)) and e.key == key]
    data = [e for e in seen if not isinstance(e, Gap)]
    if not data:
        return [f"{key}: no events"]
    out = []
    seqs = [e.seq for e in data]
    if seqs != sorted(set(seqs)):
        out.append(f"{key}: seqs not strictly increasing (duplicate or out of order)")
    for e in data:
        mark = e.kline.open_time if isinstance(e, KlineEvent) else e.tick.time if isinstance(e, TickEvent) else None
        if e.seq in truth and mark is not None and truth[e.seq] != mark:
            out.append(f"{key}: seq {e.seq} is bar {mark}, published as {truth[e.seq]}")
        if isinstance(e, TradeEvent) and e.seq in truth and truth[e.seq] != e.trade.trade_id:
            out.append(f"{key}: seq {e.seq} trade {e.trade.trade_id}, published {truth[e.seq]}")
    got = set(seqs)
    gaps = [(g.from_seq, g.to_seq) for g in seen if isinstance(g, Gap)]
    newest_of_bar: dict[str, int] = {}
    for e in data:
        if not isinstance(e, TradeEvent):
            newest_of_bar[truth.get(e.seq, "?")] = max(newest_of_bar.get(truth.get(e.seq, "?"), 0), e.seq)
    for seq in range(seqs[0], upto + 1):
        if seq in got or any(a <= seq <= b for a, b in gaps):
            continue
        mark = truth.get(seq)
        if mark is None:
            out.append(f"{key}: seq {seq} never published yet missing from the range")
        elif not key.startswith("trade:") and newest_of_bar.get(mark, 0) > seq:
            continue  # superseded by a newer version of the same bar
        else:
            out.append(f"{key}: seq {seq} neither delivered nor in a GAP")
        if len(out) > 10:
            break
    return out
