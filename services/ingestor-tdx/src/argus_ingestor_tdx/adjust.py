"""前复权 / 后复权 from TDX's 除权除息 records (`get_xdxr_info` category 1), the way exchanges quote
the ex-rights reference price:

    ex_price = (prev_close - cash/10 + rights/10 × rights_price) / (1 + bonus/10 + rights/10)

with `cash` (分红), `bonus` (送转股) and `rights` (配股) per 10 shares and `prev_close` the close of
the trading day before the ex-date. Each event's ratio is ex_price / prev_close: qfq multiplies a
bar's prices by the ratios of every event after its day (today's prices stay as traded), hfq divides
by the ratios of every event up to and including its day (the listing day's prices stay). Volumes
and amounts are left as traded.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from datetime import date
from typing import Any

from argus_protocol import Kline

Row = dict[str, Any]


def ex_events(rows: Iterable[Row]) -> list[tuple[date, float, float, float, float]]:
    """(ex-date, cash, rights price, bonus, rights) of every 除权除息 record, oldest first."""
    out = []
    for r in rows:
        if r.get("category") != 1:
            continue
        cash, price, bonus, rights = (float(r.get(k) or 0.0) for k in ("fenhong", "peigujia", "songzhuangu", "peigu"))
        if cash or bonus or rights:
            out.append((date(r["year"], r["month"], r["day"]), cash, price, bonus, rights))
    out.sort()
    return out


def ratios(
    events: Sequence[tuple[date, float, float, float, float]], closes: Sequence[tuple[date, float]]
) -> list[tuple[date, float]]:
    """(ex-date, ex_price / prev_close) per event whose previous close is known (`closes`: oldest first)."""
    days = [d for d, _ in closes]
    out = []
    for ex, cash, price, bonus, rights in events:
        i = bisect.bisect_left(days, ex) - 1
        if i < 0:
            continue  # no close before this event in what TDX sent: it cannot be weighed
        prev = closes[i][1]
        if prev <= 0:
            continue
        ex_price = (prev - cash / 10 + rights / 10 * price) / (1 + bonus / 10 + rights / 10)
        if ex_price > 0:
            out.append((ex, ex_price / prev))
    return out


def factor(day: date, rs: Sequence[tuple[date, float]], how: str) -> float:
    f = 1.0
    if how == "qfq":
        for ex, r in rs:
            if ex > day:
                f *= r
    else:
        for ex, r in rs:
            if ex <= day:
                f /= r
    return f


def adjust_bar(k: Kline, f: float) -> Kline:
    if f == 1.0:
        return k
    return Kline(
        period=k.period,
        open_time=k.open_time,
        open=round(k.open * f, 3),
        high=round(k.high * f, 3),
        low=round(k.low * f, 3),
        close=round(k.close * f, 3),
        volume=k.volume,
        amount=k.amount,
        closed=k.closed,
    )
