"""Calendar, host pool, options, trade alignment and the CLI's config mapping."""

from __future__ import annotations

import argparse
from datetime import UTC, date, datetime, time

import pytest
from argus_ingestor_tdx.__main__ import ENV_KEYS, FLAG_KEYS, add_arguments
from argus_ingestor_tdx.calendar import TradingSchedule
from argus_ingestor_tdx.client import exact_float32
from argus_ingestor_tdx.hostpool import HostPool
from argus_ingestor_tdx.instruments import PriceScale, to_tdx
from argus_ingestor_tdx.options import DEFAULT_THREE_DECIMALS, load_options
from argus_ingestor_tdx.trades import TradeTracker
from argus_protocol import BEIJING
from argus_service.config import load_config
from pytdx.helper import get_volume


def bj(d: str, t: str) -> datetime:
    return datetime.combine(date.fromisoformat(d), time.fromisoformat(t), BEIJING)


def test_fenshi_index_maps_to_session_minutes_across_lunch() -> None:
    cal = TradingSchedule()
    day = date(2026, 11, 23)
    assert cal.minute_at(day, 0) == bj("2026-11-23", "09:30")
    assert cal.minute_at(day, 119) == bj("2026-11-23", "11:29")
    assert cal.minute_at(day, 120) == bj("2026-11-23", "13:00")
    assert cal.minute_at(day, 239) == bj("2026-11-23", "14:59")
    assert cal.minute_at(day, 240) is None and cal.minute_at(day, -1) is None


def test_sessions_auctions_lunch_weekend_holiday_and_next_open() -> None:
    cal = TradingSchedule(extra_closed=[date(2026, 11, 24)])
    assert cal.active(bj("2026-11-23", "09:15")) and cal.active(bj("2026-11-23", "09:25:03"))  # call auction
    assert cal.active(bj("2026-11-23", "09:30")) and cal.active(bj("2026-11-23", "14:59:59"))
    assert not cal.active(bj("2026-11-23", "09:14")) and not cal.active(bj("2026-11-23", "11:30"))
    assert not cal.active(bj("2026-11-23", "15:00"))
    assert cal.closed_reason(bj("2026-11-23", "12:00")) == "lunch break"
    assert not cal.active(bj("2026-11-21", "10:00"))  # Saturday
    assert not cal.active(bj("2026-10-01", "10:00"))  # National Day, from the exchange calendar
    assert not cal.active(bj("2026-10-10", "10:00"))  # a weekend make-up working day: the exchanges stay shut
    assert cal.closed_reason(bj("2026-10-10", "10:00")).startswith("not a trading day")
    assert not cal.active(bj("2026-11-24", "10:00"))  # an extra closed day from the options
    assert cal.next_active(bj("2026-11-23", "12:00")) == bj("2026-11-23", "13:00")
    assert cal.next_active(bj("2026-11-23", "15:30")) == bj("2026-11-25", "09:15")  # skips the closed day
    assert cal.session_day(bj("2026-11-25", "09:25:03")) == date(2026, 11, 25)
    assert cal.session_day(bj("2026-11-25", "02:00")) == date(2026, 11, 23)
    assert cal.active(datetime(2026, 11, 23, 2, 0, tzinfo=UTC))  # 10:00 in Beijing
    assert TradingSchedule(always=True).active(bj("2026-11-21", "03:00"))


def test_host_pool_rotates_and_backs_off_per_host() -> None:
    now = [100.0]
    pool = HostPool(["a:1", "b:2", "c:3"], backoff_initial=1.0, backoff_max=4.0, monotonic=lambda: now[0])
    assert [pool.pick().name for _ in range(4)] == ["a:1", "b:2", "c:3", "a:1"]
    a = pool.hosts[0]
    for _ in range(4):
        pool.failed(a, "timeout")
    assert a.retry_at == 104.0  # 1, 2, 4, then capped at 4
    assert "a:1" not in {pool.pick().name for _ in range(6)}
    assert pool.pick(exclude={"b:2", "c:3"}) is None
    now[0] = 104.0
    assert pool.pick(exclude={"b:2", "c:3"}).name == "a:1"
    assert pool.summary() == "a:1: timeout"
    pool.succeeded(a)
    assert pool.summary() == "no TDX host available"


