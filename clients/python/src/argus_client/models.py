"""Typed messages: every server message of protocol v1 (docs/protocol.md §5), plus the client's own
connection events. Unknown fields are ignored, so a newer gateway does not break an older client."""

from __future__ import annotations

from typing import Any

import msgspec

# ---------------------------------------------------------------- market data (DATA)


class Quote(msgspec.Struct):
    """Level 1 with a 5-level book; `volume` and `amount` are cumulative for the day."""

    price: float
    open: float
    high: float
    low: float
    prev_close: float
    volume: int
    amount: float
    timestamp: str
    bid_prices: list[float] = []
    bid_volumes: list[int] = []
    ask_prices: list[float] = []
    ask_volumes: list[int] = []


class Tick(msgspec.Struct):
    """One 分时 point (a minute); re-sent while the minute forms, `closed` on its final version."""

    time: str
    price: float
    avg_price: float
    volume: int
    amount: float
    closed: bool


class Kline(msgspec.Struct):
    period: str
    open_time: str
    open: float
    high: float
    low: float
    close: float
    volume: int
    amount: float
    closed: bool


class Trade(msgspec.Struct):
    time: str
    price: float
    volume: int
    side: str  # B buy, S sell, N unknown
    trade_id: str


class _Data(msgspec.Struct, tag_field="type", kw_only=True):
    symbol: str
    seq: int = 0  # per stream, from 1
    ts: int = 0  # epoch microseconds at which the ingestor published it
    source: str = ""
    first_seq: int = 0  # tick, kline: seq at which this bar or minute first appeared
    snapshot: bool = False  # the stream's newest value, sent on subscribe
    replay: bool = False  # re-sent from retention (history or resume)

    @property
    def key(self) -> str:
        """The stream key: `type:symbol`, or `kline:symbol:period`."""
        return f"{self.type}:{self.symbol}"

    @property
    def type(self) -> str:
        return str(self.__struct_config__.tag)


class QuoteEvent(_Data, tag="quote"):
    quote: Quote


class TickEvent(_Data, tag="tick"):
    tick: Tick


class KlineEvent(_Data, tag="kline"):
    kline: Kline

    @property
    def key(self) -> str:
        return f"kline:{self.symbol}:{self.kline.period}"


class TradeEvent(_Data, tag="trade"):
    trade: Trade


DataEvent = QuoteEvent | TickEvent | KlineEvent | TradeEvent

# ---------------------------------------------------------------- control messages


class Limits(msgspec.Struct):
    max_subscriptions: int = 0
    max_message_bytes: int = 0
    max_messages_per_second: float = 0.0
    outbox_bytes: int = 0


class Welcome(msgspec.Struct):
    session_id: str
    protocol_version: int
    heartbeat_interval: float
    encoding: str = "json"
    limits: Limits = msgspec.field(default_factory=Limits)
    auth_required: bool = False
    options: dict[str, Any] = {}


class Rejected(msgspec.Struct):
    code: str
    message: str
    symbol: str | None = None
    data_type: str | None = None
    period: str | None = None


class Subscribed(msgspec.Struct):
    added: list[str]
    symbols: list[str]
    data_types: list[str] = []
    periods: list[str] = []
    rejected: list[Rejected] = []
    total: int = 0


class Unsubscribed(msgspec.Struct):
    removed: list[str]
    symbols: list[str] = []
    total: int = 0


class Subscriptions(msgspec.Struct):
    streams: list[str]
    symbols: dict[str, list[str]] = {}
    total: int = 0


class Heartbeat(msgspec.Struct):
    timestamp: str = ""
    server_time_us: int = 0


class Authenticated(msgspec.Struct):
    subject: str = ""
    expires_at: int | None = None


class Status(msgspec.Struct):
    """Health of the data behind a subscription, or `source="gateway", state="draining"`."""

    source: str
    state: str  # live stale down halted closed draining
    since: str = ""
    symbol: str | None = None
    reason: str | None = None
    reconnect_after_ms: int | None = None


class Gap(msgspec.Struct):
    """Events `from_seq`..`to_seq` of a stream will not be delivered.

    Server reasons: `upstream`, `slow_consumer`, `resume_unavailable`, `reset` (the numbering began
    again: later seqs may be lower). Reasons this client adds: `client_overflow` (the application
    fell behind its queue bound) and `unannounced` (a hole the server did not announce).
    """

    symbol: str
    type: str
    from_seq: int
    to_seq: int
    reason: str
    period: str | None = None

    @property
    def key(self) -> str:
        return f"kline:{self.symbol}:{self.period}" if self.period else f"{self.type}:{self.symbol}"


class ReplayedStream(msgspec.Struct):
    from_seq: int
    to_seq: int
    count: int
    recovered: bool  # everything asked for (or missed since the resume point) was retained


class Replayed(msgspec.Struct):
    """Sent after the replayed events of one SUBSCRIBE with `history` or `resume`."""

    streams: dict[str, ReplayedStream]
    id: str | int | None = None  # the request's id (set from the envelope)


class Error(msgspec.Struct):
    code: str
    message: str
    id: str | int | None = None


# ---------------------------------------------------------------- the client's own events


class Connected(msgspec.Struct):
    """A session began (`attempt` counts connections, from 1); `resumed` names the streams the
    client asked to resume from their last seq."""

    url: str
    session_id: str
    attempt: int
    resumed: dict[str, int] = {}


class Disconnected(msgspec.Struct):
    """The session ended; the client reconnects after `retry_in` seconds (None: it stops)."""

    url: str
    reason: str  # closed, silent, draining, refused, unauthorized, error: ...
    code: int | None = None
    retry_in: float | None = None


Event = QuoteEvent | TickEvent | KlineEvent | TradeEvent | Gap | Replayed | Status | Error | Connected | Disconnected

# envelope `type` -> the struct of its `data`
SERVER_TYPES: dict[str, type] = {
    "WELCOME": Welcome,
    "SUBSCRIBED": Subscribed,
    "UNSUBSCRIBED": Unsubscribed,
    "SUBSCRIPTIONS": Subscriptions,
    "HEARTBEAT": Heartbeat,
    "AUTHENTICATED": Authenticated,
    "STATUS": Status,
    "GAP": Gap,
    "REPLAYED": Replayed,
    "ERROR": Error,
}
