"""A pass over many dirty sockets yields the loop after its time budget and finishes next turn."""

from __future__ import annotations

import asyncio
import time

from argus_gateway.fanout import Hub
from argus_gateway.metrics import GatewayMetrics
from argus_protocol import Subjects
from hubsession import hub_session
from prometheus_client import CollectorRegistry


class SlowTransport:
    """A socket whose every write costs 50 µs of CPU, like a busy kernel send path."""

    def __init__(self) -> None:
        self.written: list[bytes] = []

    def get_write_buffer_size(self) -> int:
        return 0

    def is_closing(self) -> bool:
        return False

    def write(self, data: bytes) -> None:
        end = time.perf_counter() + 50e-6
        while time.perf_counter() < end:
            pass
        self.written.append(data)


async def test_flush_yields_after_its_budget_and_delivers_everything_next_turns() -> None:
    hub = Hub(None, Subjects(), GatewayMetrics(CollectorRegistry()), on_demand_change=lambda: None, flush_budget=0.002)
    transports = [SlowTransport() for _ in range(1000)]  # 50 ms of writes in all
    sessions = [hub_session(hub, t, f"s{i}") for i, t in enumerate(transports)]
    for s in sessions:
        s.push_frame(b"frame")
    ticks = 0
    # Yielding turn by turn, this loop gets to run only when the flush lets go of the event loop.
    while any(not tr.written for tr in transports):
        ticks += 1
        await asyncio.sleep(0)
    assert all(tr.written == [b"frame"] for tr in transports), "every session written exactly once"
    assert ticks >= 10, f"the loop ran other work only {ticks} times during a 50 ms pass"
    await hub.close()
