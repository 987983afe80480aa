"""The random bits of a symbol's n-th update: a counter-based generator (SplitMix64's finaliser).

A symbol's draws are a pure function of its key (seed and symbol) and its update number, so the
live market can draw for hundreds of symbols in one array operation and still give each symbol
exactly what stepping it alone would (and what `--seed` repeats), whatever else is active. Three
64-bit words per update: 8 bits choose 1-3 trades, 32 bits per trade (words 0-2, bits 8-39), and
the book's 25 bits (word 0's top 24 for the volume columns, word 2's top bit for the touch).
"""

from __future__ import annotations

import zlib

import numpy as np
import numpy.typing as npt

MASK = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15
_M1 = 0xBF58476D1CE4E5B9
_M2 = 0x94D049BB133111EB
WORDS = 3  # per update

U64 = npt.NDArray[np.uint64]


def symbol_key(seed: int, symbol: str) -> int:
    """The symbol's place in the generator (64 bits from the seed and the name)."""
    return (zlib.crc32(f"{seed}:{symbol}".encode()) << 32 | zlib.crc32(f"{symbol}:{seed}".encode())) & MASK


def _mix(x: int) -> int:
    x = (x ^ (x >> 30)) * _M1 & MASK
    x = (x ^ (x >> 27)) * _M2 & MASK
    return x ^ (x >> 31)


def words(key: int, n: int) -> tuple[int, int, int]:
    """Update `n`'s three words for one symbol."""
    x = key + n * WORDS * _GOLDEN
    return _mix((x + _GOLDEN) & MASK), _mix((x + 2 * _GOLDEN) & MASK), _mix((x + 3 * _GOLDEN) & MASK)


_OFFSETS = np.array([[i * _GOLDEN & MASK] for i in (1, 2, 3)], np.uint64)  # a column: broadcast over symbols
_STRIDE = np.uint64(WORDS * _GOLDEN & MASK)
_A, _B = np.uint64(_M1), np.uint64(_M2)
_S30, _S27, _S31 = np.uint64(30), np.uint64(27), np.uint64(31)


def words_array(keys: U64, ns: U64) -> U64:
    """`words` for many symbols at once: 3 × n (uint64 arithmetic wraps, as the masks above do)."""
    x = (keys + ns * _STRIDE) + _OFFSETS
    x = (x ^ (x >> _S30)) * _A
    x = (x ^ (x >> _S27)) * _B
    return x ^ (x >> _S31)
