"""Fixtures for the board's tests: headless Chromium (skipped when it is not installed, except in
CI, where `make test` installs it), a gateway on a fixed port to kill and restart, the mock."""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent.parent / "client"))

from cdp import Browser, chromium_binary
from gatewayproc import GatewayOn
from natsserver import NatsServer
from stack import Proc


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    if chromium_binary() is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is missing in CI: `make test` installs it (apt-get, as root)")
        pytest.skip("chromium is not installed (sudo apt-get install chromium fonts-wqy-microhei)")
    b = await Browser().start()
    yield b
    await b.close()


@pytest.fixture
def gateway_on(own_nats: NatsServer, tmp_path: Path, procs: list[Proc]) -> Iterator[GatewayOn]:
    yield GatewayOn(own_nats.url, tmp_path, procs)


@pytest.fixture
def market(own_nats: NatsServer, ingestor) -> Callable[..., int]:  # type: ignore[no-untyped-def]
    def start(rate: float = 4) -> int:
        env = {"ARGUS_CONFIG": "", "MOCK_RATE": str(rate), "MOCK_UNIVERSE": "2", "MOCK_SEED": "3"}
        return int(ingestor("mock", url=own_nats.url, env=env))

    return start
