"""The SUBSCRIBE, UNSUBSCRIBE and SUBSCRIPTIONS commands, and the pure planning behind them.

`plan_subscribe` / `plan_unsubscribe` turn a request into stream sets and per-item rejections;
`Commands` applies them to a session through the hub (the one place subscriptions change), replies,
and queues what the request asked of retention (snapshot, history, resume) with the replayer.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from argus_protocol import DATA_TYPES, PERIODS, ErrorCode, InvalidSymbol, Stream, iso_now, parse_symbol
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
    for item in dict.fromkeys(_hashable(req.symbols)):
        try:
            parse_symbol(item)
        except InvalidSymbol as e:
            rejected.append(Rejected(ErrorCode.INVALID_SYMBOL, str(e)[:200], symbol=str(item)[:64]))
            continue
        sym = str(item)
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
    ) -> None:
        self.hub = hub
        self.replayer = replayer
        self.sources = sources
        self.max_subscriptions = max_subscriptions
        self.max_history = max_history
        self.error = error

    def subscribe(self, session: Session, req: Subscribe, env: ClientEnvelope) -> None:
        if isinstance(req.history, int) and req.history > self.max_history:
            self.error(
                session, ErrorCode.INVALID_MESSAGE, f'history must be at most {self.max_history}, or "day"', env.id
            )
            return
        had_any = bool(session.streams)
        add, symbols, rejected = plan_subscribe(req, session.streams, self.max_subscriptions, session.grant)
        new_symbols = [s for s in dict.fromkeys(st.symbol for st in add) if s not in session.symbols]
        added: list[tuple[Stream, Topic]] = []
        for stream in add:
            topic = self.hub.add(session, stream)
            if topic is not None:
                added.append((stream, topic))
        # Reply before any snapshot or live frame can be queued: nothing above awaited.
        session.send(
            Envelope(
                "SUBSCRIBED",
                Subscribed(
                    added=[s.key for s in add],
                    symbols=symbols,
                    data_types=[
                        t
                        for t in dict.fromkeys(req.data_types)
                        if isinstance(t, str) and any(s.type == t for s in session.streams)
                    ],
                    periods=sorted({s.period for s in session.streams if s.period and s.period in req.periods}),
                    rejected=rejected,
                    total=len(session.streams),
                ),
                iso_now(),
                env.id,
            )
        )
        for code in dict.fromkeys(r.code for r in rejected):
            items = [r for r in rejected if r.code == code]
            self.error(session, code, f"{len(items)} item(s) rejected: {items[0].message}", env.id)
        if add:
            log.info(
                "subscribed",
                extra={
                    "session": session.id,
                    "added": len(add),
                    "total": len(session.streams),
                    "rejected": len(rejected),
                },
            )
        if add:  # source STATUS first: not-live sources (first streams only), sources lacking a requested type
            for st in self.sources.on_subscribe(not had_any, {s.type for s in add}):
                session.send(status_envelope(st))
        for sym in new_symbols:
            for st in self.sources.for_symbol(sym):
                session.send(status_envelope(st))
        wants = [(topic, want) for stream, topic in added if (want := want_for(req, stream)) is not None]
        if wants:
            self.replayer.request(session, env.id, wants, bool(req.history) or bool(req.resume))

    def unsubscribe(self, session: Session, req: Unsubscribe, env: ClientEnvelope) -> None:
        gone = plan_unsubscribe(req, session.streams)
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
                env.id,
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


__all__ = ["HISTORY", "Commands", "plan_subscribe", "plan_unsubscribe", "want_for"]
