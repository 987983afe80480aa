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


def is_valid_symbol(symbol: object) -> bool:
    try:
        parse_symbol(symbol)
    except InvalidSymbol:
        return False
    return True


def market_of(symbol: str) -> str:
    return symbol.rpartition(".")[2]
