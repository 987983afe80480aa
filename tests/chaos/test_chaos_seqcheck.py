"""The shared checker itself: it must fail on what the chaos tests exist to catch, and pass what the protocol allows."""

from __future__ import annotations

from typing import Any

import pytest
from seqcheck import check_seqs, check_status_settled


def data(seq: int, kind: str = "trade", **extra: Any) -> dict[str, Any]:
    return {"type": "DATA", "data": {"type": kind, "symbol": "000001.SZ", "seq": seq, "source": "mock", **extra}}


def gap(first: int, last: int, reason: str, kind: str = "trade") -> dict[str, Any]:
    return {
        "type": "GAP",
        "data": {"type": kind, "symbol": "000001.SZ", "from_seq": first, "to_seq": last, "reason": reason},
    }


def test_contiguous_and_announced_holes_pass() -> None:
    logs = check_seqs([data(5), data(6), gap(7, 9, "upstream"), data(10), [data(11), data(12)]])
    assert logs["trade:000001.SZ"].count == 5 and logs["trade:000001.SZ"].gaps == [(7, 9, "upstream")]


@pytest.mark.parametrize(
    ("frames", "says"),
    [
        ([data(5), data(6), data(6)], "duplicate"),
        ([data(5), data(7)], "silent hole 6..6"),
        ([data(5), data(6), data(3)], "backwards"),
        ([data(5), gap(8, 9, "upstream"), data(10)], "silent hole 6..7 before GAP"),
        ([data(5), data(6), gap(6, 7, "late")], "delivered"),
        ([data(5), data(7, replay=True)], "silent hole"),  # a retained trade may not skip
        ([data(5, "kline", first_seq=1), data(9, "kline", replay=True, first_seq=8)], "silent hole"),
    ],
)
def test_violations_fail(frames: list[Any], says: str) -> None:
    with pytest.raises(AssertionError, match=says):
        check_seqs(frames)


def test_what_the_protocol_allows_passes() -> None:
    check_seqs([data(5), gap(1, 2, "reset"), data(3)])  # a new numbering, announced
    check_seqs([data(5, "quote"), data(9, "quote", replay=True)])  # a quote supersedes the ones before
    check_seqs([data(5, "kline", first_seq=1), data(9, "kline", replay=True, first_seq=6)])  # compacted versions
    check_seqs([data(5, "quote"), gap(6, 8, "late", "quote"), data(9, "quote", snapshot=True)])


def test_status_must_come_back_live() -> None:
    down = {"type": "STATUS", "data": {"source": "gateway", "state": "stale"}}
    up = {"type": "STATUS", "data": {"source": "gateway", "state": "live"}}
    check_status_settled([down, up])
    with pytest.raises(AssertionError, match="never returned"):
        check_status_settled([up, down])
