"""Trades without duplicates: TDX transactions are paged from the newest, so track our position.

`get_transaction_data(start=0, count=n)` returns the day's last n transactions, oldest first. We
keep, per symbol and day, how many transactions we have seen (`count`, the absolute index of the
next one) and the tail of the last window; a new window is aligned on that tail and only what
follows it is new. When the alignment is not unique (repeated identical rows) or missing (a gap),
the day's transactions are counted by paging back and the count decides. Trade ids are
`YYYYMMDD-index`, stable across polls.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from .client import Row

TAIL = 64  # rows kept for alignment; long enough that repeated identical rows do not misalign


def row_key(row: Row) -> tuple[Any, ...]:
    return (row["time"], row["price"], row["vol"], row.get("num"), row["buyorsell"])


def overlap_ends(window: list[Row], tail: list[tuple[Any, ...]]) -> list[int]:
    """Every index in `window` just after which our `tail` could end, latest first.

    One candidate: aligned. None: the window does not reach back to what we saw. Several: rows repeat
    (identical transactions), so content alone cannot tell; the caller then counts instead.
    """
    keys = [row_key(r) for r in window]
    n = len(tail)
    out = []
    for end in range(len(keys), 0, -1):
        k = min(end, n)
        if keys[end - k : end] == tail[n - k :]:
            out.append(end)
    return out


class TradeTracker:
    def __init__(self, day: date, count: int, window: list[Row]) -> None:
        self.day = day
        self.count = count  # transactions seen today
        self.tail = [row_key(r) for r in window[-TAIL:]]

    def advance(self, window: list[Row]) -> tuple[list[Row], int] | None:
        """(new rows, absolute index of the first), or None when content alone cannot place the window."""
        if not self.tail:
            return self._take([]) if not window else None  # nothing to align on: count instead
        ends = overlap_ends(window, self.tail)
        if len(ends) != 1:
            return None
        return self._take(window[ends[0] :])

    def advance_to(self, window: list[Row], total: int) -> tuple[list[Row], int, int]:
        """Place the window by the day's transaction count; also returns how many rows were missed."""
        fresh = max(0, total - self.count)
        new = window[len(window) - min(fresh, len(window)) :] if fresh else []
        missed = fresh - len(new)
        self.count += missed
        return (*self._take(new), missed)

    def _take(self, new: list[Row]) -> tuple[list[Row], int]:
        first = self.count
        self.count += len(new)
        if new:
            self.tail = (self.tail + [row_key(r) for r in new])[-TAIL:]
        return new, first

    def trade_id(self, index: int) -> str:
        return f"{self.day:%Y%m%d}-{index}"
