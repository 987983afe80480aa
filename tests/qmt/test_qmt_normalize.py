"""QMT payloads → Argus payloads: units, times, halts, cancels, forming vs closed bars, 分时."""

from __future__ import annotations

import pytest
from argus_ingestor_qmt import normalize
from argus_ingestor_qmt.bars import Sessions, SymbolBars, native_periods
from argus_ingestor_qmt.options import load_options, parse_session
from argus_protocol import KlineEvent, TickEvent
from qmt_fake_xtdata import bar, l2, ms, tick, timetag_tick

DAY = "20250815"
SESSIONS = Sessions([parse_session("09:30-11:30"), parse_session("13:00-15:00")], ["SH", "SZ", "BJ", "IF"])

# The sample MiniQMT gives in subscribe_whole_quote's docstring (real-wheel xtdata.py).
DOC_SAMPLE = {
    "time": 1733118954000,
    "lastPrice": 11.39,
    "open": 11.39,
    "high": 11.4,
    "low": 11.31,
    "lastClose": 11.38,
    "amount": 862127800.0,
    "volume": 758613,
    "pvolume": 75861284,
    "stockStatus": 3,
    "openInt": 13,
    "transactionNum": 37062,
    "lastSettlementPrice": 11.38,
    "settlementPrice": 0.0,
    "pe": 0.0,
    "askPrice": [11.4, 11.41, 11.42, 11.43, 11.44],
    "bidPrice": [11.39, 11.38, 11.370000000000001, 11.36, 11.35],
    "askVol": [10929, 12401, 6671, 4555, 6708],
    "bidVol": [2429, 7127, 7146, 9111, 12189],
    "volRatio": 0.0,
    "speed1Min": 0.0,
    "speed5Min": 0.0,
}


def test_quote_from_the_documented_sample_is_in_shares_and_beijing_time() -> None:
    q = normalize.quote(DOC_SAMPLE, 100)
    assert q is not None
    assert q.price == 11.39 and q.prev_close == 11.38 and q.amount == 862127800.0
    assert q.volume == 75861284  # pvolume: shares, not the 758613 lots
    assert q.ask_volumes == [1092900, 1240100, 667100, 455500, 670800]  # book in lots → shares
    assert q.bid_volumes[0] == 242900 and q.bid_prices[0] == 11.39
    assert q.timestamp == "2024-12-02T13:55:54.000+08:00"


def test_timetag_only_tick_gets_its_time_from_the_timetag_and_lots_times_100() -> None:
    q = normalize.quote(timetag_tick("20250815 15:00:04", 10.5, volume=1234), 100)
    assert q is not None
    assert q.timestamp == "2025-08-15T15:00:04.000+08:00"
    assert q.volume == 123400
    assert normalize.parse_timetag("20250815 09:30:00.500") == ms(DAY, "09:30:00") + 500
    assert normalize.parse_timetag("garbage") is None
    assert normalize.quote({**timetag_tick("x", 10.5)}, 100) is None  # no usable time: no quote


@pytest.mark.parametrize(
    ("symbol", "lot"),
    [
        ("000001.SZ", 100),
        ("600000.SH", 100),
        ("430047.BJ", 100),
        ("113050.SH", 10),
        ("128136.SZ", 10),
        ("IF2412.IF", 1),
        ("rb2501.SF", 1),
        ("00700.HK", 1),
    ],
)
def test_lot_sizes(symbol: str, lot: int) -> None:
    assert normalize.lot_size(symbol, load_options({}).bond_prefixes) == lot


def test_futures_quote_volume_is_contracts() -> None:
    row = tick(ms(DAY, "10:00:00"), 3900.2, volume=5000, pvolume=0)
    q = normalize.quote(row, normalize.lot_size("IF2412.IF", {}))
    assert q is not None and q.volume == 5000 and q.ask_volumes[0] == 10929


