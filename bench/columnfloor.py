"""What a quote costs the runner's block path (libs/ingestor quoteblock.py) from ready numbers: the
floor under the mock's quotes, beside bench/quotefloor.py's floor under one object per quote.

A step of the same shape as quotefloor's hands its symbols' numbers over as one `QuoteBlock`,
stamps a seq per symbol as the runner does, and has a `BlockWriter` lay the PUBs out as numpy
records, taken as one buffer. Measured back to back and paced, as quotefloor is.
"""

from __future__ import annotations

import random
import time
from typing import Any

import numpy as np
from argus_ingestor import QuoteBlock
from argus_ingestor.quoteblock import BlockWriter
from argus_service.natswire import pub_prefix

from . import quotefloor

LEVELS = 5
TIMESTAMP = "2026-12-02T10:00:00.000+08:00"  # the mock's timestamps are all this long


def floor_block(
    names: list[str], idx: np.ndarray, numbers: np.ndarray, touches: np.ndarray, books: np.ndarray
) -> QuoteBlock:
    """A step's quotes of the symbols at `idx`, from numbers already drawn."""
    touch = touches[idx][:, None]
    levels = np.arange(LEVELS)
    return QuoteBlock(
        symbols=[names[i] for i in idx.tolist()],
        timestamp=TIMESTAMP,
        price=numbers[0],
        open=numbers[1],
        high=numbers[2],
        low=numbers[3],
        prev_close=numbers[4],
        volume=(numbers[6] * 1000).astype(np.int64),
        amount=numbers[5],
        bid_prices=(touch - levels) / 100,
        bid_volumes=books[idx * 7 & 4095],
        ask_prices=(touch + 1 + levels) / 100,
        ask_volumes=books[idx * 13 & 4095],
        source="floor",
    )


def steps(per_step: int, count: int, period: float, symbols: int = 1000) -> tuple[float, bytes]:
    """CPU seconds per quote over `count` steps, `period` seconds apart (0: back to back), and the
    last step's PUBs."""
    rnd = random.Random(1)
    names = [f"{i:06d}.SZ" for i in range(1, symbols + 1)]
    prefixes = [pub_prefix(f"quote.{s}") for s in names]
    seqs = [0] * symbols
    writer = BlockWriter()
    touches = np.array([rnd.randrange(500, 10_000) for _ in names], np.int64)
    books = np.array([[rnd.randrange(1, 65) * 100 for _ in range(LEVELS)] for _ in range(4096)], np.int64)
    numbers = np.random.default_rng(1).uniform(5, 100, (8, per_step))
    spent = 0.0
    blob = b""
    for k in range(count):
        if period:
            time.sleep(period)
        first = (k * per_step) % symbols
        cpu = time.thread_time()
        idx = (first + np.arange(per_step)) % symbols
        block = floor_block(names, idx, numbers + k, touches, books)
        rows, pubs, stamped = [], [], []
        for row, i in enumerate(idx.tolist()):  # the runner's per-quote share: its seq, its subject
            seqs[i] += 1
            rows.append(row)
            pubs.append(prefixes[i])
            stamped.append(seqs[i])
        blob = writer.pubs(block, rows, pubs, stamped, 1_764_000_000_000_000 + k)[0]
        spent += time.thread_time() - cpu
    return spent / (count * per_step), blob


def measure(
    per_step: int = 500, count: int = 100, period: float = 0.05, symbols: int = 1000, core: int | None = 0
) -> dict[str, Any]:
    """µs per quote back to back and at `period` seconds between steps, on `core`."""
    return quotefloor.measure(per_step, count, period, symbols, core, walk=steps)


if __name__ == "__main__":
    print(measure())
