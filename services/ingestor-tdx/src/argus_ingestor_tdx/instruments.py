"""Canonical symbols ↔ TDX (market, code), and the unit conventions of each instrument class."""

from __future__ import annotations

from argus_protocol import parse_symbol

TDX_MARKETS = {"SZ": 0, "SH": 1, "BJ": 2}
MARKET_NAMES = {v: k for k, v in TDX_MARKETS.items()}
LOT = 100  # TDX volumes are in lots (手) of 100 shares

# kline period -> get_security_bars category
BAR_CATEGORIES = {"5m": 0, "15m": 1, "30m": 2, "60m": 3, "1m": 8, "1d": 9}


class NotOnTdx(ValueError):
    """The symbol's market is not served by TDX quote servers."""


def to_tdx(symbol: str) -> tuple[int, str]:
    code, market = parse_symbol(symbol)
    if market not in TDX_MARKETS:
        raise NotOnTdx(f"{symbol}: TDX serves SZ, SH and BJ only")
    if len(code) != 6 or not code.isdigit():
        raise NotOnTdx(f"{symbol}: TDX codes are 6 digits")
    return TDX_MARKETS[market], code


def from_tdx(market: int, code: str) -> str:
    return f"{code}.{MARKET_NAMES[market]}"


class PriceScale:
    """pytdx divides quote/分时/transaction prices by 100; 3-decimal instruments need a further /10."""

    def __init__(self, three_decimals: dict[str, list[str]]) -> None:
        self._prefixes = {TDX_MARKETS[m]: tuple(p) for m, p in three_decimals.items() if m in TDX_MARKETS}

    def divisor(self, market: int, code: str) -> int:
        return 10 if code.startswith(self._prefixes.get(market, ())) else 1

    def decimals(self, market: int, code: str) -> int:
        return 3 if self.divisor(market, code) == 10 else 2
