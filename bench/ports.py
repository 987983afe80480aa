"""Ports for the servers a test or a benchmark starts: free, outside the kernel's ephemeral range,
and disjoint between pytest-xdist workers."""

from __future__ import annotations

import os
import random
import socket
from pathlib import Path


def _ephemeral_range() -> range:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return range(int(low), int(high) + 1)
    except (OSError, ValueError):
        return range(32768, 61000)


def _pool() -> list[int]:
    """This process's share of the ports below the ephemeral range: one slice per xdist worker,
    since a port is free-checked here some time before its server binds it."""
    ephemeral = _ephemeral_range()
    pool = [p for p in range(20000, 32768) if p not in ephemeral] or list(range(61000, 65536))
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    return pool[int(worker) % workers :: workers] if worker.isdigit() else pool


# Ports handed out by this process, so two servers started back to back never get the same one.
_GIVEN: set[int] = set()


def free_port() -> int:
    """A port nothing listens on, chosen outside the kernel's ephemeral range.

    A port the kernel picked for a listener (bind to 0) comes from the ephemeral range, where any
    outgoing connection of the test run can take it before the server binds it (CI saw a gateway
    fail with "address already in use" that way); ports below that range are only ever bound on
    purpose, and each xdist worker draws from its own slice of them.
    """
    pool = _pool()
    rng = random.Random()
    for _ in range(200):
        port = rng.choice(pool)
        if port in _GIVEN:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _GIVEN.add(port)
        return port
    raise RuntimeError("no free port outside the ephemeral range")
