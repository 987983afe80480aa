"""The market the fake TDX servers serve in tests: a trading Monday, 2026-11-23, Beijing time."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from argus_protocol import BEIJING
from fake_tdx import FakeBar, FakeMarket, FakeQuote, FakeTrade

DAY = date(2026, 11, 23)  # a Monday
SZ, SH = 0, 1
PING_AN = (SZ, "000001")  # 000001.SZ: the ordinary stock (also the health probe)
PUDONG = (SH, "600000")  # 600000.SH: a second ordinary stock
ETF = (SH, "510300")  # 510300.SH: three-decimal prices
THIN = (SZ, "000004")  # 000004.SZ: small volumes (≤ 64 lots)
HALTED_0 = (SH, "600001")  # servertime 0
HALTED_100 = (SZ, "000005")  # servertime 100
CATEGORIES = {"5m": 0, "15m": 1, "30m": 2, "60m": 3, "1m": 8, "1d": 9}


def at(hhmm: str, day: date = DAY) -> datetime:
    h, m = (int(x) for x in hhmm.split(":"))
    return datetime(day.year, day.month, day.day, h, m, tzinfo=BEIJING)


def quote(
    price: float, vol: int = 12345, amount: float | None = None, t: str = "10:00", sec: int = 15, tick: float = 0.01
) -> FakeQuote:
    when = at(t).replace(second=sec)
    servertime = when.hour * 1_000_000 + when.minute * 10_000 + round(when.second / 60 * 10_000)
    return FakeQuote(
        price=price,
        last_close=round(price - 0.1, 3),
        open=round(price - 0.05, 3),
        high=round(price + 0.2, 3),
        low=round(price - 0.3, 3),
        vol=vol,
        cur_vol=7,
        amount=amount if amount is not None else float(vol * 100 * price),
        bids=[round(price - tick * i, 3) for i in range(1, 6)],
        bid_vols=[10 * i for i in range(1, 6)],
        asks=[round(price + tick * i, 3) for i in range(1, 6)],
        ask_vols=[20 * i for i in range(1, 6)],
        servertime=servertime,
    )


def bars_for(category: int, base: float, vol: float = 1500.0) -> list[FakeBar]:
    """Three bars ending at 10:00 (intraday) or the last three trading days (daily)."""
    minutes = {0: 5, 1: 15, 2: 30, 3: 60, 8: 1}.get(category)
    out = []
    for i in range(3):
        if minutes is None:
            end = datetime(DAY.year, DAY.month, DAY.day - (2 - i), 15, 0, tzinfo=BEIJING)
        else:
            end = at("10:00") - timedelta(minutes=minutes * (2 - i))
        o = round(base + 0.01 * i, 2)
        c = round(o + 0.02, 2)
        out.append(
            FakeBar(
                end=end,
                open=o,
                close=c,
                high=round(c + 0.03, 2),
                low=round(o - 0.01, 2),
                vol=vol + i,
                amount=(vol + i) * 100 * c,
            )
        )
    return out


def standard_market() -> FakeMarket:
    m = FakeMarket()
    m.decimals[ETF] = 3
    m.quotes[PING_AN] = quote(10.5)
    m.quotes[PUDONG] = quote(8.2)
    m.quotes[ETF] = quote(3.912, tick=0.001)
    m.quotes[THIN] = quote(2.0, vol=3, amount=60.0)
    m.quotes[HALTED_0] = quote(0.0, vol=0)
    m.quotes[HALTED_0].servertime = 0
    m.quotes[HALTED_100] = quote(5.0, vol=0)
    m.quotes[HALTED_100].servertime = 100
    for key, base in ((PING_AN, 10.4), (PUDONG, 8.1), (ETF, 3.9)):
        for cat in CATEGORIES.values():
            m.bars[(*key, cat)] = bars_for(cat, base)
    for cat in CATEGORIES.values():
        m.bars[(*THIN, cat)] = bars_for(cat, 2.0, vol=12.0)
    m.minutes[PING_AN] = [(10.40 + 0.01 * i, 100 + i) for i in range(31)]  # 09:30 .. 10:00
    m.minutes[PUDONG] = [(8.10, 50)] * 31
    m.minutes[ETF] = [(3.901 + 0.001 * i, 1000) for i in range(31)]
    m.transactions[PING_AN] = [
        FakeTrade(f"09:{30 + i // 4:02d}", 10.40 + 0.01 * (i % 7), 10 + i, 1 + i % 3, i % 2) for i in range(30)
    ]
    m.transactions[PUDONG] = [FakeTrade("09:30", 8.10, 5, 1, 2)] * 12
    m.transactions[ETF] = [FakeTrade("09:31", 3.905, 300, 2, 0)]
    return m
