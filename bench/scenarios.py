"""The benchmark scenarios of issue 3: clients × symbols of a universe at a rate."""

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

    @property
    def offered(self) -> float:
        """Messages per second the gateway should deliver (quotes only)."""
        return self.clients * self.symbols_per_client * self.rate


SCENARIOS = {
    s.name: s
    for s in (
        Scenario("seed", 1000, 20, 1000, 1.0),
        Scenario("heavy", 1000, 20, 1000, 10.0),
        Scenario("wide", 10000, 10, 5000, 1.0),
        Scenario("hot", 1000, 50, 50, 20.0, hot=True),
    )
}
KNEE_RATES = (1.0, 2.0, 5.0, 10.0, 15.0, 20.0, 30.0)
