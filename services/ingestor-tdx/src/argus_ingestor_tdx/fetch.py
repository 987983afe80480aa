"""The blocking request sequences a poll needs, each run whole on one worker's connection."""

from __future__ import annotations

from .client import EmptyAnswer, Row, TdxConnection
from .convert import is_suspended

MAX_TRANSACTIONS = 2000  # TDX's page limit for get_transaction_data
MAX_DAY_PAGES = 20  # bounds the first-poll walk back to the day's first transaction


def quotes(conn: TdxConnection, stocks: list[tuple[int, str]]) -> list[Row]:
    rows = conn.quotes(stocks)
    if not rows:
        raise EmptyAnswer("empty quote answer")  # listed codes always have a row, even after the close
    return rows


def bars(conn: TdxConnection, category: int, market: int, code: str, count: int) -> list[Row]:
    rows = conn.bars(category, market, code, 0, count)
    if not rows:
        raise EmptyAnswer("empty bars answer")
    return rows


def confirm_empty(conn: TdxConnection, market: int, code: str, what: str) -> None:
    """An empty answer is data only if the symbol really has not traded today; ask its quote."""
    rows = conn.quotes([(market, code)])
    if not rows:
        raise EmptyAnswer(f"empty {what} and quote answers")
    if not is_suspended(rows[0]) and rows[0]["vol"] > 0:
        raise EmptyAnswer(f"empty {what} answer for {code}, which traded {rows[0]['vol']} lots")


def minutes(conn: TdxConnection, market: int, code: str, require: bool) -> list[Row]:
    rows = conn.minutes(market, code)
    if not rows and require:
        confirm_empty(conn, market, code, "分时")
    return rows


def transactions(
    conn: TdxConnection, market: int, code: str, count: int, count_day: bool, require: bool
) -> tuple[list[Row], int]:
    """The newest `count` transactions and, when `count_day`, how many the day holds in total."""
    window = conn.transactions(market, code, 0, count)
    if not window and require:
        confirm_empty(conn, market, code, "transactions")
    total = len(window)
    if count_day and len(window) == count:
        for _ in range(MAX_DAY_PAGES):
            older = conn.transactions(market, code, total, MAX_TRANSACTIONS)
            total += len(older)
            if len(older) < MAX_TRANSACTIONS:
                break
    return window, total
