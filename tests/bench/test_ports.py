"""Ports for the servers tests and benchmarks start: two xdist workers never draw the same one,
and none comes from the kernel's ephemeral range (where outgoing connections take theirs)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from bench.ports import _ephemeral_range


def _drawn(worker: str) -> set[int]:
    env = {**os.environ, "PYTEST_XDIST_WORKER": worker, "PYTEST_XDIST_WORKER_COUNT": "2"}
    code = "import json; from bench.ports import _pool, free_port; print(json.dumps([_pool(), free_port()]))"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    pool, port = json.loads(out.stdout)
    assert port in pool
    return set(pool)


def test_two_workers_draw_from_disjoint_ports_outside_the_ephemeral_range() -> None:
    first, second = _drawn("gw0"), _drawn("gw1")
    assert first and second and not first & second
    assert not (first | second) & set(_ephemeral_range())
