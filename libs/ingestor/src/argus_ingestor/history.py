"""Answering `argus.history.<source>`: the runner's side of deep history (the source's is `Source.history`).

Each request is validated (`past.parse_query`), refused at once while the source is `down` for live
data (the upstream is not hammered for history then), and otherwise answered by the source within
`history.source_timeout`, at most `history.max_in_flight` upstream calls at once. Identical requests
share one upstream call while it is in flight, and answers are reused for `history.cache_ttl`
seconds (`quote_ttl` for quote snapshots). The answer goes back in chunks of at most
`history.chunk_items` events. A queue group makes one replica of a source answer each request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import msgspec
from argus_protocol import ErrorCode, HistoryChunk, HistoryRequest, Subjects, encode_msgpack
from argus_service.config import HistoryConfig
from argus_service.tasks import Background
from nats.aio.client import Client
from prometheus_client import CollectorRegistry, Counter

from .past import HistoryAnswer, HistoryQuery, HistoryUnavailable, InvalidHistoryRequest, parse_query
from .source import Source

log = logging.getLogger("argus.history")

_dec = msgspec.msgpack.Decoder(HistoryRequest)
Health = Callable[[], tuple[str, str | None]]  # the source's live state and its reason


class _Failure(Exception):
    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code, self.reason = code, reason


class HistoryService:
    def __init__(self, source: Source, cfg: HistoryConfig, registry: CollectorRegistry, health: Health) -> None:
        self.source = source
        self.cfg = cfg
        self.health = health
        self.requests = Counter(
            "ingestor_history_requests_total", "History requests answered, by outcome", ["outcome"], registry=registry
        )
        self.upstream_calls = Counter(
            "ingestor_history_upstream_calls_total", "History calls made to the upstream", registry=registry
        )
        self._nc: Client | None = None
        self._sub: Any = None
        self._slots = asyncio.Semaphore(cfg.max_in_flight)
        self._inflight: dict[tuple[Any, ...], asyncio.Future[HistoryAnswer]] = {}
        self._cache: OrderedDict[tuple[Any, ...], tuple[float, HistoryAnswer]] = OrderedDict()
        self._background = Background()

    async def start(self, nc: Client, subjects: Subjects) -> None:
        self._nc = nc
        name = self.source.name
        self._sub = await nc.subscribe(subjects.history(name), queue=f"argus-history-{name}", cb=self._on_request)

    async def stop(self) -> None:
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()
            self._sub = None

    async def _on_request(self, msg: Any) -> None:
        if msg.reply:
            self._background.spawn(self._answer(msg.reply, msg.data))

    async def _answer(self, reply: str, payload: bytes) -> None:
        name = self.source.name
        chunk = self.cfg.chunk_items
        try:
            try:
                req = _dec.decode(payload)
                query = parse_query(req, self.cfg.max_items)
            except (msgspec.MsgspecError, InvalidHistoryRequest) as e:
                raise _Failure(ErrorCode.INVALID_MESSAGE, f"bad history request: {e}"[:300]) from None
            if req.chunk > 0:
                chunk = min(chunk, req.chunk)
            state, why = self.health()
            if state == "down":
                raise _Failure(ErrorCode.UNAVAILABLE, f"{name} is down{': ' + why if why else ''}")
            answer = await self._fetch(query)
        except _Failure as f:
            self.requests.labels("invalid" if f.code == ErrorCode.INVALID_MESSAGE else "unavailable").inc()
            await self._send(reply, HistoryChunk(index=0, last=True, source=name, code=f.code, reason=f.reason))
            return
        self.requests.labels("answered").inc()
        events = answer.events
        for ev in events:
            if not ev.source:
                ev.source = name  # as the runner stamps live events
        parts = [events[i : i + chunk] for i in range(0, len(events), chunk)] or [[]]
        for i, part in enumerate(parts):
            await self._send(
                reply,
                HistoryChunk(
                    index=i,
                    last=i == len(parts) - 1,
                    source=name,
                    adjust=answer.adjust,  # type: ignore[arg-type]
                    adjust_source=answer.adjust_source,
                    more=answer.more,
                    total=len(events),
                    events=part,
                ),
            )

    async def _send(self, reply: str, chunk: HistoryChunk) -> None:
        if self._nc is None:
            return
        with contextlib.suppress(Exception):  # the asker went away, or NATS did: nothing to tell
            await self._nc.publish(reply, encode_msgpack(chunk))

    # one upstream call per distinct request, reused while fresh ----------------------------
    async def _fetch(self, query: HistoryQuery) -> HistoryAnswer:
        key = (query.kind, query.symbols, query.period, query.start, query.end, query.day, query.limit, query.adjust)
        now = time.monotonic()
        hit = self._cache.get(key)
        if hit is not None and hit[0] > now:
            self._cache.move_to_end(key)
            return hit[1]
        fut = self._inflight.get(key)
        if fut is None:
            fut = self._inflight[key] = asyncio.ensure_future(self._call(key, query))
            fut.add_done_callback(lambda _: self._inflight.pop(key, None))
        try:
            return await asyncio.shield(fut)
        except HistoryUnavailable as e:
            raise _Failure(ErrorCode.UNAVAILABLE, e.reason) from None

    async def _call(self, key: tuple[Any, ...], query: HistoryQuery) -> HistoryAnswer:
        timeout = self.cfg.source_timeout
        async with self._slots:
            self.upstream_calls.inc()
            try:
                async with asyncio.timeout(timeout):
                    answer = await self.source.history(query)
            except TimeoutError:
                raise HistoryUnavailable(f"no answer from {self.source.name}'s upstream within {timeout:g}s") from None
            except HistoryUnavailable:
                raise
            except Exception as e:
                log.exception("source history failed", extra={"kind": query.kind, "symbol": query.symbol})
                raise HistoryUnavailable(f"{self.source.name} failed to answer: {type(e).__name__}") from None
        ttl = self.cfg.quote_ttl if query.kind == "quote" else self.cfg.cache_ttl
        if ttl > 0:
            self._cache[key] = (time.monotonic() + ttl, answer)
            while len(self._cache) > self.cfg.cache_entries:
                self._cache.popitem(last=False)
        return answer
