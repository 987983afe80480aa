"""NATS subject names for market data and control traffic, and client stream keys.

Data subjects (optionally under a deployment-wide prefix, e.g. ``prod.``):

- ``quote.{CODE}.{MARKET}``, ``trade.{CODE}.{MARKET}``
- ``tick.{CODE}.{MARKET}.{forming|closed}``, ``kline.{CODE}.{MARKET}.{PERIOD}.{forming|closed}``

A forming bar or 分时 minute and its final version travel on subjects of their own, so JetStream
can keep the newest forming version (one per subject) apart from the finished ones (many per
subject): retention holds one entry per bar or minute, not every update of it. A subscriber takes
both with one wildcard (`Subjects.data`), so the order of one stream's events is kept.

Control subjects live under ``argus.`` (see ``demand.py`` and ``status.py``).

A *stream key* names one stream to clients and in demand announcements:
``type:symbol`` or ``kline:symbol:period`` (``quote:000001.SZ``, ``kline:600000.SH:5m``).
"""

from __future__ import annotations

import re
from typing import NamedTuple

from .symbols import InvalidSymbol, parse_symbol

DATA_TYPES: tuple[str, ...] = ("quote", "tick", "kline", "trade")
PERIODS: tuple[str, ...] = ("1m", "5m", "15m", "30m", "60m", "1d")
PERIOD_SECONDS: dict[str, int] = {"1m": 60, "5m": 300, "15m": 900, "30m": 1800, "60m": 3600, "1d": 86400}
BARRED = frozenset(("tick", "kline"))  # types whose events are versions of one bar or minute
FORMING, CLOSED = "forming", "closed"


class Stream(NamedTuple):
    """One (type, symbol[, period]) stream; `period` is "" for everything but kline."""

    type: str
    symbol: str
    period: str = ""

    @property
    def key(self) -> str:
        if self.period:
            return f"{self.type}:{self.symbol}:{self.period}"
        return f"{self.type}:{self.symbol}"


def validate_stream(data_type: str, symbol: str, period: str = "") -> Stream:
    """Build a Stream from untrusted parts; raises ValueError (InvalidSymbol for the symbol)."""
    parse_symbol(symbol)
    if data_type not in DATA_TYPES:
        raise ValueError(f"unknown data type {data_type!r}")
    if data_type == "kline":
        if period not in PERIODS:
            raise ValueError(f"unknown kline period {period!r}")
    elif period:
        raise ValueError(f"{data_type} has no period")
    return Stream(data_type, symbol, period)


def parse_stream_key(key: str) -> Stream:
    parts = key.split(":")
    if len(parts) == 2:
        return validate_stream(parts[0], parts[1])
    if len(parts) == 3:
        return validate_stream(parts[0], parts[1], parts[2])
    raise ValueError(f"bad stream key {key!r}")


_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,64}")


def _token(name: str) -> str:
    """Gateway ids and source names become one subject token, so they obey symbol-code rules."""
    if _TOKEN.fullmatch(name) is None:
        raise ValueError(f"{name!r} is not a valid subject token (1-64 of A-Z a-z 0-9 _ -)")
    return name


class Subjects:
    """Subject builder/parser bound to one deployment prefix ("" or e.g. "prod")."""

    def __init__(self, prefix: str = "") -> None:
        if prefix and (any(c in prefix for c in " \t\r\n*>") or prefix.startswith(".") or prefix.endswith(".")):
            raise ValueError(f"bad subject prefix {prefix!r}")
        self.prefix = prefix
        self._p = f"{prefix}." if prefix else ""

    def data(self, stream: Stream) -> str:
        """The subject that carries every event of a stream (a wildcard for tick and kline)."""
        base = self._base(stream)
        return f"{base}.*" if stream.type in BARRED else base

    def publish(self, stream: Stream, closed: bool = False) -> str:
        """The subject one event is published on: a bar or minute's final version on `.closed`."""
        base = self._base(stream)
        if stream.type in BARRED:
            return f"{base}.{CLOSED if closed else FORMING}"
        return base

    def _base(self, stream: Stream) -> str:
        if stream.period:
            return f"{self._p}{stream.type}.{stream.symbol}.{stream.period}"
        return f"{self._p}{stream.type}.{stream.symbol}"

    def parse_data(self, subject: str) -> Stream:
        """The stream of a data subject (a published one, or `data()`'s wildcard)."""
        if self._p:
            if not subject.startswith(self._p):
                raise ValueError(f"subject {subject!r} outside prefix {self.prefix!r}")
            subject = subject[len(self._p) :]
        parts = subject.split(".")
        if parts[0] in BARRED:
            if parts[-1] not in (FORMING, CLOSED, "*"):
                raise ValueError(f"bad data subject {subject!r}: no forming/closed token")
            parts = parts[:-1]
        if len(parts) == 3:
            return validate_stream(parts[0], f"{parts[1]}.{parts[2]}")
        if len(parts) == 4:
            return validate_stream(parts[0], f"{parts[1]}.{parts[2]}", parts[3])
        raise ValueError(f"bad data subject {subject!r}")

    # Control plane -------------------------------------------------------------------------
    def demand(self, gateway_id: str) -> str:
        return f"{self._p}argus.demand.announce.{_token(gateway_id)}"

    def demand_all(self) -> str:
        return f"{self._p}argus.demand.announce.*"

    def demand_query(self) -> str:
        return f"{self._p}argus.demand.query"

    def status(self, source: str) -> str:
        return f"{self._p}argus.status.{_token(source)}"

    def status_all(self) -> str:
        return f"{self._p}argus.status.*"

    def history(self, source: str) -> str:
        """Deep-history requests for one source's ingestors (`history.py`)."""
        return f"{self._p}argus.history.{_token(source)}"


__all__ = [
    "BARRED",
    "CLOSED",
    "DATA_TYPES",
    "FORMING",
    "PERIODS",
    "PERIOD_SECONDS",
    "InvalidSymbol",
    "Stream",
    "Subjects",
    "parse_stream_key",
    "validate_stream",
]
