"""Chart polling: at most one history() request per symbol per `interval`, all data types sharing it.

yfinance blocks (curl_cffi), so requests run in a bounded thread pool: at most `workers` in
flight, and a symbol is never queued twice. In session a symbol is polled every `interval`;
outside its session once when it becomes wanted and once more after the session it was polled in
(to pick up the closing bars), then not until the next session. After n failures in a row a
symbol waits interval × 2ⁿ (at most 16×): a rate-limited or unknown ticker is not retried flat out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from .chart import ChartClient, ChartDay

log = logging.getLogger("argus.yahoo")


class Poller:
    """Calls `on_result(symbol, day)` / `on_failure(symbol, error)` on the event loop."""

    def __init__(
        self,
        client: ChartClient,
        interval: float,
        workers: int,
        in_session: Callable[[str], bool],
        on_result: Callable[[str, ChartDay], None],
        on_failure: Callable[[str, BaseException], None],
    ) -> None:
        self.client = client
        self.interval = interval
        self.in_session = in_session
        self.on_result = on_result
        self.on_failure = on_failure
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="yahoo-chart")
        self._slots = asyncio.Semaphore(workers)
        self._symbols: dict[str, tuple[str, str]] = {}  # symbol -> (Yahoo ticker, zone name)
        self._last: dict[str, tuple[float, bool]] = {}  # symbol -> (monotonic start, was in session)
        self._inflight: dict[str, asyncio.Task[None]] = {}
        self._failures: dict[str, int] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="yahoo-poller")

    async def stop(self) -> None:
        tasks = [t for t in (self._task, *self._inflight.values()) if t is not None]
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        self._executor.shutdown(wait=False, cancel_futures=True)  # a request in flight ends at its timeout

    def set_symbols(self, symbols: dict[str, tuple[str, str]]) -> None:
        gone = [s for s in self._symbols if s not in symbols]
        self.client.forget([self._symbols[s][0] for s in gone])
        for s in gone:
            self._last.pop(s, None)
            self._failures.pop(s, None)
        self._symbols = dict(symbols)
        self._wake.set()

    def request(self, symbol: str, target: tuple[str, str]) -> None:
        """One request for `symbol` now (a quote's day fields), unless one is in flight already."""
        if symbol not in self._inflight:
            self._inflight[symbol] = asyncio.create_task(self._poll(symbol, target), name=f"yahoo-chart-{symbol}")

    def _due(self, symbol: str, now: float) -> bool:
        last = self._last.get(symbol)
        if last is None:
            return True
        started, was_in_session = last
        if now - started < self.interval * 2 ** min(self._failures.get(symbol, 0), 4):
            return False
        return self.in_session(symbol) or was_in_session

    async def _run(self) -> None:
        tick = min(0.5, self.interval / 4)
        while True:
            self._wake.clear()
            now = time.monotonic()
            for symbol in list(self._symbols):
                if symbol not in self._inflight and self._due(symbol, now):
                    self._last[symbol] = (now, self.in_session(symbol))
                    self._inflight[symbol] = asyncio.create_task(self._poll(symbol), name=f"yahoo-chart-{symbol}")
            with contextlib.suppress(TimeoutError):  # not wait_for: it can swallow stop()'s cancel
                async with asyncio.timeout(tick):
                    await self._wake.wait()

    async def _poll(self, symbol: str, once: tuple[str, str] | None = None) -> None:
        try:
            async with self._slots:
                target = self._symbols.get(symbol) or once
                if target is None:
                    return
                loop = asyncio.get_running_loop()
                try:
                    day = await loop.run_in_executor(self._executor, self.client.fetch, *target)
                except Exception as e:  # noqa: BLE001 - yfinance/curl raise many kinds; each is one failed poll
                    self._failures[symbol] = self._failures.get(symbol, 0) + 1
                    self.on_failure(symbol, e)
                    return
                finally:
                    # spacing counts from the answer: the next request starts >= interval after this one ended
                    if symbol in self._last:
                        self._last[symbol] = (time.monotonic(), self._last[symbol][1])
            self._failures.pop(symbol, None)
            if symbol in self._symbols or once is not None:
                self.on_result(symbol, day)
        finally:
            self._inflight.pop(symbol, None)
