"""Trading-session spans as sources write them in their options: '09:30-11:30'."""

from __future__ import annotations

from datetime import time


def parse_session(item: str) -> tuple[time, time]:
    """'09:30-11:30' -> (09:30, 11:30); the message names the option so config errors read well."""
    try:
        start, end = (time.fromisoformat(part.strip()) for part in item.split("-"))
    except ValueError:
        raise ValueError(f"sessions: {item!r} is not HH:MM-HH:MM") from None
    if end <= start:
        raise ValueError(f"sessions: {item!r} ends before it starts")
    return start, end
