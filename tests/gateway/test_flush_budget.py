"""A pass over many dirty sockets yields the loop after its time budget and finishes next turn."""

from __future__ import annotations

import asyncio
import time

from argus_gateway.fanout import LATENCY_STAMPS_MAX, Hub
from argus_gateway.metrics import GatewayMetrics
from argus_protocol import Stream, Subjects
from eventfactory import quote
from hubsession import hub_session
from prometheus_client import CollectorRegistry

SYMBOL = "000001.SZ"


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


async def test_a_flush_that_never_catches_up_still_observes_latency_and_keeps_memory_bounded() -> None:
    """Saturated, some sessions are always left dirty for the next turn: the latency histogram must
    still fill (it is what pages the operator) and the gateway must not keep every event's stamp."""
    registry = CollectorRegistry()
    hub = Hub(None, Subjects(), GatewayMetrics(registry), on_demand_change=lambda: None, flush_budget=0.0005)
    transports = [SlowTransport() for _ in range(200)]  # 10 ms of writes a pass, 0.5 ms allowed
    topics = []
    for i, t in enumerate(transports):
        topics.append(hub.add(hub_session(hub, t, f"s{i}"), Stream("quote", SYMBOL)))
    topic = topics[0]
    assert topic is not None
    for seq in range(1, 20_001):
        hub.dispatch(topic, quote(SYMBOL, seq))
        if seq % 50 == 0:
            await asyncio.sleep(0)  # a flush pass runs, leaving most sessions dirty
    observed = registry.get_sample_value("websocket_latency_seconds_count") or 0
    assert observed > 0, "no latency observed while the gateway was behind"
    assert len(hub._event_ts) <= LATENCY_STAMPS_MAX, f"{len(hub._event_ts)} event stamps kept"
    await hub.close()
