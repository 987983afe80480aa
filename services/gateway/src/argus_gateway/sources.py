"""What the gateway knows of each source's health, from `argus.status.*` and its heartbeat."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection

import msgspec
from argus_protocol import SourceStatus, iso_now
from argus_protocol.messages import Envelope, Status

log = logging.getLogger("argus.sources")

_dec = msgspec.msgpack.Decoder(SourceStatus)

MISSED_BEATS = 3  # heartbeats a source may miss before the gateway calls it down
RESTARTED = "source restarted"
GATEWAY = "gateway"  # the `source` of the gateway's own STATUS (NATS lost, no source heard)


class SourceTracker:
    """Keeps the newest status per source and per (source, symbol); detects silent sources."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, quiet: float = 15.0) -> None:
        self._clock = clock
        self._started = clock()
        self._quiet = quiet  # seconds with no source heard at all before that is reported
        self.overall: dict[str, SourceStatus] = {}
        self.symbols: dict[tuple[str, str], SourceStatus] = {}
        self._by_symbol: dict[str, dict[str, SourceStatus]] = {}  # symbol -> source -> status (a SUBSCRIBE looks up)
        self._heard: dict[str, tuple[float, float]] = {}  # source -> (last heard, interval)
        self._silent: set[str] = set()

    def receive(self, payload: bytes) -> SourceStatus | None:
        """Take one status message; returns it when clients should hear of it (a change)."""
        try:
            st = _dec.decode(payload)
        except msgspec.MsgspecError:
            log.warning("undecodable source status")
            return None
        self._heard[st.source] = (self._clock(), st.interval)
        was_silent = st.source in self._silent
        self._silent.discard(st.source)
        if st.symbol:
            key = (st.source, st.symbol)
            prev = self.symbols.get(key)
            if st.state == "live":
                self.symbols.pop(key, None)
                per = self._by_symbol.get(st.symbol)
                if per is not None:
                    per.pop(st.source, None)
                    if not per:
                        del self._by_symbol[st.symbol]
                return st if prev is not None else None
            self.symbols[key] = st
            self._by_symbol.setdefault(st.symbol, {})[st.source] = st
            return st if prev is None or prev.state != st.state or prev.reason != st.reason else None
        prev = self.overall.get(st.source)
        if prev is not None and st.started and not st.reason:
            if prev.started and prev.started != st.started:
                # another process publishes the source now: clients hear of it even when nothing else changed
                st.reason = f"{RESTARTED}: its ingestor publishes again since {st.started}"
            elif prev.started == st.started and (prev.reason or "").startswith(RESTARTED):
                st.reason = prev.reason  # the same process's next heartbeat: nothing new to tell
        self.overall[st.source] = st
        if was_silent or prev is None:
            return st if (was_silent or st.state != "live" or st.unsupported) else None
        changed = prev.state != st.state or prev.reason != st.reason or prev.unsupported != st.unsupported
        return st if changed else None

    # The gateway's own state, reported like a source's: `source: "gateway"`.
    def set_own(self, state: str, reason: str) -> SourceStatus | None:
        """Record the gateway's own STATUS; returns it when it changed (to broadcast)."""
        prev = self.overall.get(GATEWAY)
        if prev is None and state == "live":
            return None  # nothing was wrong
        if prev is not None and prev.state == state:
            return None
        st = SourceStatus(source=GATEWAY, state=state, since=iso_now(), reason=reason)  # type: ignore[arg-type]
        if state == "live":
            self.overall.pop(GATEWAY, None)
        else:
            self.overall[GATEWAY] = st
        return st

    @property
    def heard_any(self) -> bool:
        return bool(self._heard)

    def nothing_heard(self, now: float) -> bool:
        """No source has ever been heard, for longer than a source's heartbeats would take."""
        return not self._heard and now - self._started > self._quiet

    def silence_reason(self, now: float, prefix: str) -> str:
        where = f"subject prefix {prefix!r}" if prefix else "no subject prefix"
        return f"no source heard on NATS for {now - self._started:.0f}s: is an ingestor running, with {where}?"

    def heard_now(self, now: float) -> None:
        """Back from a NATS outage: every source's silence counts from now."""
        self._heard = {source: (now, interval) for source, (_, interval) in self._heard.items()}

    def check_silence(self) -> list[SourceStatus]:
        """Sources whose heartbeat stopped: a synthesized `down` for each, once."""
        now = self._clock()
        out = []
        for source, (heard, interval) in self._heard.items():
            if source in self._silent or now - heard <= MISSED_BEATS * interval:
                continue
            self._silent.add(source)
            st = SourceStatus(
                source=source,
                state="down",
                since=iso_now(),
                reason=f"no heartbeat from source for {now - heard:.0f}s",
                interval=interval,
            )
            self.overall[source] = st
            log.warning("source silent", extra={"source": source, "silent_for": round(now - heard, 1)})
            out.append(st)
        return out

    @property
    def silent(self) -> int:
        return len(self._silent)

    def not_live(self) -> list[SourceStatus]:
        return [s for s in self.overall.values() if s.state != "live"]

    def unsupported_for(self, data_types: Collection[str]) -> list[SourceStatus]:
        """Sources that said they cannot provide one of `data_types` (QMT without Level-2: trade)."""
        wanted = set(data_types)
        return [s for s in self.overall.values() if wanted.intersection(s.unsupported)]

    def on_subscribe(self, first: bool, data_types: Collection[str]) -> list[SourceStatus]:
        """The source STATUS a SUBSCRIBE is answered with: every source not live when these are the
        session's first streams, and every source that cannot serve a requested type, each once."""
        out = {s.source: s for s in self.not_live()} if first else {}
        for s in self.unsupported_for(data_types):
            out.setdefault(s.source, s)
        return list(out.values())

    def for_symbol(self, symbol: str) -> list[SourceStatus]:
        per = self._by_symbol.get(symbol)
        return list(per.values()) if per else []


def status_envelope(st: SourceStatus) -> Envelope:
    """A source status as the STATUS clients get."""
    return Envelope(
        "STATUS",
        Status(
            source=st.source,
            state=st.state,
            since=st.since,
            symbol=st.symbol,
            reason=st.reason,
            unsupported=st.unsupported,
        ),
        iso_now(),
    )
