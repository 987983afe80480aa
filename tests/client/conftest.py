"""Fixtures for the SDK tests: a private NATS, the mock market, gateways (also on a fixed port, to
restart), a TCP proxy that breaks the link on demand, and a recorder of what was published."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from gatewayproc import GatewayOn
from natsserver import NatsServer
from stack import Proc
from tcpproxy import TcpProxy


@pytest.fixture
def market(own_nats: NatsServer, ingestor) -> Callable[..., int]:  # type: ignore[no-untyped-def]
    """Start the mock market on the private NATS: market(rate=20) -> metrics port."""

    def start(rate: float = 20, universe: int = 2) -> int:
        env = {"ARGUS_CONFIG": "", "MOCK_RATE": str(rate), "MOCK_UNIVERSE": str(universe), "MOCK_SEED": "7"}
        return int(ingestor("mock", url=own_nats.url, env=env))

    return start


@pytest.fixture
def gw(own_nats: NatsServer, gateway) -> Callable[..., int]:  # type: ignore[no-untyped-def]
    """A gateway on the private NATS with a 1 s heartbeat: gw(*flags) -> websocket port."""

    def start(*flags: str, config: dict | None = None) -> int:
        port, _ = gateway(
            "--heartbeat-interval", "1", *flags, url=own_nats.url, env={"ARGUS_CONFIG": ""}, config=config
        )
        return int(port)

    return start


@pytest.fixture
def gateway_on(own_nats: NatsServer, tmp_path: Path, procs: list[Proc]) -> Iterator[GatewayOn]:
    g = GatewayOn(own_nats.url, tmp_path, procs)
    yield g


@pytest.fixture
async def proxy_to() -> AsyncIterator[Callable[[int], object]]:
    made: list[TcpProxy] = []

    async def make(port: int) -> TcpProxy:
        p = await TcpProxy(port).start()
        made.append(p)
        return p

    yield make
    for p in made:
        await p.close()
