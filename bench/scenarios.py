"""The benchmark scenarios: clients × symbols of a universe at a rate, how they subscribe, options."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Scenario:
    name: str
    clients: int
    symbols_per_client: int
    universe: int
    rate: float  # updates per second per symbol (mock --rate)
    hot: bool = False  # every client on the same first symbols_per_client symbols
    duration: float = 30.0
    query: str = ""  # delivery options on the connection URL, e.g. "batch=1"
    deflate: bool = False  # clients offer permessage-deflate and the gateway allows it
    snapshot: bool = True  # as a real client subscribes; False measures the steady state alone
    burst: bool = False  # connect everyone first, then every SUBSCRIBE within the same second
    # the SUBSCRIBEs each client sends for its symbols (data_types, periods, history); quotes by default
    requests: tuple[dict[str, Any], ...] = ({},)
    mock_env: dict[str, str] = field(default_factory=dict)  # the mock's settings for this load

    @property
    def live_per_update(self) -> int:
        """Live DATA per symbol update: one per subscribed stream (a forming bar is re-sent)."""
        return sum(
            len(r.get("periods", ["1m"])) if t == "kline" else 1
            for r in self.requests
            for t in r.get("data_types", ["quote"])
        )

    @property
    def offered(self) -> float:
        """Live DATA per second the gateway should deliver."""
        return self.clients * self.symbols_per_client * self.rate * self.live_per_update

    @property
    def replays(self) -> int:
        """Requests per client that end with REPLAYED (those asking for history)."""
        return sum(1 for r in self.requests if r.get("history"))

    def subscribes(self, symbols: list[str]) -> list[dict[str, Any]]:
        return [
            {"type": "SUBSCRIBE", "id": i, "data": {"symbols": symbols, "snapshot": self.snapshot, **r}}
            for i, r in enumerate(self.requests)
        ]


_HEAVY = (1000, 20, 1000, 10.0)

SCENARIOS = {
    s.name: s
    for s in (
        Scenario("seed", 1000, 20, 1000, 1.0),
        Scenario("heavy", *_HEAVY),
        Scenario("wide", 10000, 10, 5000, 1.0),
        Scenario("hot", 1000, 50, 50, 20.0, hot=True),
        # the same loads without snapshots: what the snapshots cost (nothing, they should)
        Scenario("seed-nosnap", 1000, 20, 1000, 1.0, snapshot=False),
        Scenario("seed-bursty", 1000, 20, 1000, 1.0, mock_env={"MOCK_STEPS": "1"}),  # the yardstick's source shape
        Scenario("heavy-nosnap", *_HEAVY, snapshot=False),
        Scenario("hot-nosnap", 1000, 50, 50, 20.0, hot=True, snapshot=False),
        # every client subscribing in the same second, snapshots on; and the same without, for RSS
        Scenario("stampede", 10000, 10, 5000, 1.0, burst=True),
        Scenario("stampede-nosnap", 10000, 10, 5000, 1.0, burst=True, snapshot=False),
        # a chart's subscribe: the day's 分时 and 240 one-minute bars, for 20 symbols per client
        Scenario(
            "stampede-history",
            1000,
            20,
            1000,
            1.0,
            burst=True,
            requests=(
                {},
                {"data_types": ["tick"], "history": "day"},
                {"data_types": ["kline"], "periods": ["1m"], "history": 240},
            ),
            mock_env={"MOCK_HISTORY": "240", "MOCK_HISTORY_PERIODS": "1m", "MOCK_HISTORY_TRADES": "0"},
        ),
        # heavy again, every client with one delivery option (docs/protocol.md §1)
        # heavy with quotes as small as the yardstick's: how much of the cost is bytes on the wire
        Scenario("heavy-nobook", *_HEAVY, mock_env={"MOCK_BOOK": "false"}),
        # heavy with the yardstick's source shape: every symbol at once, every 100 ms
        Scenario("heavy-bursty", *_HEAVY, mock_env={"MOCK_STEPS": "10"}),
        # the mock's steps before 2026-12-02 (50 a second, 20 ms): each client's updates in more, smaller writes
        Scenario("seed-50steps", 1000, 20, 1000, 1.0, mock_env={"MOCK_STEPS": "50"}),
        Scenario("heavy-50steps", *_HEAVY, mock_env={"MOCK_STEPS": "50"}),
        Scenario("heavy-batch", *_HEAVY, query="batch=1"),
        Scenario("heavy-conflate", *_HEAVY, query="conflate_ms=250"),
        Scenario("heavy-msgpack", *_HEAVY, query="encoding=msgpack"),
        Scenario("heavy-deflate", *_HEAVY, deflate=True),
    )
}
KNEE_RATES = (1.0, 2.0, 5.0, 10.0, 15.0, 20.0, 30.0)
