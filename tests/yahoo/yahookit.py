"""Drive a YahooSource in-process: a recording SourceContext, a settable clock, event collection."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from argus_ingestor_yahoo.source import YahooSource
from sourceharness import Recorder, SourceHarness
from yahoo_fixtures import NOW

FAST = {
    "poll_interval": 0.3,
    "poll_timeout": 5.0,
    "stale_after": 30.0,
    "resubscribe_interval": 30.0,
    "heartbeat": 5.0,
    "backoff_initial": 0.05,
    "backoff_max": 0.2,
    "schedule": "always",
}


class Clock:
    def __init__(self, now: datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class Harness(SourceHarness):
    def __init__(self, ws_url: str, chart_url: str, cache_dir: str, clock: Clock | None = None, **options: Any) -> None:
        self.clock = clock or Clock()
        opts = {**FAST, "ws_url": ws_url, "chart_url": chart_url, "cache_dir": cache_dir, **options}
        super().__init__(YahooSource(opts, clock=self.clock), Recorder("yahoo"))
