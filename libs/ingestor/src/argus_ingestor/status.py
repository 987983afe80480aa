"""Source status bookkeeping: what state the source and each symbol are in, and since when."""

from __future__ import annotations

from argus_protocol import STATES, SourceStatus, iso_now, now_us


class StatusBoard:
    """Holds the current source-wide and per-symbol states; the runner publishes what it returns."""

    def __init__(self, source: str, interval: float) -> None:
        self.source = source
        self.interval = interval
        self.started = iso_now()
        self.overall = SourceStatus(
            source=source, state="live", since=self.started, interval=interval, started=self.started
        )
        self.symbols: dict[str, SourceStatus] = {}

    def set(
        self,
        state: str,
        *,
        symbol: str | None = None,
        reason: str | None = None,
        unsupported: list[str] | None = None,
    ) -> SourceStatus | None:
        """Record a state; returns the status to publish, or None when nothing changed."""
        if state not in STATES:
            raise ValueError(f"unknown state {state!r}")
        current = self.symbols.get(symbol) if symbol else self.overall
        unsup = sorted(unsupported) if unsupported is not None else (current.unsupported if current else [])
        if current is not None and current.state == state and current.reason == reason and current.unsupported == unsup:
            return None
        since = current.since if current is not None and current.state == state else iso_now()
        status = SourceStatus(
            source=self.source,
            state=state,  # type: ignore[arg-type]
            since=since,
            symbol=symbol,
            reason=reason,
            interval=self.interval,
            unsupported=unsup,
            ts=now_us(),
            started=self.started if symbol is None else "",
        )
        if symbol is None:
            self.overall = status
        elif state == "live":
            self.symbols.pop(symbol, None)  # live is the default; keep only exceptions
        else:
            self.symbols[symbol] = status
        return status

    def repeat(self) -> list[SourceStatus]:
        """Everything to re-publish on the heartbeat: the overall state and per-symbol exceptions."""
        stamp = now_us()
        out = [self.overall, *self.symbols.values()]
        for s in out:
            s.ts = stamp
        return out
