"""The SDK's bookkeeping on its own: dedup and reset (SeqBook), the bounded queue's policy (Inbox),
and frames decoded into typed messages (JSON and MessagePack, single and batched)."""

from __future__ import annotations

import msgspec
from argus_client import Gap, Inbox, Kline, KlineEvent, Quote, QuoteEvent, SeqBook, Status, Trade, TradeEvent
from argus_client.wire import Codec


def tr(seq: int, sym: str = "A.SZ", replay: bool = False) -> TradeEvent:
    return TradeEvent(symbol=sym, seq=seq, replay=replay, trade=Trade("t", 1.0, 100, "B", str(seq)))


def qt(seq: int, sym: str = "A.SZ") -> QuoteEvent:
    return QuoteEvent(symbol=sym, seq=seq, quote=Quote(10.0 + seq, 10, 11, 9, 10, seq, 1.0, "t"))


def kl(seq: int, first: int, when: str, closed: bool = False) -> KlineEvent:
    return KlineEvent(
        symbol="A.SZ", seq=seq, first_seq=first, kline=Kline("1m", when, 1, 1, 1, 1.0 + seq, 1, 1, closed)
    )


def drain(inbox: Inbox) -> list[object]:
    out = []
    while (item := inbox.get_nowait()) is not None:
        out.append(item)
    return out


def test_seqbook_drops_duplicates_and_follows_a_reset_to_lower_seqs() -> None:
    book = SeqBook()
    assert [book.admit(tr(s))[0] for s in (1, 2, 3, 2, 3)] == [True, True, True, False, False]
    assert book.duplicates == 2
    reset = Gap("A.SZ", "trade", 1, 0, "reset")
    assert book.gap(reset) is reset
    assert book.admit(tr(1)) == (True, None), "the new numbering's seq 1 is not a duplicate"
    assert book.resume_points(["trade:A.SZ", "trade:B.SZ"]) == {"trade:A.SZ": 1}


def test_seqbook_reports_holes_the_server_did_not_announce_and_trims_announced_ones() -> None:
    book = SeqBook()
    book.admit(tr(1))
    ok, gap = book.admit(tr(5))
    assert ok and gap == Gap("A.SZ", "trade", 2, 4, "unannounced")
    # a GAP for seqs this client already has (an earlier connection) is dropped, a partial one trimmed
    assert book.gap(Gap("A.SZ", "trade", 3, 5, "slow_consumer")) is None
    trimmed = book.gap(Gap("A.SZ", "trade", 4, 9, "slow_consumer"))
    assert trimmed is not None and (trimmed.from_seq, trimmed.to_seq) == (6, 9)
    assert book.admit(tr(10)) == (True, None)
    # quotes supersede: skipped seqs are no loss
    assert book.admit(qt(1)) == (True, None) and book.admit(qt(7)) == (True, None)


def test_seqbook_counts_bars_per_bar() -> None:
    book = SeqBook()
    book.admit(kl(10, 8, "09:31"))
    assert book.admit(kl(12, 8, "09:31", True)) == (True, None), "skipped versions of a bar are no loss"
    assert book.admit(kl(13, 13, "09:32")) == (True, None)
    ok, gap = book.admit(kl(20, 18, "09:34"))  # 09:33 (14..17) and 09:32's close never came
    assert ok and gap is not None and (gap.from_seq, gap.to_seq, gap.period) == (14, 17, "1m")


def test_inbox_conflates_quotes_and_bar_versions_while_the_application_is_behind() -> None:
    inbox = Inbox(capacity=10)
    inbox.put(qt(1))
    inbox.put(kl(5, 5, "09:31"))
    inbox.put(qt(2))
    inbox.put(qt(3, "B.SZ"))
    inbox.put(kl(6, 5, "09:31"))
    inbox.put(kl(7, 7, "09:32"))
    got = drain(inbox)
    assert [(type(e).__name__, e.seq) for e in got] == [  # type: ignore[attr-defined]
        ("QuoteEvent", 2),
        ("KlineEvent", 6),
        ("QuoteEvent", 3),
        ("KlineEvent", 7),
    ]
    assert inbox.conflated == 2
    inbox.put(qt(4))  # nothing of the stream waits any more: a new slot
    assert [e.seq for e in drain(inbox)] == [4]  # type: ignore[attr-defined]


