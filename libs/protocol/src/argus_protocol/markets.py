"""The fixed registry of markets a canonical symbol may name."""

from __future__ import annotations

from datetime import timedelta, timezone

import msgspec

BEIJING = timezone(timedelta(hours=8), "Asia/Shanghai")


class Market(msgspec.Struct, frozen=True):
    code: str
    name: str
    country: str
    currency: str
    kind: str  # "equity", "future" or "index"


MARKETS: dict[str, Market] = {
    m.code: m
    for m in (
        Market("SZ", "Shenzhen Stock Exchange", "CN", "CNY", "equity"),
        Market("SH", "Shanghai Stock Exchange", "CN", "CNY", "equity"),
        Market("BJ", "Beijing Stock Exchange", "CN", "CNY", "equity"),
        Market("HK", "Hong Kong Exchanges", "HK", "HKD", "equity"),
        Market("US", "US equities", "US", "USD", "equity"),
        Market("IF", "China Financial Futures Exchange", "CN", "CNY", "future"),
        Market("SF", "Shanghai Futures Exchange", "CN", "CNY", "future"),
        Market("DF", "Dalian Commodity Exchange", "CN", "CNY", "future"),
        Market("ZF", "Zhengzhou Commodity Exchange", "CN", "CNY", "future"),
        Market("INE", "Shanghai International Energy Exchange", "CN", "CNY", "future"),
        Market("GF", "Guangzhou Futures Exchange", "CN", "CNY", "future"),
        # Global indices have no exchange suffix upstream (Yahoo "^GSPC"); IDX names them: GSPC.IDX.
        Market("IDX", "Global indices", "XX", "", "index"),
    )
}
