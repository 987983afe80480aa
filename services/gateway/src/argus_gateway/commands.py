"""The SUBSCRIBE, UNSUBSCRIBE and SUBSCRIPTIONS commands, and the pure planning behind them.

`plan_subscribe` / `plan_unsubscribe` turn a request into stream sets and per-item rejections;
`Commands` applies them to a session through the hub (the one place subscriptions change), replies,
and queues what the request asked of retention (snapshot, history, resume) with the replayer.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Container, Iterable
from typing import Any

from argus_protocol import DATA_TYPES, PERIODS, ErrorCode, InvalidSymbol, Stream, canonical_symbol, iso_now
from argus_protocol.messages import (
    ClientEnvelope,
    Envelope,
    Rejected,
    Subscribe,
    Subscribed,
    Subscriptions,
    Unsubscribe,
    Unsubscribed,
)

from .auth import Grant
from .fanout import Hub
from .replay import DAY, HISTORY, RESUME, SNAPSHOT, Replayer, Want
from .session import Session
from .sources import SourceTracker, status_envelope
from .topic import Topic

log = logging.getLogger("argus.gateway")

ErrorReply = Callable[[Session, str, str, "str | int | None"], None]


def request_items(req: Subscribe | Unsubscribe) -> int:
    """What a request costs to plan: the streams a SUBSCRIBE names, or the entries of its longest list if
    more (an UNSUBSCRIBE is matched against the held streams by set, so only its lists count)."""
    if isinstance(req, Unsubscribe):
        return max(len(items) for items in (req.symbols or (), req.data_types or (), req.periods or ()))
    symbols = req.symbols
    types, periods = req.data_types, req.periods
    kline = "kline" in types
    per_symbol = len(types) - kline + (len(periods) if kline else 0)
    longest = max(len(symbols), len(types), len(periods), len(req.resume or ()))
    return max(longest, len(symbols) * per_symbol)


def _label(item: object, limit: int) -> str:
    """How a rejected item is named back: never repr() of client data (nesting, size)."""
    return item[:limit] if isinstance(item, str) else f"<{type(item).__name__}>"


def _unique(items: Iterable[object]) -> list[object]:
    """Strings once each, in order; anything else is kept as it is (to be rejected, unhashable or not)."""
    seen: set[str] = set()
    out: list[object] = []
    for item in items:
        if isinstance(item, str):
            if item in seen:
                continue
            seen.add(item)
        out.append(item)
    return out


class Rejections:
    """Rejected items: the first `listed` in full, the rest only counted (per code, for one ERROR each)."""

    __slots__ = ("by_code", "count", "items", "listed")

    def __init__(self, listed: int) -> None:
        self.listed = listed
        self.items: list[Rejected] = []
        self.count = 0
        self.by_code: dict[str, list[Any]] = {}  # code -> [count, first message]

    def add(self, code: str, message: str, n: int = 1, **fields: Any) -> None:
        self.count += n
        seen = self.by_code.get(code)
        if seen is None:
            self.by_code[code] = [n, message]
        else:
            seen[0] += n
        if len(self.items) < self.listed:
            self.items.append(Rejected(code, message, **fields))


class Plan:
    __slots__ = ("add", "periods", "rejected", "symbols", "types")

    def __init__(self, rejected: Rejections) -> None:
        self.add: list[Stream] = []
        self.symbols: list[str] = []
        self.types: list[str] = []
        self.periods: list[str] = []
        self.rejected = rejected


def plan_subscribe(
    req: Subscribe,
    held: Collection[Stream],
    limit: int,
    grant: Grant,
    listed: int = 20,
    held_symbols: Container[str] = (),
) -> Plan:
    """The streams to add, the accepted symbols and the rejected items; set-based, and once the
    connection's limit is reached, symbols it does not hold yet are rejected without being looked at."""
    plan = Plan(Rejections(listed))
    rej = plan.rejected
    for t in _unique(req.data_types):
        if isinstance(t, str) and t in DATA_TYPES:
            plan.types.append(t)
        else:
            rej.add(
                ErrorCode.UNSUPPORTED_DATA_TYPE,
                f"unknown data type {_label(t, 32)!r}; one of {', '.join(DATA_TYPES)}",
                data_type=_label(t, 32),
            )
    if "kline" in plan.types:
        for p in _unique(req.periods):
            if isinstance(p, str) and p in PERIODS:
                plan.periods.append(p)
            else:
                rej.add(
                    ErrorCode.UNSUPPORTED_DATA_TYPE,
                    f"unknown kline period {_label(p, 16)!r}; one of {', '.join(PERIODS)}",
                    data_type="kline",
                    period=_label(p, 16),
                )
    combos = [(t, p) for t in plan.types for p in (plan.periods if t == "kline" else ("",))]
    adding: set[Stream] = set()
    room = limit - len(held)
    full = f"limit of {limit} streams per connection"
    for item in _unique(req.symbols):
        if room <= 0 and not (isinstance(item, str) and item in held_symbols):
            rej.add(ErrorCode.TOO_MANY_SUBSCRIPTIONS, full, len(combos), symbol=_label(item, 64))
            continue
        if not isinstance(item, str):
            rej.add(ErrorCode.INVALID_SYMBOL, "symbol must be a string", symbol=_label(item, 64))
            continue
        try:
            canonical = canonical_symbol(item)
        except InvalidSymbol as e:
            rej.add(ErrorCode.INVALID_SYMBOL, str(e)[:200], symbol=item[:64])
            continue
        if canonical != item:
            rej.add(ErrorCode.INVALID_SYMBOL, f"{item!r} is spelled {canonical!r}", symbol=item[:64])
            continue
        accepted = False
        for t, p in combos:
            stream = Stream(t, item, p)
            if stream in held or stream in adding:
                accepted = True  # idempotent: already held (and granted) or already in this request
                continue
            if room <= 0:
                rej.add(ErrorCode.TOO_MANY_SUBSCRIPTIONS, full, symbol=item, data_type=t, period=p or None)
                continue
            if not grant.allows(t, item):
                rej.add(
                    ErrorCode.FORBIDDEN,
                    f"not entitled to {stream.key}",
                    symbol=item,
                    data_type=t,
                    period=p or None,
                )
                continue
            adding.add(stream)
            plan.add.append(stream)
            room -= 1
            accepted = True
        if accepted:
            plan.symbols.append(item)
    return plan


