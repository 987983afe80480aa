"""The blocking request sequences a poll needs, each run whole on one worker's connection.

An empty answer is judged against the probe symbol on the same connection: when the host answers
the probe, the emptiness belongs to the symbol (an unknown code, a stock without bars yet) and is
returned as data; only when the probe comes back empty too is the host failing (`EmptyAnswer`).
`None` means TDX has no such code at all.
"""

from __future__ import annotations

from .client import EmptyAnswer, Row, TdxConnection
from .convert import is_suspended

MAX_TRANSACTIONS = 2000  # TDX's page limit for get_transaction_data
MAX_DAY_PAGES = 20  # bounds the first-poll walk back to the day's first transaction

Stock = tuple[int, str]


def _probe_answers(conn: TdxConnection, probe: Stock) -> bool:
    return bool(conn.quotes([probe]))


def quotes(conn: TdxConnection, stocks: list[Stock], probe: Stock) -> list[Row]:
    """Rows for the codes TDX knows; a code it does not know simply has no row."""
    rows = conn.quotes(stocks)
    if not rows and not _probe_answers(conn, probe):
        raise EmptyAnswer("empty quote answer, also for the probe symbol")
    return rows


def bars(conn: TdxConnection, category: int, market: int, code: str, count: int, probe: Stock) -> list[Row] | None:
    rows = conn.bars(category, market, code, 0, count)
    if rows:
        return rows
    if not conn.bars(category, probe[0], probe[1], 0, 1):
        raise EmptyAnswer("empty bars answer, also for the probe symbol")
    return rows if conn.quotes([(market, code)]) else None


def confirm_empty(conn: TdxConnection, market: int, code: str, what: str, probe: Stock) -> bool:
    """An empty answer is data only if the symbol has not traded today; False: TDX has no such code."""
    rows = conn.quotes([(market, code)])
    if not rows:
        if _probe_answers(conn, probe):
            return False
        raise EmptyAnswer(f"empty {what} and quote answers")
    if not is_suspended(rows[0]) and rows[0]["vol"] > 0:
        raise EmptyAnswer(f"empty {what} answer for {code}, which traded {rows[0]['vol']} lots")
    return True


def minutes(conn: TdxConnection, market: int, code: str, require: bool, probe: Stock) -> list[Row] | None:
    rows = conn.minutes(market, code)
    if not rows and require and not confirm_empty(conn, market, code, "分时", probe):
        return None
    return rows


def transactions(
    conn: TdxConnection, market: int, code: str, count: int, count_day: bool, require: bool, probe: Stock
) -> tuple[list[Row], int] | None:
    """The newest `count` transactions and, when `count_day`, how many the day holds in total."""
    window = conn.transactions(market, code, 0, count)
    if not window and require and not confirm_empty(conn, market, code, "transactions", probe):
        return None
    total = len(window)
    if count_day and len(window) == count:
        for _ in range(MAX_DAY_PAGES):
            older = conn.transactions(market, code, total, MAX_TRANSACTIONS)
            total += len(older)
            if len(older) < MAX_TRANSACTIONS:
                break
    return window, total
