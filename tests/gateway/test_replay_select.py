"""What a stream replays for each kind of request, from its compacted view (pure selection)."""

from __future__ import annotations

from argus_gateway.replay import DAY, HISTORY, RESUME, SNAPSHOT, Want, select
from argus_gateway.topic import Entry, Topic
from argus_protocol import Stream


def bars(specs: list[tuple[int, int, str]], kind: str = "kline") -> Topic:
    """A topic whose compacted view holds one entry per (first seq, seq, open time)."""
    stream = Stream(kind, "000001.SZ", "1m" if kind == "kline" else "")
    t = Topic("subject", stream, 1000)
    t.history = [Entry(seq, first, mark, mark[:10], b"") for first, seq, mark in specs]
    t.newest = t.history[-1] if t.history else None
    return t


def trades(seqs: range) -> Topic:
    t = Topic("subject", Stream("trade", "000001.SZ"), 2000)
    t.history = [Entry(s, 0, "", "2026-11-30", b"") for s in seqs]
    t.newest = t.history[-1]
    return t


# bars of 3 versions each: bar i spans seqs 3i+1 .. 3i+3; the last one still forming at 3i+2
VIEW = [(3 * i + 1, 3 * i + 3, f"2026-11-30T10:{i:02d}") for i in range(10)] + [(31, 32, "2026-11-30T10:10")]


def test_history_n_is_the_newest_n_and_recovered_only_when_all_were_there() -> None:
    t = bars(VIEW)
    sel = select(t, Want(HISTORY, 4))
    assert [e.seq for e in sel.entries] == [24, 27, 30, 32] and sel.recovered and sel.expect == 33
    everything = select(t, Want(HISTORY, 100))
    assert len(everything.entries) == 11 and everything.recovered  # the stream's first bar is there
    t2 = bars(VIEW[5:])  # older bars evicted
    assert not select(t2, Want(HISTORY, 100)).recovered


def test_day_starts_at_the_newest_entry_day() -> None:
    view = [
        (1, 3, "2026-11-27T14:58"),
        (4, 6, "2026-11-27T14:59"),
        (7, 9, "2026-11-30T09:30"),
        (10, 11, "2026-11-30T09:31"),
    ]
    sel = select(bars(view, "tick"), Want(DAY))
    assert [e.mark for e in sel.entries] == ["2026-11-30T09:30", "2026-11-30T09:31"] and sel.recovered
    only_today = select(bars(view[2:], "tick"), Want(DAY))
    assert len(only_today.entries) == 2 and not only_today.recovered  # nothing shows the day's start


def test_resume_inside_a_bar_replays_that_bar_and_counts_as_recovered() -> None:
    t = bars(VIEW)
    sel = select(t, Want(RESUME, 14))  # 14 was an early version of bar 4 (13..15)
    assert [e.seq for e in sel.entries] == [15, 18, 21, 24, 27, 30, 32]
    assert sel.recovered and sel.gap is None and sel.expect == 33
    # the oldest retained bar began exactly at the next seq: still nothing missing
    assert select(bars(VIEW[5:]), Want(RESUME, 15)).recovered


def test_resume_before_retention_names_the_exact_missing_range() -> None:
    sel = select(bars(VIEW[5:]), Want(RESUME, 7))  # retained bars start at seq 16
    assert sel.gap is not None and (sel.gap.from_seq, sel.gap.to_seq, sel.gap.reason) == (8, 15, "resume_unavailable")
    assert not sel.recovered and sel.entries[0].seq == 18
    tr = select(trades(range(81, 101)), Want(RESUME, 40))
    assert tr.gap is not None and (tr.gap.from_seq, tr.gap.to_seq) == (41, 80) and len(tr.entries) == 20


def test_resume_at_the_newest_sends_nothing_and_expects_the_next() -> None:
    sel = select(trades(range(1, 51)), Want(RESUME, 50))
    assert sel.entries == [] and sel.recovered and sel.expect == 51


def test_resume_across_a_reset_is_unavailable() -> None:
    sel = select(trades(range(1, 11)), Want(RESUME, 900))
    assert sel.gap is not None and sel.gap.reason == "reset" and not sel.recovered
    assert [e.seq for e in sel.entries] == list(range(1, 11))


def test_quotes_resume_with_the_newest_value() -> None:
    t = Topic("subject", Stream("quote", "000001.SZ"), 1)
    t.newest = Entry(70, 0, "", "2026-11-30", b"")
    sel = select(t, Want(RESUME, 40))
    assert [e.seq for e in sel.entries] == [70] and sel.recovered and sel.gap is None
    assert select(t, Want(HISTORY, 50)).entries == [t.newest]
    snap = select(t, Want(SNAPSHOT))
    assert snap.entries == [t.newest] and snap.expect == 0
