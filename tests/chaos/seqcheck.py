"""The one rule every chaos test checks: each `seq` a client sees arrives exactly once, or is announced.

`check_seqs` walks the DATA and GAP frames a client (or one logical client over several
connections, in order) received and, per stream (type, symbol[, period]), fails on

- a duplicate: a seq delivered twice;
- a backwards seq without a `GAP reason=reset` before it;
- a silent hole: a seq skipped with no GAP covering it.

What the protocol (docs/protocol.md §4, §5) allows is allowed: the first frame of a stream sets where
it starts; retained DATA (`snapshot`/`replay`) of a quote may skip seqs (a quote supersedes the ones
before it), and of a kline or 分时 minute may skip the versions compacted away as long as its
`first_seq` shows the bar or minute began no later than the next seq expected; a reset GAP starts a
new numbering at its `to_seq + 1`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

BARRED = ("kline", "tick")  # types whose retained view keeps one version per bar or minute


@dataclass
class StreamLog:
    """What one stream showed a client: delivered seqs, announced gaps, sources seen in order."""

    key: str
    last: int = 0  # the newest seq accounted for (delivered or announced); 0: nothing yet
    delivered: set[int] = field(default_factory=set)
    count: int = 0
    gaps: list[tuple[int, int, str]] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)  # each change of DATA.source, in order

    @property
    def resets(self) -> int:
        return sum(1 for g in self.gaps if g[2] == "reset")


def stream_key(data: dict[str, Any]) -> str:
    """`type:symbol` or `kline:symbol:period`, from a DATA's or a GAP's data."""
    kind = data["type"]
    if kind == "kline":
        period = data.get("period") or (data.get("kline") or {}).get("period")
        return f"kline:{data['symbol']}:{period}"
    return f"{kind}:{data['symbol']}"


def frames(messages: Iterable[Any]) -> Iterable[dict[str, Any]]:
    """Messages one by one, with `batch=1` arrays opened."""
    for m in messages:
        if isinstance(m, list):
            yield from m
        else:
            yield m


def check_seqs(messages: Iterable[Any]) -> dict[str, StreamLog]:
    """Per stream key, what was seen; raises AssertionError listing every violation."""
    logs: dict[str, StreamLog] = {}
    problems: list[str] = []
    for m in frames(messages):
        kind = m.get("type")
        if kind not in ("DATA", "GAP"):
            continue
        d = m["data"]
        key = stream_key(d)
        log = logs.get(key) or logs.setdefault(key, StreamLog(key))
        if kind == "GAP":
            _gap(log, d, problems)
        else:
            _data(log, d, problems)
    if problems:
        shown = "\n  ".join(problems[:20])
        raise AssertionError(f"{len(problems)} seq violation(s):\n  {shown}")
    return logs


def _gap(log: StreamLog, d: dict[str, Any], problems: list[str]) -> None:
    first, last, reason = int(d["from_seq"]), int(d["to_seq"]), d["reason"]
    log.gaps.append((first, last, reason))
    if reason == "reset":
        if first != 1:
            problems.append(f"{log.key}: GAP reset from {first}, not 1")
        log.last = last  # the new numbering's next DATA is last + 1
        log.delivered = set()
        return
    if log.last and first > log.last + 1:
        problems.append(f"{log.key}: silent hole {log.last + 1}..{first - 1} before GAP {first}..{last} {reason}")
    elif log.last and first <= log.last and first in log.delivered:
        problems.append(f"{log.key}: GAP {first}..{last} {reason} names seq {first}, which was delivered")
    log.last = max(log.last, last)


def _data(log: StreamLog, d: dict[str, Any], problems: list[str]) -> None:
    seq = int(d["seq"])
    source = d.get("source", "")
    if not log.sources or log.sources[-1] != source:
        log.sources.append(source)
    log.count += 1
    retained = bool(d.get("snapshot") or d.get("replay"))
    if seq in log.delivered:
        problems.append(f"{log.key}: duplicate seq {seq}")
    elif log.last and seq <= log.last:
        problems.append(f"{log.key}: seq {seq} after {log.last} with no GAP reset (backwards)")
    elif log.last and seq > log.last + 1 and not (retained and _may_skip(d, log.last)):
        problems.append(f"{log.key}: silent hole {log.last + 1}..{seq - 1} (next DATA {seq})")
    log.delivered.add(seq)
    log.last = max(log.last, seq)


def _may_skip(d: dict[str, Any], last: int) -> bool:
    """Retained DATA that may jump: a quote always; a bar or minute begun by the next expected seq."""
    if d["type"] == "quote":
        return True
    if d["type"] in BARRED:
        return int(d.get("first_seq") or d["seq"]) <= last + 1
    return False


def statuses(messages: Iterable[Any]) -> list[dict[str, Any]]:
    """The data of every STATUS, in order."""
    return [m["data"] for m in frames(messages) if m.get("type") == "STATUS"]


def check_status_settled(messages: Iterable[Any]) -> None:
    """STATUS told the truth by the end: whatever went non-live (a source, a symbol, the gateway) came back live."""
    state: dict[tuple[str, str], str] = {}
    for st in statuses(messages):
        state[(st["source"], st.get("symbol") or "")] = st["state"]
    stuck = {k: v for k, v in state.items() if v not in ("live", "closed")}
    assert not stuck, f"STATUS never returned to live: {stuck}"


def gap_summary(logs: dict[str, StreamLog]) -> str:
    """`upstream: 3 GAPs, 12 seqs; late: ...` over all streams, for the printed report."""
    by: dict[str, list[int]] = {}
    for log in logs.values():
        for first, last, reason in log.gaps:
            by.setdefault(reason, []).append(last - first + 1)
    delivered = sum(log.count for log in logs.values())
    parts = [f"{r}: {len(n)} GAPs, {sum(n)} seqs" for r, n in sorted(by.items())] or ["no GAPs"]
    return f"{delivered} DATA; " + "; ".join(parts)