def test_options_validate_with_the_key_named() -> None:
    assert load_options({"hosts": "h1:7709, h2:7711"}).hosts == ["h1:7709", "h2:7711"]
    assert load_options({"hosts": ["h:1"], "holidays": "2026-10-01,2026-10-02"}).holidays == [
        "2026-10-01",
        "2026-10-02",
    ]
    for bad, key in [
        ({}, "hosts"),
        ({"hosts": ["nohost"]}, "hosts"),
        ({"hosts": ["h:1"], "batch_size": 81}, "batch_size"),
        ({"hosts": ["h:1"], "sessions": ["09:30-11:30"]}, "sessions: no longer an option"),
        ({"hosts": ["h:1"], "holidays": ["soon"]}, "holidays"),
        ({"hosts": ["h:1"], "interval": 0}, "interval"),
    ]:
        with pytest.raises(ValueError, match=key):
            load_options(bad)


def test_env_and_flags_reach_the_tdx_options() -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    parser.add_argument("--config")
    env = {"TDX_HOSTS": "10.0.0.1:7709,10.0.0.2:7709", "TDX_INTERVAL": "2.5"}
    cfg = load_config(parser.parse_args([]), env, FLAG_KEYS, ENV_KEYS)
    tdx = load_options(cfg.datasource.options["tdx"])
    assert tdx.hosts == ["10.0.0.1:7709", "10.0.0.2:7709"] and tdx.interval == 2.5
    cfg = load_config(
        parser.parse_args(["--hosts", "127.0.0.1:1,127.0.0.1:2", "--schedule", "always"]), env, FLAG_KEYS, ENV_KEYS
    )
    tdx = load_options(cfg.datasource.options["tdx"])
    assert tdx.hosts == ["127.0.0.1:1", "127.0.0.1:2"] and tdx.schedule == "always"


def test_exact_float32_where_pytdx_get_volume_is_wrong() -> None:
    import struct

    for v in (1.0, 3.0, 12.0, 64.0, 60.0, 1502.0, 12_962_250.0):
        raw = struct.unpack("<I", struct.pack("<f", v))[0]
        assert exact_float32(raw) == v
    assert get_volume(struct.unpack("<I", struct.pack("<f", 12.0))[0]) == 1032.0  # the defect


def test_symbols_and_price_scale() -> None:
    assert (
        to_tdx("000001.SZ") == (0, "000001")
        and to_tdx("600000.SH") == (1, "600000")
        and to_tdx("430047.BJ") == (2, "430047")
    )
    with pytest.raises(ValueError, match="SZ, SH and BJ"):
        to_tdx("00700.HK")
    scale = PriceScale(DEFAULT_THREE_DECIMALS)
    assert scale.divisor(1, "510300") == 10 and scale.divisor(0, "159915") == 10 and scale.divisor(1, "113050") == 10
    assert scale.divisor(1, "600000") == 1 and scale.divisor(0, "000001") == 1 and scale.divisor(1, "000001") == 1


def row(t: str, vol: int) -> dict:
    return {"time": t, "price": 10.0, "vol": vol, "num": 1, "buyorsell": 0}


def test_trade_alignment_new_rows_only_and_ambiguity_detected() -> None:
    day = date(2026, 11, 23)
    first = [row("09:30", v) for v in (1, 2, 3)]
    tr = TradeTracker(day, 3, first)
    assert tr.advance([*first[1:], row("09:31", 4), row("09:31", 5)]) == ([row("09:31", 4), row("09:31", 5)], 3)
    assert tr.count == 5 and tr.trade_id(4) == "20261123-4"
    assert tr.advance([row("09:31", 4), row("09:31", 5)]) == ([], 5)
    assert tr.advance([row("10:00", 9)]) is None  # no overlap: a gap
    same = TradeTracker(day, 2, [row("09:30", 1)] * 2)
    assert same.advance([row("09:30", 1)] * 3) is None  # identical rows: content cannot place it
    assert same.advance_to([row("09:30", 1)] * 3, total=3) == ([row("09:30", 1)], 2, 0)
    assert same.advance_to([row("09:30", 1)] * 2, total=7) == ([row("09:30", 1)] * 2, 5, 2)  # 2 missed
