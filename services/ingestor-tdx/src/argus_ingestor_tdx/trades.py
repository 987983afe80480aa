"""Trades without duplicates: TDX transactions are paged from the newest, so track our position.

`get_transaction_data(start=0, count=n)` returns the day's last n transactions, oldest first. We
keep, per symbol and day, how many transactions we have seen (`count`, the absolute index of the
next one) and the tail of the last window; a new window is aligned on that tail and only what
follows it is new. Trade ids are `YYYYMMDD-index`, stable across polls.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from .client import Row

TAIL = 64  # rows kept for alignment; long enough that repeated identical rows do not misalign


def row_key(row: Row) -> tuple[Any, ...]:
    return (row["time"], row["price"], row["vol"], row.get("num"), row["buyorsell"])


def overlap_end(window: list[Row], tail: list[tuple[Any, ...]]) -> int | None:
    """Index in `window` just after the last row we had seen, or None when they do not overlap."""
    keys = [row_key(r) for r in window]
    n = len(tail)
    for end in range(len(keys), 0, -1):
        k = min(end, n)
        if keys[end - k : end] == tail[n - k :]:
            return end
    return None


class TradeTracker:
    def __init__(self, day: date, count: int, window: list[Row]) -> None:
        self.day = day
        self.count = count  # transactions seen today
        self.tail = [row_key(r) for r in window[-TAIL:]]

    def advance(self, window: list[Row]) -> tuple[list[Row], int] | None:
        """(new rows, absolute index of the first) or None when the window does not reach our tail."""
        if not self.tail:
            new = window
        else:
            end = overlap_end(window, self.tail)
            if end is None:
                return None
            new = window[end:]
        first = self.count
        self.count += len(new)
        if new:
            self.tail = (self.tail + [row_key(r) for r in new])[-TAIL:]
        return new, first

    def skip(self, window: list[Row]) -> tuple[list[Row], int]:
        """No overlap even with the largest page: take the window as new (older rows were missed)."""
        first = self.count
        self.count += len(window)
        self.tail = [row_key(r) for r in window[-TAIL:]]
        return window, first

    def trade_id(self, index: int) -> str:
        return f"{self.day:%Y%m%d}-{index}"
