"""The bounded queue between the socket reader and the application.

The reader never waits for the application, so a slow handler cannot make the gateway see a slow
consumer and close the connection. When the application falls behind:

- a quote waiting in the queue is replaced by the stream's newer quote (quotes supersede each
  other; the skipped seqs are no loss, as with `conflate_ms`);
- a bar or 分时 minute waiting in the queue is replaced by its newer version (a bar is present
  when its newest version is);
- past `capacity` waiting events, trades and new bars/minutes are dropped until the queue has
  drained to half; each stream that lost events gets one `GAP reason=client_overflow` with the
  exact range, queued before that stream's next event (or once the queue is empty). For bars the
  range stops before the bar the next event belongs to, whose newest version is then delivered;
- replayed events (history, resume) are never dropped: the SUBSCRIBE bounded them. Neither are
  GAP, STATUS, REPLAYED, ERROR and connection events: they are few.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

from .models import DataEvent, Gap, KlineEvent, QuoteEvent, TickEvent, TradeEvent

_CLOSED = object()


class _Slot:
    __slots__ = ("ckey", "counted", "item")

    def __init__(self, item: Any, ckey: str | None, counted: bool = False) -> None:
        self.item = item
        self.ckey = ckey
        self.counted = counted  # held against `capacity`


class Inbox:
    def __init__(self, capacity: int = 10_000) -> None:
        if capacity < 2:
            raise ValueError("the queue needs room for at least 2 events")
        self.capacity = capacity
        self._q: deque[_Slot] = deque()
        self._waiting: dict[str, _Slot] = {}  # conflation key -> its slot in the queue
        self._gaps: dict[str, Gap] = {}  # stream key -> events dropped since its last admitted one
        self._data = 0  # droppable events waiting
        self._overflowing = False
        self._getter: asyncio.Future[None] | None = None
        self._closed = False
        self.conflated = 0
        self.dropped = 0

    def __len__(self) -> int:
        return len(self._q)

    # ------------------------------------------------------------------ reader side
    def put(self, item: Any) -> None:
        if self._closed:
            return
        if isinstance(item, (QuoteEvent, TickEvent, KlineEvent, TradeEvent)):
            self._put_data(item)
            return
        if isinstance(item, Gap):
            pending = self._gaps.pop(item.key, None)
            if pending is not None:
                self._push(_Slot(pending, None))  # the earlier range first
        self._push(_Slot(item, None))

    def _put_data(self, ev: DataEvent) -> None:
        key = ev.key
        ckey = _conflation_key(ev)
        if ckey is not None and key not in self._gaps:  # behind a pending GAP, order comes first
            slot = self._waiting.get(ckey)
            if slot is not None:
                slot.item = ev
                self.conflated += 1
                return
        if isinstance(ev, QuoteEvent) or ev.replay:
            self._gap_before(key, ev)
            self._push(_Slot(ev, ckey))  # bounded by streams (quotes) or by the request (replays)
            return
        if self._overflowing and self._data <= self.capacity // 2:
            self._overflowing = False
        if self._overflowing or self._data >= self.capacity:
            self._overflowing = True
            self.dropped += 1
            gap = self._gaps.get(key)
            if gap is None:
                period = ev.kline.period if isinstance(ev, KlineEvent) else None
                self._gaps[key] = Gap(ev.symbol, ev.type, ev.seq, ev.seq, "client_overflow", period)
            else:
                gap.to_seq = ev.seq
            return
        self._gap_before(key, ev)
        self._data += 1
        self._push(_Slot(ev, ckey, counted=True))

    def _gap_before(self, key: str, ev: DataEvent) -> None:
        """The stream's pending overflow GAP goes out ahead of its next event."""
        gap = self._gaps.pop(key, None)
        if gap is None:
            return
        if isinstance(ev, (KlineEvent, TickEvent)) and ev.first_seq:
            gap.to_seq = min(gap.to_seq, ev.first_seq - 1)  # this bar's newest version follows
        if gap.to_seq >= gap.from_seq:
            self._push(_Slot(gap, None))

    def _push(self, slot: _Slot) -> None:
        self._q.append(slot)
        if slot.ckey is not None:
            self._waiting[slot.ckey] = slot
        getter = self._getter
        if getter is not None and not getter.done():
            getter.set_result(None)

    def close(self) -> None:
        """No more events; `get` returns what is queued, then None."""
        self._closed = True
        self._flush_gaps()
        getter = self._getter
        if getter is not None and not getter.done():
            getter.set_result(None)

    # ------------------------------------------------------------------ application side
    def get_nowait(self) -> Any:
        """The next event, or None when nothing waits."""
        if not self._q:
            self._flush_gaps()  # caught up: what was lost is reported now
            if not self._q:
                return None
        slot = self._q.popleft()
        item = slot.item
        if slot.ckey is not None and self._waiting.get(slot.ckey) is slot:
            del self._waiting[slot.ckey]
        if slot.counted:
            self._data -= 1
        return item

    async def get(self, timeout: float | None = None) -> Any:
        """The next event; None once closed and empty, or after `timeout` seconds."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            item = self.get_nowait()
            if item is not None or self._closed:
                return item
            left = None if deadline is None else deadline - loop.time()
            if left is not None and left <= 0:
                return None
            self._getter = loop.create_future()
            try:
                await asyncio.wait_for(self._getter, left)
            except TimeoutError:
                return None
            finally:
                self._getter = None

    def _flush_gaps(self) -> None:
        if self._gaps:
            gaps = list(self._gaps.values())
            self._gaps.clear()
            for gap in gaps:
                self._push(_Slot(gap, None))
        self._overflowing = False


def _conflation_key(ev: DataEvent) -> str | None:
    if isinstance(ev, QuoteEvent):
        return ev.key
    if isinstance(ev, KlineEvent):
        return f"{ev.key}@{ev.kline.open_time}"
    if isinstance(ev, TickEvent):
        return f"{ev.key}@{ev.tick.time}"
    return None
