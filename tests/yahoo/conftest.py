"""Fake Yahoo upstreams for the Yahoo ingestor tests (the real yfinance code parses what they send)."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from fake_chart import FakeChartServer
from fake_streamer import FakeStreamer


@pytest.fixture
async def chart_server() -> AsyncIterator[FakeChartServer]:
    server = await FakeChartServer().start()
    yield server
    await server.stop()


@pytest.fixture
async def streamer() -> AsyncIterator[FakeStreamer]:
    server = await FakeStreamer().start()
    yield server
    await server.stop()
