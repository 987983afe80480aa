"""argus_calendar on real exchange data: holidays, make-up working days, lunch, auctions, half days."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from argus_calendar import Calendar, UnknownMarket

SH = Calendar.for_market("SH")


def bj(d: str, t: str) -> datetime:
    return datetime.fromisoformat(f"{d}T{t}").replace(tzinfo=SH.tz)


def test_sse_and_szse_share_one_calendar_and_markets_map_to_exchanges() -> None:
    assert Calendar.for_market("SZ").exchange == Calendar.for_market("BJ").exchange == "XSHG"
    assert Calendar.for_market("sh") is SH  # one per market and process
    assert Calendar.for_market("HK").exchange == "XHKG" and Calendar.for_market("US").exchange == "XNYS"
    with pytest.raises(UnknownMarket, match="IF"):
        Calendar.for_market("IF")


def test_chinese_holidays_and_weekend_make_up_working_days_are_closed() -> None:
    assert not SH.is_trading_day(date(2026, 10, 1))  # National Day
    assert not SH.is_trading_day(date(2026, 2, 17))  # Spring Festival
    # 2025-09-28 (Sunday) and 2025-10-11 (Saturday) were working days in China: the exchanges stayed shut
    assert not SH.is_trading_day(date(2025, 9, 28)) and not SH.is_trading_day(date(2025, 10, 11))
    assert SH.phase(bj("2025-10-11", "10:00:00")) == "closed"
    assert SH.trading_days(date(2025, 9, 26), date(2025, 10, 13)) == [
        date(2025, 9, 26),
        date(2025, 9, 29),
        date(2025, 9, 30),
        date(2025, 10, 9),
        date(2025, 10, 10),
        date(2025, 10, 13),
    ]
    assert SH.next_trading_day(date(2025, 9, 30)) == date(2025, 10, 9)
    assert SH.previous_trading_day(date(2025, 10, 9)) == date(2025, 9, 30)


def test_a_share_day_auctions_lunch_and_close() -> None:
    phases = {
        "09:14:59": "closed",
        "09:15:00": "auction",
        "09:24:59": "auction",
        "09:25:03": "pre_open",
        "09:30:00": "open",
        "11:29:59": "open",
        "11:30:00": "lunch",
        "12:59:59": "lunch",
        "13:00:00": "open",
        "14:56:59": "open",
        "14:57:00": "auction",
        "14:59:59": "auction",
        "15:00:00": "closed",
    }
    assert {t: SH.phase(bj("2026-11-23", t)) for t in phases} == phases
    hours = SH.trading_hours(date(2026, 11, 23))
    assert [(a.time().isoformat("minutes"), b.time().isoformat("minutes")) for a, b in hours] == [
        ("09:30", "11:30"),
        ("13:00", "15:00"),
    ]
    assert SH.phase(datetime(2026, 11, 23, 2, 0, tzinfo=UTC)) == "open"  # 10:00 in Beijing
    assert SH.is_open(bj("2026-11-23", "10:00:00")) and not SH.is_open(bj("2026-11-23", "09:20:00"))
    assert SH.is_active(bj("2026-11-23", "09:20:00")) and not SH.is_active(bj("2026-11-23", "12:00:00"))


def test_trading_day_at_turns_with_the_opening_auction() -> None:
    assert SH.trading_day_at(bj("2026-11-24", "02:00:00")) == date(2026, 11, 23)  # overnight: yesterday's data
    assert SH.trading_day_at(bj("2026-11-24", "09:25:03")) == date(2026, 11, 24)  # the auction result is today's
    assert SH.trading_day_at(bj("2026-10-05", "10:00:00")) == date(2026, 9, 30)  # a holiday: the last session
    assert not SH.day_over(date(2026, 11, 23), bj("2026-11-23", "14:59:59"))
    assert SH.day_over(date(2026, 11, 23), bj("2026-11-23", "15:00:00"))


def test_next_change_and_next_active_skip_holidays() -> None:
    assert SH.next_change(bj("2026-11-23", "10:00:00")) == bj("2026-11-23", "11:30:00")
    assert SH.next_change(bj("2026-11-23", "12:00:00")) == bj("2026-11-23", "13:00:00")
    assert SH.next_change(bj("2026-09-30", "15:30:00")) == bj("2026-10-08", "09:15:00")
    assert SH.next_active(bj("2026-11-23", "12:00:00")) == bj("2026-11-23", "13:00:00")
    assert SH.next_active(bj("2026-11-23", "10:00:00")) == bj("2026-11-23", "10:00:00")


def test_hong_kong_lunch_auctions_and_half_day() -> None:
    hk = Calendar.for_market("HK")

    def at(d: str, t: str) -> str:
        return hk.phase(datetime.fromisoformat(f"{d}T{t}").replace(tzinfo=hk.tz))

    assert [at("2026-11-23", t) for t in ("09:10", "09:25", "10:00", "12:30", "15:59", "16:05", "16:10")] == [
        "auction",
        "pre_open",
        "open",
        "lunch",
        "open",
        "auction",
        "closed",
    ]
    assert at("2026-12-24", "12:30") == "closed" and at("2026-12-24", "12:05") == "auction"  # half day, no lunch
    assert not hk.is_trading_day(date(2026, 12, 25))


def test_new_york_holiday_and_early_close() -> None:
    us = Calendar.for_market("US")
    assert not us.is_trading_day(date(2026, 11, 26))  # Thanksgiving
    (period,) = us.sessions(date(2026, 11, 27))
    assert (period.phase, period.start.time().isoformat("minutes"), period.end.time().isoformat("minutes")) == (
        "open",
        "09:30",
        "13:00",
    )
    assert us.phase(datetime(2026, 11, 27, 19, 0, tzinfo=UTC)) == "closed"  # 14:00 New York, after the early close


def test_past_the_package_horizon_weekdays_are_assumed_and_extra_closures_apply() -> None:
    later = date.fromordinal(SH.last_known.toordinal() + 40)
    while later.weekday() >= 5:
        later = date.fromordinal(later.toordinal() + 1)
    day = SH.day(later)
    assert day is not None and not day.known
    closed = Calendar.for_market("SH", extra_closed=[later])
    assert not closed.is_trading_day(later) and closed is not SH
    with pytest.raises(ValueError, match="aware"):
        SH.phase(datetime(2026, 11, 23, 10, 0))
