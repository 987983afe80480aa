"""A WebSocket client read continuously in the background, every message stamped with its arrival time.

Chaos tests need to know *when* things arrived (the hole a kill leaves in live data, how soon a
STATUS came), and a client must keep reading while the test kills processes, so a `Feed` owns its
`wsclient.Client` and a reader task. Waiting is polling with a deadline, never a fixed sleep.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Callable
from typing import Any

from wsclient import Client

Match = Callable[[dict[str, Any]], bool]


class Feed:
    """`messages` in arrival order, `times` beside them (time.monotonic()); `closed_at` once the socket ends."""

    def __init__(self, client: Client, name: str = "") -> None:
        self.client = client
        self.name = name
        self.messages: list[dict[str, Any]] = []
        self.times: list[float] = []
        self.closed_at: float | None = None
        self.close_reason = ""
        self._task = asyncio.create_task(self._read(), name=f"feed-{name}")

    @classmethod
    async def open(cls, port: int, name: str = "") -> Feed:
        return cls(await Client.connect(port), name)

    async def _read(self) -> None:
        try:
            while True:
                msg = await self.client.recv(3600)
                self.messages.append(msg)
                self.times.append(time.monotonic())
        except (ConnectionError, OSError, TimeoutError, RuntimeError) as e:  # the socket ended: that is data too
            self.closed_at = time.monotonic()
            self.close_reason = repr(e)

    async def subscribe(self, symbols: list[str], types: list[str], timeout: float = 10.0, **extra: Any) -> dict:
        """SUBSCRIBE and wait for its SUBSCRIBED (the reader keeps everything else)."""
        start = len(self.messages)
        await self.client.send("SUBSCRIBE", {"symbols": symbols, "data_types": types, **extra}, id="s")
        _, msg = await self.wait(lambda m: m["type"] == "SUBSCRIBED", timeout, since=start)
        return msg

    async def wait(
        self, match: Match, timeout: float, *, since: int = 0, after: float | None = None
    ) -> tuple[float, dict[str, Any]]:
        """(arrival time, message) of the first message matching, from index `since` or arrived after `after`."""
        deadline = time.monotonic() + timeout
        i = since
        while True:
            while i < len(self.messages):
                if (after is None or self.times[i] > after) and match(self.messages[i]):
                    return self.times[i], self.messages[i]
                i += 1
            if self.closed_at is not None:
                raise ConnectionError(f"{self.name}: closed ({self.close_reason}) before a match")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.name}: nothing matching within {timeout}s; seen: {self.brief()}")
            await asyncio.sleep(0.01)

    async def wait_data(self, timeout: float, *, after: float | None = None, **match: Any) -> tuple[float, dict]:
        """The first DATA (arrived after `after`) whose data has the given items."""
        return await self.wait(lambda m: is_data(m, **match), timeout, after=after)

    async def wait_closed(self, timeout: float) -> float:
        """When the server side went away (the reader saw the socket end)."""
        deadline = time.monotonic() + timeout
        while self.closed_at is None:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.name}: still open after {timeout}s")
            await asyncio.sleep(0.01)
        return self.closed_at

    def brief(self, first: int = 6, last: int = 4) -> str:
        """The first and last few messages, in a few words each (for failure messages)."""
        t0 = self.times[0] if self.times else 0.0
        shown = [f"+{t - t0:.2f}s {brief(m)}" for t, m in zip(self.times, self.messages, strict=True)]
        if len(shown) > first + last:
            shown = [*shown[:first], "...", *shown[-last:]]
        return "; ".join(shown)

    def data(self, **match: Any) -> list[dict[str, Any]]:
        return [m["data"] for m in self.messages if is_data(m, **match)]

    def data_times(self, **match: Any) -> list[float]:
        return [t for t, m in zip(self.times, self.messages, strict=True) if is_data(m, **match)]

    def longest_silence(self, start: float, end: float, **match: Any) -> float:
        """The longest stretch without DATA from the last one before `start` until `end` (the hole an outage made)."""
        times = self.data_times(**match)
        before = [t for t in times if t <= start]
        inside = [t for t in times if start < t <= end]
        if not before or not inside:
            raise AssertionError(f"{self.name}: no DATA on both sides of {start:.2f} ({len(before)}, {len(inside)})")
        points = [before[-1], *inside, end]
        return max(b - a for a, b in itertools.pairwise(points))

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        with contextlib.suppress(Exception):  # the gateway may be gone (kill -9): close what is ours anyway
            await self.client.ws.close()
        await self.client.http.close()


def brief(m: dict[str, Any]) -> str:
    """One message in a few words: `DATA quote:000001.SZ 12 snapshot`, `GAP trade:... 5..9 upstream`."""
    d = m.get("data") or {}
    if m.get("type") == "DATA":
        flags = " ".join(k for k in ("snapshot", "replay") if d.get(k))
        return f"DATA {d['type']}:{d['symbol']} {d['seq']} {d.get('source', '')} {flags}".rstrip()
    if m.get("type") == "GAP":
        return f"GAP {d['type']}:{d['symbol']} {d['from_seq']}..{d['to_seq']} {d['reason']}"
    if m.get("type") == "STATUS":
        return f"STATUS {d.get('source')} {d.get('state')} {d.get('reason') or ''}".rstrip()
    return str(m.get("type"))


def is_data(m: dict[str, Any], **match: Any) -> bool:
    return m.get("type") == "DATA" and all(m["data"].get(k) == v for k, v in match.items())


def is_status(m: dict[str, Any], **match: Any) -> bool:
    return m.get("type") == "STATUS" and all(m["data"].get(k) == v for k, v in match.items())