def test_inbox_overflow_drops_trades_into_one_exact_gap_ahead_of_the_next_trade() -> None:
    inbox = Inbox(capacity=4)
    for s in range(1, 11):
        inbox.put(tr(s))
    inbox.put(Status("mock", "stale"))  # control events are never dropped
    assert len(inbox) == 5 and inbox.dropped == 6
    first = [inbox.get_nowait() for _ in range(3)]  # the application catches up to half
    assert [e.seq for e in first] == [1, 2, 3]  # type: ignore[attr-defined]
    inbox.put(tr(11))
    inbox.put(tr(12, replay=False))
    got = drain(inbox)
    assert [(e.from_seq, e.to_seq, e.reason) if isinstance(e, Gap) else getattr(e, "seq", "status") for e in got] == [
        4,
        "status",
        (5, 10, "client_overflow"),
        11,
        12,
    ]


def test_inbox_reports_a_quiet_streams_loss_once_caught_up_and_never_drops_replays() -> None:
    inbox = Inbox(capacity=2)
    for s in range(1, 5):
        inbox.put(tr(s))
    for s in range(1, 6):
        inbox.put(tr(s, "R.SZ", replay=True))  # history the application asked for
    got = drain(inbox)
    gaps = [e for e in got if isinstance(e, Gap)]
    assert [(g.key, g.from_seq, g.to_seq) for g in gaps] == [("trade:A.SZ", 3, 4)]
    assert [e.seq for e in got if isinstance(e, TradeEvent) and e.symbol == "R.SZ"] == [1, 2, 3, 4, 5]


def test_inbox_trims_a_bar_gap_to_the_bars_actually_lost() -> None:
    inbox = Inbox(capacity=2)
    inbox.put(tr(1))
    inbox.put(tr(2))
    inbox.put(kl(10, 10, "09:31"))  # dropped: queue full
    inbox.put(kl(11, 11, "09:32"))  # dropped
    inbox.put(kl(12, 11, "09:32"))  # dropped
    drain_two = [inbox.get_nowait(), inbox.get_nowait()]
    assert len(drain_two) == 2
    inbox.put(kl(13, 11, "09:32", True))  # 09:32's newest version: 11 and 12 are superseded
    got = drain(inbox)
    assert [(g.from_seq, g.to_seq) for g in got if isinstance(g, Gap)] == [(10, 10)]
    assert [e.seq for e in got if isinstance(e, KlineEvent)] == [13]


def test_frames_decode_into_typed_messages_in_both_encodings_single_and_batched() -> None:
    data = {
        "type": "trade",
        "symbol": "A.SZ",
        "seq": 3,
        "ts": 5,
        "source": "mock",
        "trade": msgspec.to_builtins(tr(3).trade),
    }
    gap = {"symbol": "A.SZ", "type": "trade", "from_seq": 1, "to_seq": 2, "reason": "upstream"}
    batch = [{"type": "DATA", "data": data}, {"type": "GAP", "data": gap}, {"type": "FUTURE", "data": {"x": 1}}]
    for enc, mod in (("json", msgspec.json), ("msgpack", msgspec.msgpack)):
        codec = Codec(enc)
        out = list(codec.messages(mod.encode(batch)))
        assert [k for k, _, _ in out] == ["DATA", "GAP", "FUTURE"]
        assert isinstance(out[0][1], TradeEvent) and out[0][1].trade.trade_id == "3"
        assert isinstance(out[1][1], Gap) and out[1][1].key == "trade:A.SZ"
        single = list(codec.messages(mod.encode({"type": "REPLAYED", "id": "c1", "data": {"streams": {}}})))
        assert single[0][0] == "REPLAYED" and single[0][2] == "c1"
        assert list(codec.messages(b"\xff not a frame")) == []
