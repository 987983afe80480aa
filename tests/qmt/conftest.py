"""Fixtures for the QMT ingestor tests: a fake xtdata (with its own callback thread)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from qmt_fake_xtdata import FakeXtData


@pytest.fixture
def fake_xt() -> Iterator[FakeXtData]:
    fake = FakeXtData()
    yield fake
    fake.close()
