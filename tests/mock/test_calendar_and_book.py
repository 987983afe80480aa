"""The mock on the exchange calendar (`schedule: cn`) and its book: no level past the price limit."""

from __future__ import annotations

from datetime import datetime

from argus_ingestor_mock.market import LIMIT, Instrument, base_ticks
from argus_ingestor_mock.schedule import is_open
from argus_protocol import BEIJING


def bj(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=BEIJING).timestamp()


def test_cn_schedule_is_closed_on_holidays_and_make_up_working_days() -> None:
    assert is_open("cn", bj("2026-09-30 10:00:00"))
    assert not is_open("cn", bj("2026-10-01 10:00:00"))  # National Day, a Thursday
    assert not is_open("cn", bj("2026-10-08 09:20:00"))  # the opening call auction: no trades yet
    assert is_open("cn", bj("2026-10-08 09:30:00"))
    assert not is_open("cn", bj("2025-10-11 10:00:00"))  # a Saturday China worked; the exchanges did not
    assert is_open("cn", bj("2026-11-23 14:58:00"))  # the closing auction's minutes still count
    assert not is_open("cn", bj("2026-11-23 12:00:00"))  # lunch
    assert is_open("always", bj("2026-10-01 10:00:00"))


def pinned(symbol: str, up: bool) -> Instrument:
    inst = Instrument(symbol, seed=1)
    prev = base_ticks(symbol)
    limit = prev + int(prev * LIMIT) if up else prev - int(prev * LIMIT)
    inst.last_t = inst.open_t = inst.high_t = inst.low_t = limit
    return inst


def test_at_the_limit_the_book_has_no_levels_beyond_it_and_no_zero_prices() -> None:
    for _ in range(20):  # the touch is drawn: bid1 at the last price or a tick below it
        up = pinned("000001.SZ", up=True).quote("x")
        hi = (base_ticks("000001.SZ") + int(base_ticks("000001.SZ") * LIMIT)) / 100
        assert all(p <= hi for p in up.ask_prices) and len(up.ask_prices) <= 1
        assert len(up.ask_prices) == len(up.ask_volumes) and len(up.bid_prices) == len(up.bid_volumes) == 5
        down = pinned("600000.SH", up=False).quote("x")
        lo = (base_ticks("600000.SH") - int(base_ticks("600000.SH") * LIMIT)) / 100
        assert all(p >= lo for p in down.bid_prices) and len(down.bid_prices) <= 1
        assert len(down.bid_prices) == len(down.bid_volumes) and len(down.ask_prices) == 5
        assert all(p > 0 for p in up.bid_prices + up.ask_prices + down.bid_prices + down.ask_prices)


def test_away_from_the_limit_the_book_has_five_levels_best_first() -> None:
    q = Instrument("300750.SZ", seed=3).quote("x")
    assert len(q.bid_prices) == len(q.ask_prices) == len(q.bid_volumes) == len(q.ask_volumes) == 5
    assert q.bid_prices == sorted(q.bid_prices, reverse=True) and q.ask_prices == sorted(q.ask_prices)
    assert q.bid_prices[0] < q.ask_prices[0]
