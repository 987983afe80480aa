"""Inbound rate limiting: a token bucket per connection, plus strike counting.

A message costs one token; a request more, by the streams it names, and an oversized message as
much as the largest request, so the bucket meters work done rather than frames received.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class TokenBucket:
    __slots__ = ("_clock", "_last", "_strike_times", "burst", "rate", "strike_window", "tokens")

    def __init__(
        self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic, strike_window: float = 10.0
    ) -> None:
        self.rate = rate
        self.burst = float(burst)
        self.tokens = float(burst)
        self._clock = clock
        self._last = clock()
        self._strike_times: list[float] = []
        self.strike_window = strike_window

    def take(self, cost: float = 1.0) -> bool:
        """Spend `cost` tokens (at most a full burst: a cost above it could never pass)."""
        now = self._clock()
        self.tokens = min(self.burst, self.tokens + (now - self._last) * self.rate)
        self._last = now
        cost = min(cost, self.burst)
        if self.tokens >= cost:
            self.tokens -= cost
            return True
        return False

    def strike(self) -> int:
        """Record a refused message; returns refusals within the strike window."""
        now = self._clock()
        cutoff = now - self.strike_window
        self._strike_times = [t for t in self._strike_times if t >= cutoff]
        self._strike_times.append(now)
        return len(self._strike_times)
