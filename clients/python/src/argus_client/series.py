"""Bars and 分时 as tables: collect kline or tick events (history, then live) and turn them into a
pandas DataFrame (`pip install "argus-client[pandas]"`).

A bar or minute is re-sent while it forms; a series keeps the newest version of each, in time
order, so `history` replays and live updates fold into one row per bar.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .models import DataEvent, KlineEvent, TickEvent

KLINE_COLUMNS = ("open_time", "open", "high", "low", "close", "volume", "amount", "closed")
TICK_COLUMNS = ("time", "price", "avg_price", "volume", "amount", "closed")


class BarSeries:
    """The newest version of each bar (kline) or minute (tick) of one stream."""

    def __init__(self, events: Iterable[DataEvent] = ()) -> None:
        self.rows: dict[str, KlineEvent | TickEvent] = {}
        self.kind: str | None = None
        self.key: str | None = None
        for ev in events:
            self.add(ev)

    def add(self, event: DataEvent) -> bool:
        """Fold one event in; returns False for events of other streams or types."""
        if not isinstance(event, (KlineEvent, TickEvent)):
            return False
        if self.key is None:
            self.key, self.kind = event.key, event.type
        elif event.key != self.key:
            return False
        mark = event.kline.open_time if isinstance(event, KlineEvent) else event.tick.time
        old = self.rows.get(mark)
        if old is None or old.seq < event.seq:
            self.rows[mark] = event
        return True

    def __len__(self) -> int:
        return len(self.rows)

    def records(self) -> list[dict[str, Any]]:
        out = []
        for mark in sorted(self.rows):
            ev = self.rows[mark]
            body = ev.kline if isinstance(ev, KlineEvent) else ev.tick
            cols = KLINE_COLUMNS if isinstance(ev, KlineEvent) else TICK_COLUMNS
            out.append({c: getattr(body, c) for c in cols})
        return out

    def to_dataframe(self) -> Any:
        return to_dataframe(self.rows.values())


def to_dataframe(events: Iterable[Any]) -> Any:
    """A DataFrame of kline or tick events (newest version per bar), indexed by the bar's time as
    timezone-aware timestamps; raises ImportError naming the extra when pandas is missing."""
    try:
        import pandas as pd
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError('to_dataframe needs pandas: pip install "argus-client[pandas]"') from e
    series = BarSeries()
    for ev in events:
        series.add(ev)
    rows = series.records()
    index_col = "open_time" if series.kind == "kline" else "time"
    cols = KLINE_COLUMNS if series.kind == "kline" else TICK_COLUMNS
    frame = pd.DataFrame(rows, columns=list(cols))
    frame[index_col] = pd.to_datetime(frame[index_col])
    return frame.set_index(index_col)
