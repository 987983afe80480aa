"""Turning SUBSCRIBE / UNSUBSCRIBE requests into stream sets and per-item rejections. Pure."""

from __future__ import annotations

from collections.abc import Iterable

from argus_protocol import DATA_TYPES, PERIODS, ErrorCode, InvalidSymbol, Stream, parse_symbol
from argus_protocol.messages import Rejected, Subscribe, Unsubscribe

from .auth import Grant


def plan_subscribe(
    req: Subscribe,
    held: set[Stream],
    limit: int,
    grant: Grant,
) -> tuple[list[Stream], list[str], list[Rejected]]:
    """Returns (streams to add, accepted symbols, rejected items)."""
    rejected: list[Rejected] = []
    types: list[str] = []
    for t in dict.fromkeys(req.data_types):
        if isinstance(t, str) and t in DATA_TYPES:
            types.append(t)
        else:
            rejected.append(
                Rejected(
                    ErrorCode.UNSUPPORTED_DATA_TYPE,
                    f"unknown data type {t!r}; one of {', '.join(DATA_TYPES)}",
                    data_type=str(t)[:32],
                )
            )
    periods: list[str] = []
    if "kline" in types:
        for p in dict.fromkeys(req.periods):
            if isinstance(p, str) and p in PERIODS:
                periods.append(p)
            else:
                rejected.append(
                    Rejected(
                        ErrorCode.UNSUPPORTED_DATA_TYPE,
                        f"unknown kline period {p!r}; one of {', '.join(PERIODS)}",
                        data_type="kline",
                        period=str(p)[:16],
                    )
                )
    symbols: list[str] = []
    add: list[Stream] = []
    room = limit - len(held)
    for sym in dict.fromkeys(_hashable(req.symbols)):
        try:
            parse_symbol(sym)
        except InvalidSymbol as e:
            rejected.append(Rejected(ErrorCode.INVALID_SYMBOL, str(e)[:200], symbol=str(sym)[:64]))
            continue
        accepted = False
        for t in types:
            for p in periods if t == "kline" else ("",):
                stream = Stream(t, sym, p)
                if not grant.allows(t, sym):
                    rejected.append(
                        Rejected(
                            ErrorCode.FORBIDDEN,
                            f"not entitled to {stream.key}",
                            symbol=sym,
                            data_type=t,
                            period=p or None,
                        )
                    )
                    continue
                accepted = True
                if stream in held or stream in add:
                    continue
                if room <= 0:
                    rejected.append(
                        Rejected(
                            ErrorCode.TOO_MANY_SUBSCRIPTIONS,
                            f"limit of {limit} streams per connection",
                            symbol=sym,
                            data_type=t,
                            period=p or None,
                        )
                    )
                    continue
                add.append(stream)
                room -= 1
        if accepted:
            symbols.append(sym)
    return add, symbols, rejected


def plan_unsubscribe(req: Unsubscribe, held: Iterable[Stream]) -> list[Stream]:
    syms = set(_hashable(req.symbols)) if req.symbols is not None else None
    types = set(_hashable(req.data_types)) if req.data_types is not None else None
    periods = set(_hashable(req.periods)) if req.periods is not None else None
    out = []
    for s in held:
        if syms is not None and s.symbol not in syms:
            continue
        if types is not None and s.type not in types:
            continue
        if periods is not None and s.type == "kline" and s.period not in periods:
            continue
        out.append(s)
    return out


def _hashable(items: Iterable[object]) -> list[object]:
    return [i if isinstance(i, (str, int, float, bool)) or i is None else repr(i) for i in items]
