"""Asking ingestors for deep history on `argus.history.<source>`, and which source to ask.

Which source answers a symbol: the sources configured for its market (`history.sources`, e.g.
`{SH: [tdx, qmt]}`), or, for a market not listed, every source the gateway hears from (its STATUS
heartbeat) in `history.order`, unknown names last. A source whose STATUS is `down` is skipped (not
hammered for history while it is down for live data). The first source that answers wins; one that
says UNAVAILABLE, or says nothing in time, hands over to the next. Replies come in chunks on one
inbox subscription, gathered until the chunk marked `last`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Sequence
from typing import Any, NamedTuple

import msgspec
from argus_protocol import Event, HistoryChunk, HistoryRequest, Subjects, encode_msgpack, market_of
from argus_service.config import HistoryConfig
from nats.aio.client import Client

from .sources import SourceTracker

_dec = msgspec.msgpack.Decoder(HistoryChunk)


class Answer(NamedTuple):
    source: str
    events: list[Event]
    adjust: str
    adjust_source: str
    more: bool


class NoAnswer(Exception):
    """No source answered; `reason` names each one asked and why (or why none was)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _Gather:
    __slots__ = ("chunks", "done", "failed")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.chunks: dict[int, HistoryChunk] = {}
        self.done: asyncio.Future[None] = loop.create_future()
        self.failed = ""


class DeepHistory:
    def __init__(self, nc: Client, subjects: Subjects, sources: SourceTracker, cfg: HistoryConfig) -> None:
        self.nc = nc
        self.subjects = subjects
        self.sources = sources
        self.cfg = cfg
        self.inbox = nc.new_inbox()
        self._ids = itertools.count(1)
        self._pending: dict[str, _Gather] = {}
        self._sub: Any = None

    async def start(self) -> None:
        self._sub = await self.nc.subscribe(f"{self.inbox}.*", cb=self._on_chunk)

    async def close(self) -> None:
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()

    # which sources ------------------------------------------------------------------------
    def candidates(self, symbol: str) -> tuple[list[str], list[str]]:
        """(sources to ask in order, why the others are not asked)."""
        overall = self.sources.overall
        configured = self.cfg.sources.get(market_of(symbol))
        if configured is not None:
            names = list(configured)
        else:
            rank = {name: i for i, name in enumerate(self.cfg.order)}
            names = sorted(overall, key=lambda n: (rank.get(n, len(rank)), n))
        ask, skipped = [], []
        for name in names:
            st = overall.get(name)
            if st is not None and st.state == "down":
                skipped.append(f"{name}: down{' (' + st.reason + ')' if st.reason else ''}")
            else:
                ask.append(name)
        return ask, skipped

    async def ask(self, req: HistoryRequest, timeout: float, only: Sequence[str] = ()) -> Answer:
        """The first answer from the symbol's sources within `timeout`; NoAnswer otherwise."""
        ask, reasons = self.candidates(req.symbols[0])
        if only:
            ask = [s for s in ask if s in only]
        if not ask:
            raise NoAnswer("; ".join(reasons) or f"no source serves {req.symbols[0]} (none has reported its status)")
        deadline = time.monotonic() + timeout
        payload = encode_msgpack(req)
        for name in ask:
            left = deadline - time.monotonic()
            if left <= 0:
                reasons.append(f"{name}: not asked, out of time")
                continue
            try:
                return await self._ask_one(name, payload, left)
            except NoAnswer as e:
                reasons.append(f"{name}: {e.reason}")
        raise NoAnswer("; ".join(reasons))

    async def _ask_one(self, source: str, payload: bytes, timeout: float) -> Answer:
        rid = str(next(self._ids))
        g = self._pending[rid] = _Gather(asyncio.get_running_loop())
        try:
            await self.nc.publish(self.subjects.history(source), payload, reply=f"{self.inbox}.{rid}")
            async with asyncio.timeout(timeout):  # not wait_for: in 3.11 it can swallow a cancel
                await g.done
        except TimeoutError:
            got = f" ({len(g.chunks)} chunks came)" if g.chunks else ""
            raise NoAnswer(f"no answer within {timeout:.1f}s{got}") from None
        except NoAnswer:
            raise
        except Exception as e:  # noqa: BLE001 - NATS away or closing
            raise NoAnswer(f"not asked: {e!r}") from None
        finally:
            self._pending.pop(rid, None)
        if g.failed:
            raise NoAnswer(g.failed)
        chunks = [g.chunks[i] for i in sorted(g.chunks)]
        head = chunks[0]
        if head.code:
            raise NoAnswer(f"{head.code}: {head.reason}")
        events = [e for c in chunks for e in c.events]
        return Answer(head.source or source, events, head.adjust, head.adjust_source, head.more)

    async def _on_chunk(self, msg: Any) -> None:
        g = self._pending.get(msg.subject.rpartition(".")[2])
        if g is None or g.done.done():
            return  # a late chunk of a request given up on
        status = (msg.headers or {}).get("Status")
        if status == "503":  # NATS: nobody subscribes to that source's history subject
            g.failed = "no ingestor answers history for it"
            g.done.set_result(None)
            return
        try:
            chunk = _dec.decode(msg.data)
        except msgspec.MsgspecError:
            g.failed = "undecodable history reply"
            g.done.set_result(None)
            return
        g.chunks[chunk.index] = chunk
        last = max((c.index for c in g.chunks.values() if c.last), default=-1)
        if last >= 0 and len(g.chunks) == last + 1:
            g.done.set_result(None)
