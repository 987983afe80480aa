"""xtdata dicts → Argus payloads: lots to shares, ms epochs and `timetag`s to ISO-8601 +08:00.

Pure functions, no xtquant: each takes one dict exactly as an xtdata callback delivers it.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime
from typing import Any

from argus_protocol import BEIJING, MARKETS, Quote, Trade, market_of

Row = Mapping[str, Any]

SIDES = {1: "B", 2: "S"}  # l2transaction tradeFlag: 1 外盘 (buyer-initiated), 2 内盘; 0 unknown
CANCEL_FLAG = 3  # Shenzhen reports order cancellations as "transactions" with tradeFlag 3
BOOK_DEPTH = 5


def iso_ms(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, BEIJING).isoformat(timespec="milliseconds")


def iso_s(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, BEIJING).isoformat(timespec="seconds")


def parse_timetag(tag: str) -> int | None:
    """'20250815 15:00:04' (Beijing, optionally with .fff) -> epoch ms."""
    tag = tag.strip()
    for fmt in ("%Y%m%d %H:%M:%S.%f", "%Y%m%d %H:%M:%S", "%Y%m%d%H%M%S"):
        try:
            return int(datetime.strptime(tag, fmt).replace(tzinfo=BEIJING).timestamp() * 1000)
        except ValueError:
            continue
    return None


def row_time_ms(row: Row) -> int | None:
    """A tick's exchange time: `time` (epoch ms) when present and set, else its `timetag`."""
    t = row.get("time")
    if isinstance(t, int | float) and t > 0:
        return int(t)
    tag = row.get("timetag")
    if isinstance(tag, str) and tag:
        return parse_timetag(tag)
    return None


def lot_size(symbol: str, bond_prefixes: Mapping[str, Collection[str]]) -> int:
    """Shares (or bonds) per QMT volume unit: 100 for stocks/funds/indices, 10 for bonds, 1 for futures."""
    market = market_of(symbol)
    info = MARKETS.get(market)
    if info is None or info.kind != "equity" or info.country != "CN":
        return 1
    code = symbol.partition(".")[0]
    if any(code.startswith(p) for p in bond_prefixes.get(market, ())):
        return 10
    return 100


def _f(row: Row, key: str) -> float:
    v = row.get(key)
    return float(v) if isinstance(v, int | float) else 0.0


def _levels(row: Row, key: str) -> list[float]:
    v = row.get(key)
    if not isinstance(v, list | tuple):
        return []
    return [float(x) if isinstance(x, int | float) else 0.0 for x in v[:BOOK_DEPTH]]


def book_side(row: Row, prices: str, volumes: str, unit: int) -> tuple[list[float], list[int]]:
    """One side's levels best first; an empty level (QMT sends price 0: no ask at limit-up, a thin
    book) is left out, so prices and volumes always pair up and no price is 0."""
    out_p: list[float] = []
    out_v: list[int] = []
    for price, vol in zip(_levels(row, prices), _levels(row, volumes), strict=False):
        if price > 0 and vol > 0:
            out_p.append(price)
            out_v.append(int(vol) * unit)
    return out_p, out_v


def _book_lot(row: Row, lot: int) -> int:
    """The tick's own volume unit: pvolume/volume when both are there, else the instrument's lot."""
    vol, pvol = row.get("volume"), row.get("pvolume")
    if isinstance(vol, int | float) and isinstance(pvol, int | float) and vol > 0 and pvol > 0:
        ratio = pvol / vol
        return min((1, 10, 100), key=lambda c: abs(ratio - c))
    return lot


