"""A busy gateway holds writes to gather more into each, but only when the upstream's next events
come within the hold: bursts further apart than the hold go out at once."""

from __future__ import annotations

import asyncio
import hashlib
import re
import threading
import time

from argus_gateway.fanout import Hub
from argus_gateway.metrics import GatewayMetrics
from argus_protocol import Stream, Subjects
from eventfactory import quote
from hubsession import hub_session
from prometheus_client import CollectorRegistry

SYMBOL = "000001.SZ"
HOLD = 0.02  # max_gather: at full load the hub would hold a write this long


class TimedTransport:
    def __init__(self) -> None:
        self.writes: list[tuple[float, bytes]] = []

    def get_write_buffer_size(self) -> int:
        return 0

    def is_closing(self) -> bool:
        return False

    def write(self, data: bytes) -> None:
        self.writes.append((time.perf_counter(), data))


def burn(stop: threading.Event) -> None:
    """A core's worth of the process's CPU (hashlib lets go of the GIL), so the hub sees itself busy."""
    block = b"x" * (1 << 20)
    while not stop.is_set():
        hashlib.sha256(block).digest()


async def deliver(gap: float, events: int) -> tuple[list[float], list[list[int]]]:
    """Events `gap` apart to one busy session: each event's delay to its write, and each write's seqs."""
    hub = Hub(None, Subjects(), GatewayMetrics(CollectorRegistry()), on_demand_change=lambda: None, max_gather=HOLD)
    transport = TimedTransport()
    session = hub_session(hub, transport)
    topic = hub.add(session, Stream("quote", SYMBOL))
    assert topic is not None
    stop = threading.Event()
    burner = threading.Thread(target=burn, args=(stop,), daemon=True)
    burner.start()
    sent: dict[int, float] = {}
    try:
        await asyncio.sleep(0.15)  # a load window passes: the hub knows it is busy
        for seq in range(1, events + 1):
            sent[seq] = time.perf_counter()
            hub.dispatch(topic, quote(SYMBOL, seq))
            await asyncio.sleep(gap)
        await asyncio.sleep(2 * HOLD)
    finally:
        stop.set()
        burner.join()
        await hub.close()
    delays = {}
    written = []
    for at, data in transport.writes:
        seqs = [int(n) for n in re.findall(rb'"seq":(\d+)', data)]
        written.append(seqs)
        for seq in seqs:
            delays[seq] = at - sent[seq]
    assert sorted(delays) == list(range(1, events + 1)), "every event written once"
    return [delays[seq] for seq in sorted(delays)], written


async def test_a_busy_gateway_gathers_events_that_come_close_together() -> None:
    _, written = await deliver(0.002, 200)
    # the first events only teach the hub their spacing (the quiet before them counts as a gap)
    late = [seqs for seqs in written if min(seqs) > 100]
    assert len(late) < 40, f"{len(late)} writes for 100 events 2 ms apart: the busy hub did not gather"


async def test_bursts_further_apart_than_the_hold_are_not_held() -> None:
    delays, written = await deliver(0.06, 16)
    assert len(written) == 16
    late = sorted(delays[8:])  # once the hub has seen the bursts' spacing
    median = late[len(late) // 2]
    assert median < HOLD / 2, f"median delay {median * 1000:.1f} ms: held though nothing more was coming"