def test_suspended_is_a_halt_reason_never_zero_prices() -> None:
    halted = tick(ms(DAY, "10:00:00"), 0.0, last_close=8.2, volume=0, status=13)
    assert normalize.quote(halted, 100) is None
    assert "no last price" in (normalize.halt_reason(halted, "600001.SH", [17, 20]) or "")
    paused = tick(ms(DAY, "10:00:00"), 8.2, status=17)
    assert "17" in (normalize.halt_reason(paused, "600001.SH", [17, 20]) or "")
    pre_open = tick(ms(DAY, "09:20:00"), 0.0, volume=0, status=12)
    assert normalize.halt_reason(pre_open, "600001.SH", [17, 20]) is None  # not yet traded ≠ suspended
    assert normalize.quote(pre_open, 100) is None
    assert normalize.halt_reason(tick(ms(DAY, "10:00:00"), 10.0), "000001.SZ", [17, 20]) is None


def test_l2_cancels_are_dropped_sides_and_share_volumes() -> None:
    t = ms(DAY, "10:00:01")
    assert normalize.trade(l2(t, 0.0, 300, 3, 7), 100) is None  # Shenzhen cancel
    assert normalize.trade(l2(t, 10.5, 300, 3, 7), 100) is None  # a cancel even with a price
    buy = normalize.trade(l2(t, 10.5, 300, 1, 8), 100)
    assert buy is not None and (buy.side, buy.volume, buy.price) == ("B", 300, 10.5)
    assert buy.trade_id == "20250815-8" and buy.time == "2025-08-15T10:00:01.000+08:00"
    sell_in_lots = normalize.trade(l2(t, 10.5, 3, 2, 9, shares=False), 100)
    assert sell_in_lots is not None and (sell_in_lots.side, sell_in_lots.volume) == ("S", 300)
    unknown = normalize.trade(l2(t, 10.5, 100, 0, 10), 100)
    assert unknown is not None and unknown.side == "N"
    assert normalize.trade(l2(t, 3900.0, 2, 1, 11), 1).volume == 2  # futures: contracts


def test_bar_labels_end_or_start() -> None:
    row = bar(ms(DAY, "10:01:00"), 10.0, 10.1, 9.9, 10.05, 120)
    end = normalize.bar(row, 60_000, 100, "end")
    start = normalize.bar(row, 60_000, 100, "start")
    assert end is not None and start is not None
    assert normalize.iso_s(end.open_ms) == "2025-08-15T10:00:00+08:00" and end.volume == 12000
    assert normalize.iso_s(start.open_ms) == "2025-08-15T10:01:00+08:00"
    daily = normalize.bar(bar(ms(DAY, "00:00:00"), 10.0, 10.1, 9.9, 10.05, 1), 86_400_000, 100, "end")
    assert daily is not None and normalize.iso_s(daily.open_ms) == "2025-08-15T00:00:00+08:00"
    assert normalize.bar(bar(ms(DAY, "10:01:00"), 0, 0, 0, 0, 0, suspend=1), 60_000, 100, "end").suspended  # type: ignore[union-attr]


def test_sessions_align_a_share_buckets_and_fold_the_auction_minute() -> None:
    def b(hhmm: str, minutes: int, market: str = "SZ") -> tuple[str, str]:
        s, e = SESSIONS.bucket(market, ms(DAY, hhmm + ":00"), minutes)
        return normalize.iso_s(s)[11:16], normalize.iso_s(e)[11:16]

    assert b("10:29", 60) == ("09:30", "10:30")
    assert b("10:30", 60) == ("10:30", "11:30")
    assert b("11:29", 60) == ("10:30", "11:30")
    assert b("13:00", 60) == ("13:00", "14:00")
    assert b("14:59", 30) == ("14:30", "15:00")
    assert b("09:29", 15) == ("09:30", "09:45")  # the opening auction's bar (label 09:30)
    assert b("09:29", 1) == ("09:30", "09:31")
    assert b("21:10", 15, "SF") == ("21:00", "21:15")  # futures night session: clock buckets
    assert native_periods({("tick", ""), ("kline", "60m")}) == {"1m"}
    assert native_periods({("kline", "5m"), ("kline", "1d"), ("quote", "")}) == {"5m", "1d"}


def _bars(sb: SymbolBars, period: str, *rows: dict) -> None:
    sb.add(period, [normalize.bar(r, {"1m": 60_000, "5m": 300_000}[period], 100, "end") for r in rows])  # type: ignore[misc]


