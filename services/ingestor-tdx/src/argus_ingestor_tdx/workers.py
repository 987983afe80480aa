"""Blocking pytdx calls off the event loop: N workers, each one thread owning one TDX connection."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from .client import EmptyAnswer, TdxConnection, TdxError
from .hostpool import Host, HostPool

log = logging.getLogger("argus.tdx")

T = TypeVar("T")
Op = Callable[[TdxConnection], T]


class NoHostAnswered(Exception):
    """Every usable host failed this request; `reason` names each host and why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _Worker:
    def __init__(self, index: int) -> None:
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"tdx-{index}")
        self.conn: TdxConnection | None = None
        self.host: Host | None = None


class WorkerPool:
    """`await pool.run(op)` runs `op(connection)` in a worker thread, failing over across hosts.

    A new connection is health-probed with a real one-symbol quote request (servers that accept
    TCP and log in but answer data requests with empty bodies are failures, not hosts).
    """

    def __init__(
        self,
        hosts: HostPool,
        workers: int,
        timeout: float,
        probe: tuple[int, str],
        on_error: Callable[[str], None] = lambda kind: None,
    ) -> None:
        self.hosts = hosts
        self.timeout = timeout
        self.probe = probe
        self.on_error = on_error
        self._workers = [_Worker(i) for i in range(workers)]
        self._idle: asyncio.Queue[_Worker] = asyncio.Queue()
        for w in self._workers:
            self._idle.put_nowait(w)

    async def run(self, op: Op[T]) -> T:
        worker = await self._idle.get()
        try:
            return await self._run_on(worker, op)
        finally:
            self._idle.put_nowait(worker)

    async def _run_on(self, worker: _Worker, op: Op[T]) -> T:
        loop = asyncio.get_running_loop()
        tried: set[str] = set()
        while True:
            if worker.conn is not None and worker.host is not None and not self.hosts.usable(worker.host):
                await self._drop(worker)  # another worker found this host failing
            if worker.conn is None:
                host = self.hosts.pick(tried)
                if host is None:
                    raise NoHostAnswered(self.hosts.summary())
                tried.add(host.name)
                try:
                    worker.conn = await loop.run_in_executor(worker.executor, self._connect, host)
                except TdxError as e:
                    self._failed(host, e)
                    continue
                worker.host = host
                log.info("tdx connected", extra={"host": host.name})
            host = worker.host
            assert host is not None
            tried.add(host.name)
            try:
                result = await loop.run_in_executor(worker.executor, op, worker.conn)
            except TdxError as e:
                self._failed(host, e)
                await self._drop(worker)
                continue
            self.hosts.succeeded(host)
            return result

    def _connect(self, host: Host) -> TdxConnection:
        conn = TdxConnection(host.host, host.port, self.timeout)
        try:
            if not conn.quotes([self.probe]):
                raise EmptyAnswer("health probe: empty quote answer")
        except TdxError as e:
            conn.close()
            raise TdxError(f"health probe: {e.reason}" if not e.reason.startswith("health") else e.reason) from None
        return conn

    def _failed(self, host: Host, e: TdxError) -> None:
        self.hosts.failed(host, e.reason)
        self.on_error("empty" if isinstance(e, EmptyAnswer) or "empty" in e.reason else "upstream")
        log.warning("tdx host failed", extra={"host": host.name, "reason": e.reason, "failures": host.failures})

    async def _drop(self, worker: _Worker) -> None:
        conn, worker.conn, worker.host = worker.conn, None, None
        if conn is not None:
            with contextlib.suppress(RuntimeError):
                await asyncio.get_running_loop().run_in_executor(worker.executor, conn.close)

    def close(self) -> None:
        """Close every connection and let the threads go; a call in flight ends at its socket timeout."""
        for w in self._workers:
            conn, w.conn = w.conn, None
            if conn is not None:
                conn.close()
            w.executor.shutdown(wait=False, cancel_futures=True)
