"""The envelope clock: every frame's `ts` text is the UTC millisecond it was taken in, across
second (and so minute and day) boundaries, though it is formatted once a millisecond, not per frame."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from argus_gateway.fanout import Clock


def test_each_timestamp_is_the_millisecond_it_was_taken_in_across_second_boundaries() -> None:
    clock = Clock()
    seen: list[bytes] = []
    seconds: set[int] = set()
    end = time.monotonic() + 1.2  # at least one second boundary
    while time.monotonic() < end:
        text = clock.now()
        expected = datetime.fromtimestamp(clock.us // 1000 / 1000, UTC).isoformat(timespec="milliseconds")
        assert text.decode() == expected
        seconds.add(clock.us // 1_000_000)
        if not seen or seen[-1] != text:
            seen.append(text)
        time.sleep(0.0003)
    assert len(seconds) >= 2 and seen == sorted(seen) and len(seen) > 100
