"""When to reconnect: exponential backoff with full jitter, and the server's own hints.

Full jitter (a uniform draw between 0 and the exponential cap) spreads a crowd of clients that
lost the same gateway over the whole window instead of sending them back in waves.
"""

from __future__ import annotations

import random
from collections.abc import Callable


class Backoff:
    """Attempt n (from 0) waits uniform(0, min(maximum, initial * multiplier**n)) seconds.

    `floor` is the shortest wait whatever the draw, so even an unlucky run of zeros cannot become
    a tight reconnect loop. `random` is injectable so tests can pin the draws.
    """

    def __init__(
        self,
        initial: float = 0.5,
        maximum: float = 30.0,
        multiplier: float = 2.0,
        floor: float = 0.05,
        random: Callable[[], float] = random.random,
    ) -> None:
        if not (0 < initial <= maximum) or multiplier < 1 or floor < 0:
            raise ValueError("backoff needs 0 < initial <= maximum, multiplier >= 1, floor >= 0")
        self.initial = initial
        self.maximum = maximum
        self.multiplier = multiplier
        self.floor = floor
        self.random = random
        self.attempt = 0

    def cap(self, attempt: int) -> float:
        """The upper bound of attempt `attempt`'s wait."""
        if attempt > 64:  # the cap is long reached; avoid float overflow
            return self.maximum
        return min(self.maximum, self.initial * self.multiplier**attempt)

    def next(self) -> float:
        """The wait before the next attempt; each call widens the window until `maximum`."""
        delay = max(self.floor, self.random() * self.cap(self.attempt))
        self.attempt += 1
        return delay

    def after_hint(self, hint_s: float) -> float:
        """A server asked for at least `hint_s` (draining, restart): that, plus up to as much again
        of jitter so the clients of one gateway do not all return in the same millisecond."""
        self.attempt += 1
        return hint_s + self.random() * hint_s

    def reset(self) -> None:
        self.attempt = 0
