"""Per-connection delivery options from the handshake's query string (PROTOCOL.md §1)."""

from __future__ import annotations

from collections.abc import Mapping

import msgspec

MAX_CONFLATE_MS = 60_000
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


class DeliveryOptions(msgspec.Struct, frozen=True):
    batch: bool = False  # DATA envelopes of one write travel as one array frame
    conflate_ms: int = 0  # at most one quote per stream per this many ms, the newest


def delivery_options(query: Mapping[str, str]) -> tuple[DeliveryOptions, list[str]]:
    """The options asked for, and one message per value that was not understood (then ignored)."""
    problems: list[str] = []
    batch = False
    raw = query.get("batch")
    if raw is not None:
        if raw.lower() in _TRUE:
            batch = True
        elif raw.lower() not in _FALSE:
            problems.append(f"batch must be 0 or 1, not {raw[:20]!r}; delivering one envelope per frame")
    conflate_ms = 0
    raw = query.get("conflate_ms")
    if raw is not None:
        try:
            conflate_ms = int(raw)
        except ValueError:
            conflate_ms = -1
        if not 0 <= conflate_ms <= MAX_CONFLATE_MS:
            problems.append(
                f"conflate_ms must be an integer from 0 to {MAX_CONFLATE_MS}, not {raw[:20]!r}; quotes are not conflated"
            )
            conflate_ms = 0
    return DeliveryOptions(batch=batch, conflate_ms=conflate_ms), problems