def plan_unsubscribe(req: Unsubscribe, held: Iterable[Stream]) -> list[Stream]:
    syms = {s for s in req.symbols if isinstance(s, str)} if req.symbols is not None else None
    types = {t for t in req.data_types if isinstance(t, str)} if req.data_types is not None else None
    periods = {p for p in req.periods if isinstance(p, str)} if req.periods is not None else None
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


def want_for(req: Subscribe, stream: Stream) -> Want | None:
    """What one added stream asks of retention: resume wins over history, history over snapshot."""
    if req.resume and stream.key in req.resume:
        return Want(RESUME, max(0, req.resume[stream.key]))
    if req.history == "day":
        return Want(DAY)
    if req.history:
        return Want(HISTORY, req.history)
    if req.snapshot:
        return Want(SNAPSHOT)
    return None


class Commands:
    def __init__(
        self,
        hub: Hub,
        replayer: Replayer,
        sources: SourceTracker,
        *,
        max_subscriptions: int,
        max_history: int,
        error: ErrorReply,
        max_rejections_listed: int = 20,
        max_gateway_streams: int = 100_000,
    ) -> None:
        self.hub = hub
        self.replayer = replayer
        self.sources = sources
        self.max_subscriptions = max_subscriptions
        self.max_history = max_history
        self.error = error
        self.listed = max_rejections_listed
        self.max_gateway_streams = max_gateway_streams

    def subscribe(self, session: Session, req: Subscribe, env: ClientEnvelope) -> None:
        if isinstance(req.history, int) and req.history > self.max_history:
            self.error(
                session, ErrorCode.INVALID_MESSAGE, f'history must be at most {self.max_history}, or "day"', env.id
            )
            return
        had_any = bool(session.streams)
        plan = plan_subscribe(
            req, session.streams, self.max_subscriptions, session.grant, self.listed, held_symbols=session.symbols
        )
        rejected = plan.rejected
        hub = self.hub
        new_symbols = [s for s in dict.fromkeys(st.symbol for st in plan.add) if s not in session.symbols]
        added: list[tuple[Stream, Topic]] = []
        cap = self.max_gateway_streams
        for stream in plan.add:
            if len(hub.topics) >= cap and hub.topic_of(stream) is None:
                rejected.add(
                    ErrorCode.TOO_MANY_SUBSCRIPTIONS,
                    f"this gateway holds its limit of {cap} distinct streams",
                    symbol=stream.symbol,
                    data_type=stream.type,
                    period=stream.period or None,
                )
                continue
            topic = hub.add(session, stream)
            if topic is not None:
                added.append((stream, topic))
        held_types = {s.type for s in session.streams}
        asked_periods = set(plan.periods)
        # Reply before any snapshot or live frame can be queued: nothing above awaited.
        session.send(
            Envelope(
                "SUBSCRIBED",
                Subscribed(
                    added=[s.key for s, _ in added],
                    symbols=[s for s in plan.symbols if s in session.symbols],
                    data_types=[t for t in plan.types if t in held_types],
                    periods=sorted({s.period for s in session.streams if s.period and s.period in asked_periods}),
                    rejected=rejected.items,
                    total=len(session.streams),
                    rejected_count=rejected.count,
                ),
                iso_now(),
                env.id,
            )
        )
        for code, (count, message) in rejected.by_code.items():  # one ERROR per code, however many items
            self.error(session, code, f"{count} item(s) rejected: {message}", env.id)
        if added:
            log.info(
                "subscribed",
                extra={
                    "session": session.id,
                    "added": len(added),
                    "total": len(session.streams),
                    "rejected": rejected.count,
                },
            )
            # source STATUS first: not-live sources (first streams only), sources lacking a requested type
            for st in self.sources.on_subscribe(not had_any, {s.type for s, _ in added}):
                session.send(status_envelope(st))
        for sym in new_symbols:
            if sym in session.symbols:
                for st in self.sources.for_symbol(sym):
                    session.send(status_envelope(st))
        wants = [(topic, want) for stream, topic in added if (want := want_for(req, stream)) is not None]
        if wants:
            self.replayer.request(session, env.id, wants, bool(req.history) or bool(req.resume))

    def unsubscribe(self, session: Session, req: Unsubscribe, env: ClientEnvelope) -> None:
        self._remove(session, plan_unsubscribe(req, session.streams), env.id)

    def regrant(self, session: Session, grant: Grant, req_id: str | int | None) -> None:
        """A new token (re-AUTH): every held stream is checked against it; the ones it does not
        allow are unsubscribed (UNSUBSCRIBED, then one ERROR FORBIDDEN)."""
        session.grant = grant
        lost = [s for s in session.streams if not grant.allows(s.type, s.symbol)]
        if not lost:
            return
        self._remove(session, lost, req_id)
        first = min(s.key for s in lost)
        self.error(
            session, ErrorCode.FORBIDDEN, f"{len(lost)} stream(s) the new token does not allow removed: {first}", req_id
        )

    def _remove(self, session: Session, gone: list[Stream], req_id: str | int | None) -> None:
        for stream in gone:
            self.hub.remove(session, stream)
        session.send(
            Envelope(
                "UNSUBSCRIBED",
                Unsubscribed(
                    removed=sorted(s.key for s in gone),
                    symbols=sorted({s.symbol for s in gone}),
                    total=len(session.streams),
                ),
                iso_now(),
                req_id,
            )
        )
        if gone:
            log.info("unsubscribed", extra={"session": session.id, "removed": len(gone), "total": len(session.streams)})

    def subscriptions(self, session: Session, env: ClientEnvelope) -> None:
        by_symbol: dict[str, list[str]] = {}
        for s in sorted(session.streams):
            by_symbol.setdefault(s.symbol, []).append(f"kline:{s.period}" if s.period else s.type)
        session.send(
            Envelope(
                "SUBSCRIPTIONS",
                Subscriptions(
                    streams=sorted(s.key for s in session.streams), symbols=by_symbol, total=len(session.streams)
                ),
                iso_now(),
                env.id,
            )
        )


__all__ = [
    "HISTORY",
    "Commands",
    "Plan",
    "Rejections",
    "plan_subscribe",
    "plan_unsubscribe",
    "request_items",
    "want_for",
]
