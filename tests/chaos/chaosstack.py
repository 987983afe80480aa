"""Real Argus processes on a `NatsCluster`, configured the way production runs on three NATS nodes.

Every service gets the R3 settings (file retention with 3 replicas, a 3-replica lease bucket), the
short lease of a test (ttl 1.5 s, renew 0.5 s: the whole suite must use one, since the first
ingestor creates the bucket with its TTL) and a config file with short status heartbeats, so a
silent source is noticed in 3 s rather than 15 s. Processes land in the shared `procs` list, which
stops them after the test and prints their logs when it failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from feed import Feed
from natscluster import NatsCluster, NatsNode
from probes import metric
from stack import Proc, start_gateway, start_ingestor

R3_ENV = {
    "ARGUS_RETENTION_REPLICAS": "3",
    "ARGUS_RETENTION_STORAGE": "file",
    "ARGUS_LEASE_REPLICAS": "3",
    "ARGUS_LEASE_TTL": "1.5",
    "ARGUS_LEASE_RENEW": "0.5",
}
CONFIG: dict[str, Any] = {
    "datasource": {"status_interval": 1.0},  # heartbeats each second: a gateway calls a source down after 3 s
    "logging": {"stats_interval": 5.0},
}
# a small market, live only: seeding the past is tested elsewhere and costs start-up time here
MOCK_FLAGS = ("--universe", "5", "--rate", "10", "--history", "0", "--history-trades", "0")


@dataclass
class Service:
    proc: Proc
    mport: int
    port: int = 0  # the gateway's WebSocket port

    def kill(self) -> None:
        """kill -9: no drain, no lease release, no goodbye."""
        self.proc.stop(signal.SIGKILL)

    async def readyz(self) -> str:
        """The /readyz reason (a standby says whom it waits for)."""
        async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{self.mport}/readyz") as r:
            body = await r.json()
        return str(body.get("reason", ""))

    async def readyz_has(self, text: str) -> bool:
        return text in await self.readyz()

    async def metric(self, name: str, labels: str = "") -> float:
        return await metric(self.mport, name, labels)


class ChaosStack:
    """Starts gateways and mock ingestors against one cluster with the chaos settings."""

    def __init__(self, cluster: NatsCluster, log_dir: Path, procs: list[Proc]) -> None:
        self.cluster = cluster
        self.log_dir = log_dir
        self.procs = procs
        self.feeds: list[Feed] = []
        self.config = log_dir / "chaos.yaml"
        self.config.write_text(yaml.safe_dump(CONFIG))

    async def feed(self, port: int, name: str) -> Feed:
        """A WebSocket client read in the background; closed after the test, whatever happened."""
        f = await Feed.open(port, name)
        self.feeds.append(f)
        return f

    async def close(self) -> None:
        for f in self.feeds:
            await f.close()

    def _env(self, env: dict[str, str] | None) -> dict[str, str]:
        return {**R3_ENV, **(env or {})}

    def gateway(self, *extra: str, env: dict[str, str] | None = None) -> Service:
        p, port, mport = start_gateway(
            self.cluster.urls, self.log_dir, "--config", str(self.config), *extra, env=self._env(env)
        )
        self.procs.append(p)
        return Service(p, mport, port)

    def ingestor(self, *extra: str, env: dict[str, str] | None = None) -> Service:
        flags = (*MOCK_FLAGS, *extra)  # a later flag wins: extra may override the small market
        p, mport = start_ingestor(
            "mock", self.cluster.urls, self.log_dir, "--config", str(self.config), *flags, env=self._env(env)
        )
        self.procs.append(p)
        return Service(p, mport)


def clients_on(node: NatsNode) -> list[str]:
    """Names of the client connections a node holds (`argus-gateway-...`, `argus-ingestor-mock`)."""
    status, body = node.monitor("/connz")
    if status != 200 or not body:
        return []
    return sorted(c.get("name", "?") for c in body.get("connections") or [])


async def until(check: Any, timeout: float, what: str, interval: float = 0.05) -> float:
    """Poll an async predicate until true; returns the seconds it took, fails with `what` at the deadline."""
    start = time.monotonic()
    while True:
        with contextlib.suppress(aiohttp.ClientError, OSError):
            if await check():
                return time.monotonic() - start
        if time.monotonic() - start > timeout:
            raise AssertionError(f"not within {timeout}s: {what}")
        await asyncio.sleep(interval)


def report(title: str, **measured: float) -> None:
    """One line of measured recovery times, for README's table (shown with `pytest -s`)."""
    print(f"\n[chaos] {title}: " + ", ".join(f"{k}={v:.2f}s" for k, v in measured.items()), flush=True)
