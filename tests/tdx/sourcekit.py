"""Drive a TdxSource in-process: a recording SourceContext, a settable clock, event collection."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from argus_ingestor_tdx.source import TdxSource
from fixtures_tdx import at
from sourceharness import Recorder, SourceHarness

FAST = {
    "interval": 0.05,
    "bars_interval": 0.05,
    "minutes_interval": 0.05,
    "trades_interval": 0.05,
    "timeout": 1.0,
    "backoff_initial": 0.05,
    "backoff_max": 0.2,
    "down_after": 0.4,
    "workers": 2,
}


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class Harness(SourceHarness):
    def __init__(self, ports: list[int], clock: Clock | None = None, **options: Any) -> None:
        self.clock = clock or Clock(at("10:00").replace(second=30))
        opts = {**FAST, "hosts": [f"127.0.0.1:{p}" for p in ports], **options}
        super().__init__(TdxSource(opts, clock=self.clock), Recorder("tdx"))
