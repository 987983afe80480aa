"""Fake TDX servers for the TDX ingestor tests (the real pytdx client talks to them)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from fake_tdx import FakeMarket, FakeTdxServer
from fixtures_tdx import standard_market


@pytest.fixture
def tdx_server() -> Iterator[Callable[..., FakeTdxServer]]:
    """Factory: tdx_server(market=None) -> a started FakeTdxServer (standard market by default)."""
    started: list[FakeTdxServer] = []

    def make(market: FakeMarket | None = None) -> FakeTdxServer:
        server = FakeTdxServer(market or standard_market()).start()
        started.append(server)
        return server

    yield make
    for s in started:
        if not s.dead:
            s.stop()
