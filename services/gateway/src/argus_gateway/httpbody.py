"""What the HTTP API answers: one msgspec struct per endpoint (openapi.py documents them from these
very types), JSON or MessagePack by `Accept`, and errors as the WebSocket's ERROR envelope."""

from __future__ import annotations

import msgspec
from aiohttp import web
from argus_protocol import ErrorCode, Event, Kline, Tick, Trade, encode, iso_now
from argus_protocol.messages import Envelope, Error, Rejected

JSON_TYPE = "application/json"
MSGPACK_TYPE = "application/msgpack"
_MSGPACK_ACCEPTS = (MSGPACK_TYPE, "application/x-msgpack", "application/vnd.msgpack")

STATUS: dict[str, int] = {
    ErrorCode.INVALID_MESSAGE: 400,
    ErrorCode.INVALID_SYMBOL: 400,
    ErrorCode.UNSUPPORTED_DATA_TYPE: 400,
    ErrorCode.UNKNOWN_TYPE: 404,
    ErrorCode.UNAUTHORIZED: 401,
    ErrorCode.FORBIDDEN: 403,
    ErrorCode.MESSAGE_TOO_LARGE: 413,
    ErrorCode.RATE_LIMITED: 429,
    ErrorCode.UNAVAILABLE: 503,
    ErrorCode.INTERNAL: 500,
}


class Bars(msgspec.Struct, kw_only=True):
    """`GET /v1/bars`: bars oldest first; `sources` says where they came from, oldest part first."""

    symbol: str
    period: str
    adjust: str  # the adjustment applied: none, qfq, hfq
    adjust_source: str  # whose factors ("" for none)
    sources: list[str]  # "retention" and/or the source asked (tdx, qmt, yahoo, mock)
    count: int
    more: bool  # older bars may exist: ask again with `end` (see `next`)
    complete: bool  # false when a source could not be asked for the older part (`reason`)
    bars: list[Kline]
    next: str | None = None  # the URL of the previous page when `more`
    reason: str | None = None


class Ticks(msgspec.Struct, kw_only=True):
    """`GET /v1/ticks`: one trading day's 分时, minute by minute."""

    symbol: str
    date: str | None  # the trading day (None when nothing is known of the symbol)
    sources: list[str]
    count: int
    complete: bool
    ticks: list[Tick]
    reason: str | None = None


class Trades(msgspec.Struct, kw_only=True):
    """`GET /v1/trades`: the newest trades, oldest first."""

    symbol: str
    sources: list[str]
    count: int
    more: bool
    complete: bool
    trades: list[Trade]
    reason: str | None = None


class Missing(msgspec.Struct, omit_defaults=True):
    symbol: str
    type: str
    reason: str
    period: str | None = None


class Snapshot(msgspec.Struct, kw_only=True):
    """`GET /v1/snapshot`: the newest event per stream, by symbol then stream (`quote`, `kline:1m`)."""

    count: int
    snapshots: dict[str, dict[str, Event]]
    missing: list[Missing]  # streams nothing is known of (retention had none, no source answered)
    rejected: list[Rejected]  # items refused: bad symbol, forbidden


class Session(msgspec.Struct):
    phase: str  # auction, pre_open, open, lunch
    start: str
    end: str


class Day(msgspec.Struct, kw_only=True):
    date: str
    trading: bool  # the exchange trades that day (a make-up working day 调休 does not)
    known: bool  # the calendar package records this date (else weekdays are assumed to trade)
    sessions: list[Session]  # every period of the day, auctions and lunch included
    hours: list[list[str]]  # the regular sessions [[open, close], ...] where bars and 分时 form


class Now(msgspec.Struct, kw_only=True):
    time: str
    phase: str  # closed, auction, pre_open, open, lunch
    trading_day: str  # the trading day whose data is current now
    open_today: bool  # today is a trading day


class CalendarBody(msgspec.Struct, kw_only=True):
    """`GET /v1/calendar`: trading days and sessions of one market."""

    market: str
    exchange: str
    timezone: str
    start: str
    end: str
    known_until: str  # the last date the calendar package records holidays for
    now: Now
    trading_days: list[str]
    days: list[Day]


class ErrorData(msgspec.Struct):
    code: str
    message: str


class ErrorBody(msgspec.Struct):
    """The ERROR envelope (documented; `error()` sends the WebSocket's own `Envelope`)."""

    type: str
    data: ErrorData
    timestamp: str


def wants_msgpack(request: web.Request) -> bool:
    accept = request.headers.get("Accept", "")
    return any(t in accept for t in _MSGPACK_ACCEPTS)


def reply(request: web.Request, body: object, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    if wants_msgpack(request):
        return web.Response(body=encode(body, "msgpack"), status=status, content_type=MSGPACK_TYPE, headers=headers)
    return web.Response(body=encode(body, "json"), status=status, content_type=JSON_TYPE, headers=headers)


def error(
    request: web.Request, code: str, message: str, status: int | None = None, headers: dict[str, str] | None = None
) -> web.Response:
    """HTTP status plus the ERROR envelope clients know from the WebSocket."""
    env = Envelope("ERROR", Error(code=str(code), message=message[:400]), iso_now())
    return reply(request, env, status or STATUS.get(code, 400), headers)
