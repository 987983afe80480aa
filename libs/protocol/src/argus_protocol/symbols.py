"""Canonical symbols (`CODE.MARKET`) and their validation.

Validation is the guard that keeps client input out of NATS subject syntax: a symbol that passes
contains exactly one `.`, and neither token can hold `*`, `>`, `.`, whitespace or be empty.
"""

from __future__ import annotations

import re

from .markets import MARKETS

_CODE = re.compile(r"[A-Za-z0-9_-]{1,32}")
MAX_SYMBOL_LEN = 32 + 1 + max(len(m) for m in MARKETS)


class InvalidSymbol(ValueError):
    pass


def parse_symbol(symbol: object) -> tuple[str, str]:
    """Split a canonical symbol into (code, market), raising InvalidSymbol with the reason."""
    if not isinstance(symbol, str):
        raise InvalidSymbol("symbol must be a string")
    if len(symbol) > MAX_SYMBOL_LEN:
        raise InvalidSymbol("symbol too long")
    code, sep, market = symbol.partition(".")
    if not sep:
        raise InvalidSymbol(f"{symbol!r} is not CODE.MARKET")
    if _CODE.fullmatch(code) is None:
        raise InvalidSymbol(f"{symbol!r}: code must be 1-32 of A-Z a-z 0-9 _ -")
    if market not in MARKETS:
        raise InvalidSymbol(f"{symbol!r}: unknown market {market!r}")
    return code, market


# Numeric codes have one width per market (zero-padded); letters one case per market: Chinese commodity
# exchanges name contracts in lower case (rb2501.SF), everyone else in upper case (IF2412.IF, AAPL.US).
_NUMERIC_WIDTH = {"SZ": 6, "SH": 6, "BJ": 6, "HK": 5}
_LOWER_CASE = frozenset({"SF", "DF", "INE", "GF"})


def canonical_symbol(symbol: str) -> str:
    """The one spelling of a valid symbol's instrument (`700.HK` -> `00700.HK`, `aapl.US` -> `AAPL.US`), so
    two clients can never name one instrument two ways; raises InvalidSymbol for an invalid one."""
    code, market = parse_symbol(symbol)
    width = _NUMERIC_WIDTH.get(market)
    if width is not None and code.isdigit():
        code = code.lstrip("0").rjust(width, "0")
    elif market in _LOWER_CASE:
        code = code.lower()
    else:
        code = code.upper()
    return f"{code}.{market}"


def is_valid_symbol(symbol: object) -> bool:
    try:
        parse_symbol(symbol)
    except InvalidSymbol:
        return False
    return True


def market_of(symbol: str) -> str:
    return symbol.rpartition(".")[2]
