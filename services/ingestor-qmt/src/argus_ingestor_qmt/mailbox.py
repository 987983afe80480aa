"""Hand-off from QMT's callback thread to the event loop, coalescing storms.

xtdata calls back on its own thread, as fast as MiniQMT pushes (a whole-market snapshot is
thousands of codes at once). Each callback only stores its data under a lock; the first one
after a drain schedules a single `call_soon_threadsafe`. The loop then takes everything at once:
the newest quote per code, the newest version of each bar, and every trade in order. However
hard QMT pushes, the loop gets at most one wake-up per turn and never waits on the QMT thread.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

Row = Mapping[str, Any]


class Mailbox:
    def __init__(self, loop: asyncio.AbstractEventLoop, drain: Callable[[], None]) -> None:
        self._loop = loop
        self._drain = drain
        self._lock = threading.Lock()
        self._scheduled = False
        self.closed = False
        self.quotes: dict[str, Row] = {}
        self.bars: dict[tuple[str, str, Any], Row] = {}
        self.trades: list[tuple[str, Row]] = []
        self.posts = 0  # callbacks received
        self.wakeups = 0  # drains scheduled

    def post_quotes(self, items: Iterable[tuple[str, Row]]) -> None:
        with self._lock:
            self.posts += 1
            self.quotes.update(items)
            self._kick()

    def post_bars(self, period: str, code: str, rows: Iterable[Row]) -> None:
        with self._lock:
            self.posts += 1
            bars = self.bars
            for r in rows:
                bars[(code, period, r.get("time"))] = r
            self._kick()

    def post_trades(self, code: str, rows: Iterable[Row]) -> None:
        with self._lock:
            self.posts += 1
            self.trades.extend((code, r) for r in rows)
            self._kick()

    def _kick(self) -> None:
        if self._scheduled or self.closed:
            return
        self._scheduled = True
        self.wakeups += 1
        self._loop.call_soon_threadsafe(self._drain)

    def take(self) -> tuple[dict[str, Row], dict[tuple[str, str, Any], Row], list[tuple[str, Row]]]:
        with self._lock:
            out = self.quotes, self.bars, self.trades
            self.quotes, self.bars, self.trades = {}, {}, []
            self._scheduled = False
        return out
