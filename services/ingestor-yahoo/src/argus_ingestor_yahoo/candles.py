"""One chart day (1m bars) → klines of every period and the 分时 line, all from the same response.

- 1m bars are Yahoo's; 5m–60m fold them into buckets aligned on the local clock (as
  `argus_ingestor.bars` does for every Argus source).
- 1d: open of the first minute; high, low, volume and close from the chart meta's
  `regularMarketDay*`/`regularMarketPrice` when they are for the same day (Yahoo's official day
  values), else folded from the minutes.
- 分时 point per minute: price = the minute's close, volume = its volume; Yahoo has no turnover, so
  amount = close × volume (also the klines' amount), and avg_price the day's running VWAP of those.
- A bar is closed when a later bar exists or its end has passed; the day's bar when the session is over.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import tzinfo

from argus_ingestor.bars import bucket_end_ms, bucket_start_ms, iso_ms
from argus_protocol import PERIOD_SECONDS, Kline, Tick

from .chart import Bar, ChartDay

INTRADAY = ("1m", "5m", "15m", "30m", "60m")


def _amount(b: Bar) -> float:
    return b.close * b.volume


def klines(day: ChartDay, periods: Collection[str], tz: tzinfo, now_ms: int, day_over: bool) -> list[Kline]:
    """Every bar of the day for each wanted period, oldest first."""
    out: list[Kline] = []
    bars = day.bars
    if not bars:
        return out
    for period in periods:
        if period == "1d":
            out.append(_daily(day, tz, day_over))
        elif period in INTRADAY:
            out.extend(_fold(bars, period, tz, now_ms))
    return out


def _fold(bars: list[Bar], period: str, tz: tzinfo, now_ms: int) -> list[Kline]:
    secs = PERIOD_SECONDS[period]
    groups: dict[int, list[Bar]] = {}
    for b in bars:
        groups.setdefault(bucket_start_ms(b.ts_ms, secs, tz), []).append(b)
    starts = sorted(groups)
    out = []
    for i, start in enumerate(starts):
        g = groups[start]
        closed = i < len(starts) - 1 or bucket_end_ms(start, secs, tz) <= now_ms
        out.append(
            Kline(
                period=period,
                open_time=iso_ms(start, tz),
                open=g[0].open,
                high=max(b.high for b in g),
                low=min(b.low for b in g),
                close=g[-1].close,
                volume=sum(b.volume for b in g),
                amount=round(sum(_amount(b) for b in g), 2),
                closed=closed,
            )
        )
    return out


def _daily(day: ChartDay, tz: tzinfo, day_over: bool) -> Kline:
    bars = day.bars
    start = bucket_start_ms(bars[0].ts_ms, 86400, tz)
    same_day = day.market_time_ms is not None and bucket_start_ms(day.market_time_ms, 86400, tz) == start
    high = max(b.high for b in bars)
    low = min(b.low for b in bars)
    volume = sum(b.volume for b in bars)
    close = bars[-1].close
    if same_day:
        high = max(high, day.day_high or high)
        low = min(low, day.day_low or low)
        volume = max(volume, day.day_volume or 0)
        close = day.price or close
    return Kline(
        period="1d",
        open_time=iso_ms(start, tz),
        open=bars[0].open,
        high=high,
        low=low,
        close=close,
        volume=volume,
        amount=round(sum(_amount(b) for b in bars), 2),
        closed=day_over,
    )


def ticks(day: ChartDay, tz: tzinfo, now_ms: int) -> list[Tick]:
    """The day's 分时 line, one point per minute Yahoo has a bar for."""
    out: list[Tick] = []
    cum_volume = 0
    cum_amount = 0.0
    bars = day.bars
    for i, b in enumerate(bars):
        cum_volume += b.volume
        cum_amount += _amount(b)
        avg = cum_amount / cum_volume if cum_volume else b.close
        out.append(
            Tick(
                time=iso_ms(b.ts_ms, tz),
                price=b.close,
                avg_price=round(avg, 4),
                volume=b.volume,
                amount=round(_amount(b), 2),
                closed=i < len(bars) - 1 or b.ts_ms + 60_000 <= now_ms,
            )
        )
    return out