def test_forming_bar_resent_then_closed_once_when_the_next_one_starts() -> None:
    sb = SymbolBars("000001.SZ", SESSIONS, 900, 2000, 300)
    streams = [("kline", "1m")]
    now = ms(DAY, "10:00:30")
    _bars(sb, "1m", bar(ms(DAY, "10:01:00"), 10.0, 10.1, 9.9, 10.05, 100))
    first = sb.events(streams, now)
    assert [(e.kline.open_time[11:16], e.kline.closed) for e in first] == [("10:00", False)]  # type: ignore[union-attr]
    assert sb.events(streams, now) == []  # nothing changed, nothing sent
    _bars(sb, "1m", bar(ms(DAY, "10:01:00"), 10.0, 10.2, 9.9, 10.15, 150))  # re-sent, same time
    again = sb.events(streams, now)
    assert len(again) == 1 and again[0].kline.close == 10.15 and not again[0].kline.closed  # type: ignore[union-attr]
    _bars(sb, "1m", bar(ms(DAY, "10:02:00"), 10.15, 10.2, 10.1, 10.12, 30))
    nxt = sb.events(streams, ms(DAY, "10:01:01"))
    assert [(e.kline.open_time[11:16], e.kline.closed) for e in nxt] == [("10:00", True), ("10:01", False)]  # type: ignore[union-attr]
    assert nxt[0].kline.volume == 15000  # type: ignore[union-attr]
    # no newer bar, but the clock passes the end (+grace): the forming one closes by itself
    assert sb.events(streams, ms(DAY, "10:02:01")) == []
    closed = sb.events(streams, ms(DAY, "10:02:03"))
    assert [(e.kline.open_time[11:16], e.kline.closed) for e in closed] == [("10:01", True)]  # type: ignore[union-attr]


def test_derived_60m_and_minute_line_from_1m_bars() -> None:
    sb = SymbolBars("000001.SZ", SESSIONS, 900, 2000, 300)
    rows = [bar(ms(DAY, "09:30:00"), 10.0, 10.0, 10.0, 10.0, 500)]  # opening auction bar
    for i in range(1, 62):  # 09:31 … 10:31 labels: 1m bars 09:30 … 10:30
        h, m = divmod(9 * 60 + 30 + i, 60)
        p = round(10.0 + 0.01 * i, 2)
        rows.append(bar(ms(DAY, f"{h:02d}:{m:02d}:00"), p, p + 0.02, p - 0.01, p + 0.01, 100))
    _bars(sb, "1m", *rows)
    evs = sb.events([("kline", "60m"), ("tick", "")], ms(DAY, "10:30:40"))
    klines = [e.kline for e in evs if isinstance(e, KlineEvent)]
    assert [(k.open_time[11:16], k.closed) for k in klines] == [("09:30", True), ("10:30", False)]
    first = klines[0]
    assert first.open == 10.0 and first.close == round(10.6 + 0.01, 2) and first.volume == (500 + 60 * 100) * 100
    ticks = [e.tick for e in evs if isinstance(e, TickEvent)]
    assert [(t.time, t.closed) for t in ticks] == [
        ("2025-08-15T10:29:00+08:00", True),
        ("2025-08-15T10:30:00+08:00", False),
    ]
    vol = sum(r["volume"] for r in rows[:-1]) * 100
    amt = sum(r["amount"] for r in rows[:-1])
    assert ticks[0].avg_price == round(amt / vol, 4) and ticks[0].volume == 10000
    # the auction bar folds into the 09:30 point
    sb2 = SymbolBars("000001.SZ", SESSIONS, 900, 2000, 300)
    _bars(sb2, "1m", rows[0], rows[1])
    pts = [e.tick for e in sb2.events([("tick", "")], ms(DAY, "09:30:30"))]  # type: ignore[union-attr]
    assert [(p.time[11:16], p.volume) for p in pts] == [("09:30", 60000)]


def test_options_validation() -> None:
    assert load_options({"level2": "true", "port": "58610", "sessions": "09:30-11:30,13:00-15:00"}).level2 is True
    with pytest.raises(ValueError, match="port"):
        load_options({"host": "10.0.0.5"})
    with pytest.raises(ValueError, match="bar_label"):
        load_options({"bar_label": "middle"})
    with pytest.raises(ValueError, match="unknown"):
        load_options({"nonsense": 1})
