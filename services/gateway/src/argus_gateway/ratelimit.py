"""Inbound message rate limiting: a token bucket per connection, plus strike counting."""

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

    def take(self) -> bool:
        now = self._clock()
        self.tokens = min(self.burst, self.tokens + (now - self._last) * self.rate)
        self._last = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False

    def strike(self) -> int:
        """Record a refused message; returns refusals within the strike window."""
        now = self._clock()
        cutoff = now - self.strike_window
        self._strike_times = [t for t in self._strike_times if t >= cutoff]
        self._strike_times.append(now)
        return len(self._strike_times)
