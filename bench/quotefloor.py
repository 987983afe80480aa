"""The floor under any Python publisher of quotes on this host: what one quote costs with no simulation
and no bookkeeping at all.

On the stack's core, steps of `per_step` quotes each: the step's numbers arrive as one array (as a
vectorised simulation hands them over) and become Python values, each quote becomes a `QuoteEvent`
(its book's lists shared, as the mock's are), is encoded with the production encoder and added to a
PUB batch (natswire), then freed. Measured back to back and paced as the mock paces its steps (at
rate 10, 20 steps a second, the core idle in between). The paced figure is what a source on a
shared core pays per event before it simulates anything: on a cloud VM the core's caches are cold
again after each idle gap, and Python's objects make every quote touch dozens of cache lines.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from argus_protocol import Quote, QuoteEvent, encode_event_into
from argus_service.natswire import PubBatch, pub_prefix

LEVELS = 5


def steps(per_step: int, count: int, period: float, symbols: int = 1000) -> tuple[float, bytes]:
    """CPU seconds per quote over `count` steps, `period` seconds apart (0: back to back), and the
    last step's PUBs."""
    rnd = random.Random(1)
    names = [f"{i:06d}.SZ" for i in range(1, symbols + 1)]
    prefixes = [pub_prefix(f"quote.{s}") for s in names]
    touches = [rnd.randrange(500, 10_000) for _ in names]
    ladders = [([(b - i) / 100 for i in range(LEVELS)], [(b + 1 + i) / 100 for i in range(LEVELS)]) for b in touches]
    volume_rows = [[rnd.randrange(1, 65) * 100 for _ in range(LEVELS)] for _ in range(4096)]
    numbers = np.random.default_rng(1).uniform(5, 100, (8, per_step))
    scratch = bytearray()
    spent = 0.0
    done = 0
    batch = PubBatch()
    for k in range(count):
        if period:
            time.sleep(period)
        first = (k * per_step) % symbols
        cpu = time.thread_time()
        columns = [(numbers[i] + k).tolist() for i in range(6)]  # this step's prices and amount
        volumes = (numbers[6] * 1000).astype(np.int64).tolist()
        batch = PubBatch()
        for i, (p, o, h, lw, pc, a, v) in enumerate(zip(*columns, volumes, strict=True)):
            j = (first + i) % symbols
            bids, asks = ladders[j]
            book = (bids, volume_rows[j * 7 & 4095], asks, volume_rows[j * 13 & 4095])
            quote = Quote(p, o, h, lw, pc, v, a, "2026-12-02T10:00:00.000+08:00", *book)
            event = QuoteEvent(symbol=names[j], source="floor", seq=k + 1, ts=k, quote=quote)
            encode_event_into(event, scratch)
            batch.add(prefixes[j], scratch)
        del event, quote, columns
        spent += time.thread_time() - cpu
        done += per_step
    return spent / done, bytes(batch.buffer)


Steps = Callable[[int, int, float, int], tuple[float, bytes]]


def measure(
    per_step: int = 500,
    count: int = 100,
    period: float = 0.05,
    symbols: int = 1000,
    core: int | None = 0,
    walk: Steps = steps,
) -> dict[str, Any]:
    """µs per quote back to back and at `period` seconds between steps, on `core`, of `walk`
    (these steps, or another floor's)."""
    before = os.sched_getaffinity(0)
    try:
        if core is not None:
            os.sched_setaffinity(0, {core})
        walk(per_step, 20, 0, symbols)  # imports and allocator warmed
        warm, _ = walk(per_step, count, 0, symbols)
        paced, _ = walk(per_step, count, period, symbols)
    finally:
        os.sched_setaffinity(0, before)
    return {
        "per_step": per_step,
        "steps_per_s": round(1 / period),
        "us_per_quote_back_to_back": round(1e6 * warm, 2),
        "us_per_quote_paced": round(1e6 * paced, 2),
    }


if __name__ == "__main__":
    print(measure())
