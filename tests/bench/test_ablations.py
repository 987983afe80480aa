"""Every ablation in bench/ablate.py still runs the stack it swaps into and delivers the load, so
`make bench ABLATE=NAME` measures a technique rather than a crash. Completeness, never speed."""

from __future__ import annotations

import pytest

from bench.__main__ import run
from bench.ablate import ABLATIONS
from bench.scenarios import Scenario


@pytest.mark.parametrize("name", sorted(ABLATIONS))
def test_each_ablation_delivers_a_small_load_without_holes(name: str) -> None:
    s = Scenario("ablation-smoke", clients=10, symbols_per_client=3, universe=20, rate=2.0, duration=2.0)
    r = run(s, sample_every=1, ablate=name)
    assert r["ablation"] == name and r["connected"] == 10
    assert r["seq_holes"] == 0, "a client saw a hole in a stream"
    assert 0.9 * s.offered <= r["delivered_per_s"] <= 1.1 * s.offered, r["delivered_per_s"]
