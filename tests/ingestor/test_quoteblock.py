"""A block of quotes written from its columns is, PUB for PUB, the events it stands for."""

from __future__ import annotations

import msgspec
import numpy as np
import pytest
from argus_ingestor import QuoteBlock
from argus_ingestor.quoteblock import BlockWriter
from argus_protocol import decode_event, encode_event
from argus_service.natswire import pub_prefix

TS = 1_764_640_000_123_456


def block(symbols: list[str], levels: int = 5, volumes: list[int] | None = None, source: str = "mock") -> QuoteBlock:
    rng = np.random.default_rng(len(symbols) + levels)
    n = len(symbols)

    def prices(*shape: int) -> np.ndarray:
        return np.round(rng.uniform(5, 100, shape or (n,)), 2)

    book = rng.integers(1, 65, (n, levels)) * 100
    return QuoteBlock(
        symbols=symbols,
        timestamp="2026-12-03T10:00:00.040+08:00",
        price=prices(),
        open=prices(),
        high=prices(),
        low=prices(),
        prev_close=prices(),
        volume=np.array(volumes, np.int64) if volumes is not None else rng.integers(0, 10**9, n),
        amount=prices() * 1e6,
        bid_prices=prices(n, levels),
        bid_volumes=book,
        ask_prices=prices(n, levels),
        ask_volumes=book[::-1].copy(),
        source=source,
    )


def split_pubs(blob: bytes) -> list[tuple[str, bytes]]:
    """(subject, payload) of each PUB in a buffer, as nats-server reads them."""
    out = []
    pos = 0
    while pos < len(blob):
        end = blob.index(b"\r\n", pos)
        verb, subject, size = blob[pos:end].split()
        assert verb == b"PUB"
        start = end + 2
        payload = blob[start : start + int(size)]
        assert blob[start + int(size) : start + int(size) + 2] == b"\r\n"
        out.append((subject.decode(), payload))
        pos = start + int(size) + 2
    return out


def check(blk: QuoteBlock, rows: list[int], seqs: list[int], prefix: str = "") -> None:
    prefixes = [pub_prefix(f"{prefix}quote.{blk.symbols[i]}") for i in rows]
    blob, payload_bytes, longest = BlockWriter().pubs(blk, rows, prefixes, seqs, TS)
    pubs = split_pubs(blob)
    events = blk.events()
    assert [s for s, _ in pubs] == [f"{prefix}quote.{blk.symbols[i]}" for i in rows]
    assert payload_bytes == sum(len(p) for _, p in pubs) and longest == max(len(p) for _, p in pubs)
    for (_, payload), i, seq in zip(pubs, rows, seqs, strict=True):
        want = events[i]
        want.seq, want.ts = seq, TS
        assert decode_event(payload) == want
        # the same map msgspec writes, key for key and in its order (only integer widths may differ)
        mine, theirs = msgspec.msgpack.decode(payload), msgspec.msgpack.decode(encode_event(want))
        assert mine == theirs and list(mine) == list(theirs) and list(mine["quote"]) == list(theirs["quote"])


def test_every_quote_of_a_block_decodes_to_its_event_with_its_seq() -> None:
    symbols = [f"{i:06d}.SZ" for i in range(1, 201)]
    check(block(symbols), list(range(200)), list(range(1, 201)))


def test_a_subset_of_rows_in_any_order_and_a_subject_prefix() -> None:
    symbols = [f"{i:06d}.SH" for i in range(600000, 600050)]
    check(block(symbols), [7, 3, 49, 0], [5, 1, 2**40, 9], prefix="prod.")


def test_every_row_in_another_order() -> None:
    symbols = [f"{i:06d}.SZ" for i in range(1, 6)]
    check(block(symbols), [4, 3, 2, 1, 0], [1, 2, 3, 4, 5])


@pytest.mark.parametrize("timestamp", ["", "x" * 31, "x" * 32, "x" * 300])
def test_timestamps_of_any_length_and_a_block_without_a_source(timestamp: str) -> None:
    blk = block(["000001.SZ", "000002.SZ"], source="")
    blk.timestamp = timestamp
    check(blk, [0, 1], [3, 4])


def test_quotes_without_a_book_send_no_levels() -> None:
    blk = block(["AAPL.US", "MSFT.US"], levels=0)
    check(blk, [0, 1], [1, 1])
    payload = split_pubs(BlockWriter().pubs(blk, [0], [pub_prefix("quote.AAPL.US")], [1], TS)[0])[0][1]
    assert "bid_prices" not in msgspec.msgpack.decode(payload)["quote"]


def test_symbols_of_different_lengths_keep_the_order_given() -> None:
    symbols = ["AAPL.US", "000001.SZ", "00700.HK", "IF2412.IF", "GSPC.IDX", "X.US"]
    check(block(symbols), [5, 0, 1, 2, 3, 4], [1, 2, 3, 4, 5, 6])


@pytest.mark.parametrize(
    "volumes",
    [
        [0, 127],  # fixint
        [0, 128, 255],  # uint8
        [256, 65535],  # uint16
        [65536, 2**32 - 1],  # uint32
        [2**32, 2**63 - 1],  # uint64
        [-1, 5],  # signed
    ],
)
def test_each_integer_width_holds_its_values(volumes: list[int]) -> None:
    symbols = [f"{i:06d}.SZ" for i in range(1, len(volumes) + 1)]
    check(block(symbols, volumes=volumes), list(range(len(volumes))), [1] * len(volumes))


def test_a_block_whose_sides_differ_in_depth_is_refused() -> None:
    blk = block(["000001.SZ"], levels=5)
    blk.ask_prices = blk.ask_prices[:, :3]
    with pytest.raises(ValueError, match="levels"):
        BlockWriter().pubs(blk, [0], [pub_prefix("quote.000001.SZ")], [1], TS)


def test_a_block_with_float_volumes_is_refused() -> None:
    blk = block(["000001.SZ"])
    blk.volume = blk.volume.astype(np.float64)  # would be truncated into an integer field without a word
    with pytest.raises(ValueError, match="integer"):
        BlockWriter().pubs(blk, [0], [pub_prefix("quote.000001.SZ")], [1], TS)


def test_a_block_whose_book_is_not_a_row_per_quote_is_refused() -> None:
    blk = block(["000001.SZ", "000002.SZ"])
    blk.bid_prices = blk.bid_prices[0]  # one row of levels for two quotes
    with pytest.raises(ValueError, match="levels"):
        BlockWriter().pubs(blk, [0, 1], [pub_prefix("quote.000001.SZ"), pub_prefix("quote.000002.SZ")], [1, 1], TS)
