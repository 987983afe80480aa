"""pytdx rows → Argus payloads: prices to currency, lots to shares, TDX times to ISO-8601 Beijing."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from argus_protocol import BEIJING, PERIOD_SECONDS, Kline, Quote, Tick, Trade

from .client import Row
from .instruments import LOT

SIDES = {0: "B", 1: "S"}  # pytdx `buyorsell`: 0 buy, 1 sell, anything else neutral/auction


def _price(value: float, divisor: int, decimals: int) -> float:
    return round(value / divisor, decimals)


def _iso(dt: datetime) -> str:
    return dt.isoformat(timespec="milliseconds")


def is_suspended(row: Row) -> bool:
    """servertime 0/100 (our parser leaves it empty) or no last price: no trading today."""
    return not row.get("servertime") or row["price"] <= 0


def servertime(day: date, text: str, fallback: datetime) -> str:
    """pytdx renders servertime as `H:MM:SS.fff`; we add the date, which TDX does not send."""
    try:
        h, m, s = text.split(":")
        sec = float(s)
        t = time(int(h), int(m), min(int(sec), 59), int((sec % 1) * 1_000_000))
    except ValueError:
        return _iso(fallback)
    return _iso(datetime.combine(day, t, BEIJING))


def quote(row: Row, divisor: int, decimals: int, day: date, now: datetime) -> Quote:
    def p(key: str) -> float:
        return _price(row[key], divisor, decimals)

    bids = book_side(row, "bid", divisor, decimals)
    asks = book_side(row, "ask", divisor, decimals)
    return Quote(
        price=p("price"),
        open=p("open"),
        high=p("high"),
        low=p("low"),
        prev_close=p("last_close"),
        volume=int(row["vol"]) * LOT,
        amount=round(float(row["amount"]), 2),
        timestamp=servertime(day, row.get("servertime", ""), now),
        bid_prices=bids[0],
        bid_volumes=bids[1],
        ask_prices=asks[0],
        ask_volumes=asks[1],
    )


def book_side(row: Row, side: str, divisor: int, decimals: int) -> tuple[list[float], list[int]]:
    """One side's levels best first; an empty level (TDX sends price 0, e.g. no ask at limit-up) is left out."""
    prices: list[float] = []
    volumes: list[int] = []
    for i in range(1, 6):
        price = _price(row[f"{side}{i}"], divisor, decimals)
        volume = int(row[f"{side}_vol{i}"]) * LOT
        if price > 0 and volume > 0:
            prices.append(price)
            volumes.append(volume)
    return prices, volumes


def bar_open_time(row: Row, period: str) -> datetime:
    """TDX labels intraday bars by their end minute (09:35 for 09:30–09:35) and daily bars by date."""
    if period == "1d":
        return datetime(row["year"], row["month"], row["day"], tzinfo=BEIJING)
    end = datetime(row["year"], row["month"], row["day"], row["hour"], row["minute"], tzinfo=BEIJING)
    return end - timedelta(seconds=PERIOD_SECONDS[period])


def kline(row: Row, period: str, closed: bool) -> Kline:
    # Bars come in 0.001 units for every instrument class, so no extra divisor here.
    return Kline(
        period=period,
        open_time=_iso(bar_open_time(row, period)),
        open=round(row["open"], 3),
        high=round(row["high"], 3),
        low=round(row["low"], 3),
        close=round(row["close"], 3),
        volume=round(row["vol"]) * LOT,
        amount=round(float(row["amount"]), 2),
        closed=closed,
    )


def tick_points(rows: list[Row], divisor: int, decimals: int) -> list[tuple[float, float, int, float]]:
    """(price, avg_price, volume in shares, amount) per 分时 point; TDX sends no amount, so price×volume."""
    out = []
    cum_vol = 0
    cum_amount = 0.0
    for row in rows:
        price = _price(row["price"], divisor, decimals)
        vol = int(row["vol"]) * LOT
        amount = round(price * vol, 2)
        cum_vol += vol
        cum_amount += amount
        avg = round(cum_amount / cum_vol, decimals) if cum_vol else price
        out.append((price, avg, vol, amount))
    return out


def tick(minute: datetime, point: tuple[float, float, int, float], closed: bool) -> Tick:
    price, avg, vol, amount = point
    return Tick(time=_iso(minute), price=price, avg_price=avg, volume=vol, amount=amount, closed=closed)


def trade(row: Row, day: date, divisor: int, decimals: int, trade_id: str) -> Trade:
    h, m = (int(x) for x in row["time"].split(":"))
    return Trade(
        time=_iso(datetime.combine(day, time(h, m), BEIJING)),
        price=_price(row["price"], divisor, decimals),
        volume=int(row["vol"]) * LOT,
        side=SIDES.get(int(row["buyorsell"]), "N"),  # type: ignore[arg-type]
        trade_id=trade_id,
    )
