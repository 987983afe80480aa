"""Deep history from MiniQMT through xtquant: `get_market_data_ex` bars with `dividend_type`
(front = 前复权, back = 后复权, MiniQMT's own dividend factors), a day's 分时 from its 1m bars, Level-2
transactions (`l2transaction`, with the entitlement), and `get_full_tick` quotes. Rows go through
normalize.py, and 15/30/60m bars and 分时 are folded from 1m bars on the session buckets of bars.py,
as live ones are."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from datetime import date, datetime
from typing import Any

from argus_ingestor import HistoryAnswer, HistoryQuery, HistoryUnavailable
from argus_protocol import BEIJING, Event, KlineEvent, QuoteEvent, Tick, TickEvent, TradeEvent, market_of

from . import normalize
from .bars import DERIVED_MIN, NATIVE_MS, Sessions, _kline
from .markethours import MarketHours

DIVIDEND_TYPES = {"none": "none", "qfq": "front", "hfq": "back"}
Call = Callable[..., Awaitable[Any]]


def _stamp(t: datetime | None, day_only: bool) -> str:
    if t is None:
        return ""
    local = t.astimezone(BEIJING)
    return local.strftime("%Y%m%d") if day_only else local.strftime("%Y%m%d%H%M%S")


def _rows(data: Any, symbol: str) -> list[Mapping[str, Any]]:
    frame = data.get(symbol) if isinstance(data, Mapping) else None
    if frame is None:
        return []
    return list(frame.to_dict("records") if hasattr(frame, "to_dict") else frame)


class QmtHistory:
    def __init__(
        self,
        xt: Any,
        call: Call,
        sessions: Sessions,
        hours: MarketHours,
        lot: Callable[[str], int],
        bar_label: str,
        level2: bool,
        now_ms: Callable[[], int],
    ) -> None:
        self.xt, self.call, self.sessions, self.hours = xt, call, sessions, hours
        self.lot, self.bar_label, self.level2, self.now_ms = lot, bar_label, level2, now_ms

    async def answer(self, q: HistoryQuery) -> HistoryAnswer:
        if q.kind == "quote":
            ticks = await self.call(self.xt.get_full_tick, list(q.symbols))
            out: list[Event] = []
            for code, row in (ticks or {}).items():
                quote = normalize.quote(row, self.lot(code))
                if quote is not None:
                    out.append(QuoteEvent(symbol=code, quote=quote))
            return HistoryAnswer(out)
        if q.kind == "kline":
            return await self._bars(q)
        if q.kind == "tick":
            return await self._ticks(q)
        return await self._trades(q)

    async def _get(
        self, symbol: str, period: str, start: str, end: str, count: int, dividend: str = "none"
    ) -> list[Any]:
        get = self.xt.get_market_data_ex
        data = await self.call(
            lambda: get(
                [], [symbol], period=period, start_time=start, end_time=end, count=count, dividend_type=dividend
            )
        )
        return _rows(data, symbol)

    async def _bars(self, q: HistoryQuery) -> HistoryAnswer:
        native = q.period if q.period in NATIVE_MS else "1m"
        per_bar = DERIVED_MIN.get(q.period, 1)
        count = q.limit * per_bar + per_bar if q.start is None else -1
        dividend = DIVIDEND_TYPES[q.adjust]
        rows = await self._get(
            q.symbol, native, _stamp(q.start, native == "1d"), _stamp(q.end, native == "1d"), count, dividend
        )
        lot = self.lot(q.symbol)
        bars = [b for r in rows if (b := normalize.bar(r, NATIVE_MS[native], lot, self.bar_label)) is not None]
        bars = [b for b in bars if not b.suspended and b.close > 0]
        now = self.now_ms()
        market = market_of(q.symbol)
        klines = []
        if q.period in NATIVE_MS:
            for b in bars:
                end = b.open_ms + NATIVE_MS[native]
                if native == "1d":
                    end = self.hours.day_end_ms(market, b.open_ms) or end
                klines.append(_kline(q.period, b.open_ms, [b], now >= end))
        else:
            groups: dict[int, tuple[int, list[Any]]] = {}
            for b in bars:
                start, end = self.sessions.bucket(market, b.open_ms, per_bar)
                groups.setdefault(start, (end, []))[1].append(b)
            klines = [_kline(q.period, s, g, now >= e) for s, (e, g) in sorted(groups.items())]
        events: list[Event] = [KlineEvent(symbol=q.symbol, kline=k) for k in klines]
        chosen, cut = q.select(events)
        source = f"xtquant get_market_data_ex dividend_type={dividend}" if q.adjust != "none" else ""
        full = count > 0 and len(rows) >= count
        return HistoryAnswer(chosen, adjust=q.adjust, adjust_source=source, more=cut or full)

    async def _ticks(self, q: HistoryQuery) -> HistoryAnswer:
        cal = self.hours.calendars.get(market_of(q.symbol)) or self.hours.calendars["SH"]
        now = datetime.fromtimestamp(self.now_ms() / 1000, BEIJING)
        day: date = q.day or cal.trading_day_at(now)
        stamp = day.strftime("%Y%m%d")
        rows = await self._get(q.symbol, "1m", stamp + "000000", stamp + "235959", -1)
        lot = self.lot(q.symbol)
        bars = [b for r in rows if (b := normalize.bar(r, 60_000, lot, self.bar_label)) is not None]
        market = market_of(q.symbol)
        minutes: dict[int, tuple[int, list[Any]]] = {}
        for b in bars:
            start, end = self.sessions.bucket(market, b.open_ms, 1)
            minutes.setdefault(start, (end, []))[1].append(b)
        vwap_amount = market in ("SH", "SZ", "BJ", "HK")
        cum_vol, cum_value = 0, 0.0
        out: list[Event] = []
        now_ms = self.now_ms()
        for start, (end, group) in sorted(minutes.items()):
            for b in group:
                cum_vol += b.volume
                cum_value += b.amount if vwap_amount else b.close * b.volume
            close = group[-1].close
            tick = Tick(
                time=normalize.iso_s(start),
                price=close,
                avg_price=round(cum_value / cum_vol if cum_vol else close, 4),
                volume=sum(b.volume for b in group),
                amount=round(sum(b.amount for b in group), 2),
                closed=now_ms >= end,
            )
            out.append(TickEvent(symbol=q.symbol, tick=tick))
        return HistoryAnswer(out)

    async def _trades(self, q: HistoryQuery) -> HistoryAnswer:
        if not self.level2:
            raise HistoryUnavailable("QMT trades need Level-2 (level2: false): none to give")
        count = q.limit if q.start is None else -1  # the newest `limit` MiniQMT holds, or a range
        rows = await self._get(q.symbol, "l2transaction", _stamp(q.start, False), _stamp(q.end, False), count)
        lot = self.lot(q.symbol)
        trades: list[Event] = [
            TradeEvent(symbol=q.symbol, trade=t) for r in rows if (t := normalize.trade(r, lot)) is not None
        ]
        chosen, cut = q.select(trades)
        return HistoryAnswer(chosen, more=cut)