def quote(row: Row, lot: int) -> Quote | None:
    """A level-1 quote, or None when the tick carries no usable price (pre-open, suspended)."""
    price = _f(row, "lastPrice")
    ms = row_time_ms(row)
    if price <= 0 or ms is None:
        return None
    pvol = row.get("pvolume")
    if isinstance(pvol, int | float) and pvol > 0:
        volume = int(pvol)
    else:
        volume = int(_f(row, "volume")) * lot
    book = _book_lot(row, lot)
    bids = book_side(row, "bidPrice", "bidVol", book)
    asks = book_side(row, "askPrice", "askVol", book)
    return Quote(
        price=price,
        open=_f(row, "open"),
        high=_f(row, "high"),
        low=_f(row, "low"),
        prev_close=_f(row, "lastClose"),
        volume=volume,
        amount=round(_f(row, "amount"), 2),
        timestamp=iso_ms(ms),
        bid_prices=bids[0],
        bid_volumes=bids[1],
        ask_prices=asks[0],
        ask_volumes=asks[1],
    )


def halt_reason(row: Row, symbol: str, halted_statuses: Collection[int], open_minute: int = 570) -> str | None:
    """Why this tick says the instrument is not trading, or None.

    `stockStatus` 17 (临时停牌) / 20 (暂停交易至闭市), or an A-share with no last price after the
    open: a suspended stock, which must be reported as `halted`, never as zero prices.
    """
    status = row.get("stockStatus")
    if isinstance(status, int) and status in halted_statuses:
        return f"suspended: QMT stockStatus {status}"
    if _f(row, "lastPrice") <= 0 and market_of(symbol) in ("SH", "SZ", "BJ"):
        ms = row_time_ms(row)
        if ms is not None:
            local = datetime.fromtimestamp(ms / 1000, BEIJING)
            if local.hour * 60 + local.minute >= open_minute:
                return "suspended: no last price after the open"
    return None


class Bar:
    """One native QMT bar, normalized: open time in epoch ms, volume in shares/contracts."""

    __slots__ = ("amount", "close", "high", "low", "open", "open_ms", "suspended", "volume")

    def __init__(
        self,
        open_ms: int,
        open: float,
        high: float,
        low: float,
        close: float,
        volume: int,
        amount: float,
        suspended: bool = False,
    ) -> None:
        self.open_ms = open_ms
        self.open = open
        self.high = high
        self.low = low
        self.close = close
        self.volume = volume
        self.amount = amount
        self.suspended = suspended


def bar(row: Row, period_ms: int, lot: int, label: str) -> Bar | None:
    """A QMT 1m/5m/1d bar dict. Intraday bars are labelled by their end (`label="end"`)."""
    t = row.get("time")
    if not isinstance(t, int | float) or t <= 0:
        return None
    open_ms = int(t)
    if label == "end" and period_ms < 86_400_000:
        open_ms -= period_ms
    return Bar(
        open_ms,
        _f(row, "open"),
        _f(row, "high"),
        _f(row, "low"),
        _f(row, "close"),
        int(_f(row, "volume")) * lot,
        round(_f(row, "amount"), 2),
        row.get("suspendFlag") == 1,
    )


def trade(row: Row, lot: int) -> Trade | None:
    """One l2transaction, or None for a Shenzhen cancel (tradeFlag 3) or an empty record.

    Level-2 volumes may come in shares or in lots depending on the feed; the record's own
    `amount` (= price × shares) decides, so the result is always in shares.
    """
    if row.get("tradeFlag") == CANCEL_FLAG:
        return None
    price, raw = _f(row, "price"), int(_f(row, "volume"))
    ms = row_time_ms(row)
    if price <= 0 or raw <= 0 or ms is None:
        return None
    amount = _f(row, "amount")
    unit = 1
    if lot > 1 and amount > 0 and abs(amount - price * raw * lot) < abs(amount - price * raw):
        unit = lot
    flag = row.get("tradeFlag")
    day = datetime.fromtimestamp(ms / 1000, BEIJING).strftime("%Y%m%d")
    return Trade(
        time=iso_ms(ms),
        price=price,
        volume=raw * unit,
        side=SIDES.get(flag, "N") if isinstance(flag, int) else "N",  # type: ignore[arg-type]
        trade_id=f"{day}-{row.get('tradeIndex', '')}",
    )
