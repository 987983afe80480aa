"""The configured TDX servers: rotation, per-host exponential backoff, and why each one failed."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from .options import parse_hostport


@dataclass
class Host:
    host: str
    port: int
    failures: int = 0
    retry_at: float = 0.0  # monotonic time before which the host is not tried again
    last_error: str = ""

    @property
    def name(self) -> str:
        return f"{self.host}:{self.port}"


class HostPool:
    """Only the configured hosts are ever contacted: no discovery, no scanning."""

    def __init__(
        self,
        hosts: list[str],
        backoff_initial: float = 1.0,
        backoff_max: float = 60.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.hosts = [Host(*parse_hostport(h)) for h in hosts]
        self.backoff_initial = backoff_initial
        self.backoff_max = max(backoff_max, backoff_initial)
        self._now = monotonic
        self._next = 0

    def usable(self, host: Host) -> bool:
        return host.retry_at <= self._now()

    def pick(self, exclude: set[str] | frozenset[str] = frozenset()) -> Host | None:
        """The next usable host in rotation order, skipping `exclude` (names already tried)."""
        n = len(self.hosts)
        for i in range(n):
            host = self.hosts[(self._next + i) % n]
            if host.name not in exclude and self.usable(host):
                self._next = (self._next + i + 1) % n
                return host
        return None

    def failed(self, host: Host, reason: str) -> None:
        host.failures += 1
        host.last_error = reason
        host.retry_at = self._now() + min(self.backoff_max, self.backoff_initial * 2 ** (host.failures - 1))

    def succeeded(self, host: Host) -> None:
        host.failures = 0
        host.retry_at = 0.0
        host.last_error = ""

    def summary(self) -> str:
        """`host:port: reason` for every host that is failing; the STATUS reason when nothing answers."""
        failing = [f"{h.name}: {h.last_error}" for h in self.hosts if h.last_error]
        return "; ".join(failing) or "no TDX host available"
