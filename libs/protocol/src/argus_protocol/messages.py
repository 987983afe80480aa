"""Client ⇄ gateway messages of PROTOCOL.md v1.

Every message travels in an envelope ``{"type", "data", "timestamp", "id"?}``. Inbound, the
envelope is decoded first (`ClientEnvelope`, `data` kept raw) and `data` is then converted into
the request struct for its type, so a bad field is reported against the right message.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from .events import Event
from .status import State

PROTOCOL_VERSION = 1

# ---------------------------------------------------------------- client -> server


MAX_ID_LENGTH = 64
INT64 = 2**63 - 1
# A request id is echoed in every reply about it: bounded, so it cannot multiply a request's size
# or fail to encode (MessagePack integers stop at 64 bits).
RequestId = Annotated[str, msgspec.Meta(max_length=MAX_ID_LENGTH)] | Annotated[int, msgspec.Meta(ge=-INT64, le=INT64)]
Seq = Annotated[int, msgspec.Meta(ge=0, le=INT64)]


class ClientEnvelope(msgspec.Struct):
    type: str
    data: Any = None
    id: RequestId | None = None
    timestamp: str | None = None


class Subscribe(msgspec.Struct, forbid_unknown_fields=False):
    symbols: list[Any]  # validated item by item so one bad symbol rejects only itself
    # Strings, checked item by item against the vocabulary; anything else makes the message invalid.
    data_types: list[str] = msgspec.field(default_factory=lambda: ["quote"])
    periods: list[str] = msgspec.field(default_factory=lambda: ["1m"])
    snapshot: bool = True
    # N entries of each stream's compacted view (bars, minutes, trades), or the trading day so far
    history: Annotated[int, msgspec.Meta(ge=0)] | Literal["day"] = 0
    resume: dict[str, Seq] | None = None  # stream key -> last seq the client has


class Unsubscribe(msgspec.Struct):
    symbols: list[Any] | None = None  # None: all
    data_types: list[str] | None = None  # None: all
    periods: list[str] | None = None  # None: all


class Heartbeat(msgspec.Struct):
    timestamp: str | None = None


class Auth(msgspec.Struct):
    token: str


CLIENT_TYPES: dict[str, type] = {
    "SUBSCRIBE": Subscribe,
    "UNSUBSCRIBE": Unsubscribe,
    "HEARTBEAT": Heartbeat,
    "AUTH": Auth,
}
# SUBSCRIPTIONS carries no data; listed so it is a known type.
KNOWN_CLIENT_TYPES = frozenset([*CLIENT_TYPES, "SUBSCRIPTIONS"])

# ---------------------------------------------------------------- server -> client


class Limits(msgspec.Struct):
    max_subscriptions: int
    max_message_bytes: int
    max_messages_per_second: float
    outbox_bytes: int
    max_items_per_request: int = 1000  # streams one SUBSCRIBE may name: split larger ones


class Welcome(msgspec.Struct, omit_defaults=True):
    session_id: str
    protocol_version: int
    heartbeat_interval: float
    encoding: str
    limits: Limits
    auth_required: bool = False
    options: dict[str, Any] = {}


class Rejected(msgspec.Struct, omit_defaults=True):
    code: str
    message: str
    symbol: str | None = None
    data_type: str | None = None
    period: str | None = None


class Subscribed(msgspec.Struct):
    added: list[str]  # stream keys newly added (already-held ones are not repeated)
    symbols: list[str]  # every symbol of the request that was accepted
    data_types: list[str]
    periods: list[str]
    rejected: list[Rejected]  # the first `server.max_rejections_listed` rejected items
    total: int  # streams this connection now holds
    rejected_count: int = 0  # every rejected item, listed or not


class Unsubscribed(msgspec.Struct):
    removed: list[str]
    symbols: list[str]
    total: int


class Subscriptions(msgspec.Struct):
    streams: list[str]
    symbols: dict[str, list[str]]  # symbol -> stream types ("kline:1m" for bars)
    total: int


class ServerHeartbeat(msgspec.Struct):
    timestamp: str
    server_time_us: int


class Authenticated(msgspec.Struct):
    subject: str
    expires_at: int | None = None


class Status(msgspec.Struct, omit_defaults=True):
    source: str
    state: State
    since: str
    symbol: str | None = None
    reason: str | None = None
    reconnect_after_ms: int | None = None
    unsupported: list[str] = []  # data types this source cannot provide (e.g. ["trade"]); omitted when none


class Gap(msgspec.Struct, omit_defaults=True):
    symbol: str
    type: str
    from_seq: int
    to_seq: int
    reason: str
    period: str | None = None


class ReplayedStream(msgspec.Struct):
    from_seq: int  # seq of the first replayed event (0: none)
    to_seq: int  # seq of the last; live DATA continues after it
    count: int  # events replayed
    recovered: bool  # everything asked for (or missed since the resume point) was retained


class Replayed(msgspec.Struct):
    """Sent once after the replayed events of one SUBSCRIBE with `history` or `resume`."""

    streams: dict[str, ReplayedStream]


class Error(msgspec.Struct, omit_defaults=True):
    code: str
    message: str
    id: str | int | None = None


class Envelope(msgspec.Struct, omit_defaults=True):
    """Outbound envelope; `data` is any struct above, an `Event`, or pre-encoded `msgspec.Raw`."""

    type: str
    data: Any
    timestamp: str
    id: str | int | None = None


__all__ = [
    "CLIENT_TYPES",
    "KNOWN_CLIENT_TYPES",
    "PROTOCOL_VERSION",
    "Auth",
    "Authenticated",
    "ClientEnvelope",
    "Envelope",
    "Error",
    "Event",
    "Gap",
    "Heartbeat",
    "Limits",
    "Rejected",
    "Replayed",
    "ReplayedStream",
    "ServerHeartbeat",
    "Status",
    "Subscribe",
    "Subscribed",
    "Subscriptions",
    "Unsubscribe",
    "Unsubscribed",
    "Welcome",
]
