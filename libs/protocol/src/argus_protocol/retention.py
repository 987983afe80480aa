"""Where JetStream keeps the market's recent state: four streams, each capturing data subjects.

| store | subjects | kept per subject |
|---|---|---|
| `last`  | `quote.>`, `tick.*.*.forming`, `kline.*.*.*.forming` | the newest |
| `tick`  | `tick.*.*.closed` (finished 分时 minutes) | 1,500 (a 24-hour day fits) |
| `kline` | `kline.*.*.*.closed` (finished bars) | 1,000 per period |
| `trade` | `trade.>` | 2,000 |

So a stream's *compacted view* — one entry per bar or minute, its newest version — is the finished
ones of its `.closed` subject followed by the `last` store's forming one when that is newer. The
per-subject counts are configuration (`retention.*` in the service config); the names are
`ARGUS_<STORE>` (with the deployment prefix: `ARGUS_PROD_LAST`). Pure: no I/O.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from .subjects import CLOSED, FORMING, Stream, Subjects

STORES: tuple[str, ...] = ("last", "tick", "kline", "trade")
DEFAULT_PER_SUBJECT: dict[str, int] = {"last": 1, "tick": 1500, "kline": 1000, "trade": 2000}


class Store(NamedTuple):
    kind: str  # one of STORES
    name: str  # the JetStream stream name
    subjects: list[str]  # what it captures


def stream_name(kind: str, prefix: str = "") -> str:
    tag = re.sub(r"[^A-Za-z0-9]+", "_", prefix).strip("_").upper()
    return f"ARGUS_{tag}_{kind.upper()}" if tag else f"ARGUS_{kind.upper()}"


def stores(subjects: Subjects) -> dict[str, Store]:
    p = f"{subjects.prefix}." if subjects.prefix else ""
    captured = {
        "last": [f"{p}quote.>", f"{p}tick.*.*.{FORMING}", f"{p}kline.*.*.*.{FORMING}"],
        "tick": [f"{p}tick.*.*.{CLOSED}"],
        "kline": [f"{p}kline.*.*.*.{CLOSED}"],
        "trade": [f"{p}trade.>"],
    }
    return {k: Store(k, stream_name(k, subjects.prefix), captured[k]) for k in STORES}


class Place(NamedTuple):
    """Where a stream's retained events live: its newest forming one, and its history."""

    newest: tuple[str, str] | None  # (store kind, subject) holding one newest event, if any
    history: tuple[str, str]  # (store kind, subject) holding the stream's retained events in order


def place(subjects: Subjects, stream: Stream) -> Place:
    if stream.type == "quote":
        subject = subjects.publish(stream)
        return Place(None, ("last", subject))
    if stream.type == "trade":
        return Place(None, ("trade", subjects.publish(stream)))
    return Place(("last", subjects.publish(stream, closed=False)), (stream.type, subjects.publish(stream, closed=True)))
