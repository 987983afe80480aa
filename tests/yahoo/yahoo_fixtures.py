"""Canned Yahoo data for three markets: AAPL (US, EST), 0700.HK and 600000.SS (UTC+8)."""

from __future__ import annotations

from datetime import UTC, datetime

from fake_chart import CannedChart

# 2026-11-24 09:32:30 in Hong Kong and Shanghai = 2026-11-23 20:32:30 in New York
NOW = datetime(2026, 11, 24, 1, 32, 30, tzinfo=UTC)


def ms(iso: str) -> int:
    """Epoch ms of an ISO time with offset."""
    return int(datetime.fromisoformat(iso).timestamp() * 1000)


def aapl() -> CannedChart:
    return CannedChart(
        "AAPL",
        "US",
        "2026-11-23",
        [
            ("09:30", 229.00, 229.50, 228.90, 229.40, 1000),
            ("09:31", 229.40, 229.80, 229.30, 229.70, 500),
            ("09:35", 229.70, 230.10, 229.60, 230.00, 800),
            ("16:00", 230.00, 230.00, 230.00, 230.00, 9999),  # after the regular session: yfinance drops it
        ],
        prev_close=228.52,
        day_high=230.72,
        day_low=228.06,
        day_volume=38_168_252,
    )


def tencent() -> CannedChart:
    return CannedChart(
        "0700.HK",
        "HK",
        "2026-11-24",
        [
            ("09:30", 500.0, 501.0, 499.5, 500.5, 10_000),
            ("09:31", 500.5, 502.0, 500.0, 501.5, 20_000),
            ("09:32", 501.5, 501.5, 501.0, 501.0, 3_000),
        ],
        prev_close=498.0,
        currency="HKD",
    )


def pufa() -> CannedChart:
    return CannedChart(
        "600000.SS",
        "SH",
        "2026-11-24",
        [
            ("09:30", 10.50, 10.52, 10.49, 10.51, 120_000),
            ("09:31", 10.51, 10.55, 10.50, 10.54, 80_000),
        ],
        prev_close=10.45,
        currency="CNY",
    )


def all_charts() -> dict[str, CannedChart]:
    return {c.ticker: c for c in (aapl(), tencent(), pufa())}
