"""Canonical `CODE.MARKET` ⇄ Yahoo ticker names (600000.SH ⇄ 600000.SS, 00700.HK ⇄ 0700.HK, ^GSPC ⇄ GSPC.IDX)."""

from __future__ import annotations

from argus_protocol import canonical_symbol, parse_symbol


class NotOnYahoo(ValueError):
    """A symbol Yahoo does not stream (futures exchanges), or another spelling of one it does."""


# canonical market -> Yahoo suffix; US has none, IDX is a "^" prefix instead
_SUFFIX = {"SH": ".SS", "SZ": ".SZ", "BJ": ".BJ", "HK": ".HK", "US": ""}
_MARKET_OF_SUFFIX = {"SS": "SH", "SZ": "SZ", "BJ": "BJ", "HK": "HK"}


def to_yahoo(symbol: str) -> str:
    """The Yahoo ticker of a canonical symbol. Only the canonical spelling maps (`700.HK` and `aapl.US`
    do not): one ticker feeds one symbol, so an alias can never take another client's feed."""
    canonical = canonical_symbol(symbol)
    if canonical != symbol:
        raise NotOnYahoo(f"{symbol}: not the canonical spelling; Argus names it {canonical}")
    code, market = parse_symbol(symbol)
    if market == "IDX":
        return f"^{code.upper()}"
    if market == "HK":
        if not code.isdigit():
            raise NotOnYahoo(f"{symbol}: HK codes are numeric")
        return f"{int(code):04d}.HK"  # Yahoo keeps four digits: 00700 -> 0700, 09988 -> 9988
    if market not in _SUFFIX:
        raise NotOnYahoo(f"{symbol}: Yahoo has no {market} market")
    return f"{code.upper() if market == 'US' else code}{_SUFFIX[market]}"


def from_yahoo(ticker: str) -> str:
    """The canonical symbol of a Yahoo ticker; raises NotOnYahoo for suffixes outside the registry."""
    t = ticker.strip().upper()
    if t.startswith("^"):
        return f"{t[1:]}.IDX"
    code, dot, suffix = t.rpartition(".")
    if not dot:
        return f"{t}.US"
    market = _MARKET_OF_SUFFIX.get(suffix)
    if market is None:
        raise NotOnYahoo(f"{ticker}: suffix .{suffix} is not an Argus market")
    if market == "HK":
        code = code.zfill(5)  # Argus HK codes have five digits
    return f"{code}.{market}"
