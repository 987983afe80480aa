"""The benchmark scenarios of issue 3: clients × symbols of a universe at a rate, plus options."""

from __future__ import annotations

from dataclasses import dataclass


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

    @property
    def offered(self) -> float:
        """Messages per second the gateway should deliver (quotes only)."""
        return self.clients * self.symbols_per_client * self.rate


_HEAVY = (1000, 20, 1000, 10.0)

SCENARIOS = {
    s.name: s
    for s in (
        Scenario("seed", 1000, 20, 1000, 1.0),
        Scenario("heavy", *_HEAVY),
        Scenario("wide", 10000, 10, 5000, 1.0),
        Scenario("hot", 1000, 50, 50, 20.0, hot=True),
        # heavy again, every client with one delivery option (PROTOCOL.md §1)
        Scenario("heavy-batch", *_HEAVY, query="batch=1"),
        Scenario("heavy-conflate", *_HEAVY, query="conflate_ms=250"),
        Scenario("heavy-msgpack", *_HEAVY, query="encoding=msgpack"),
        Scenario("heavy-deflate", *_HEAVY, deflate=True),
    )
}
KNEE_RATES = (1.0, 2.0, 5.0, 10.0, 15.0, 20.0, 30.0)
