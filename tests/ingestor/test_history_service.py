"""The runner's side of argus.history.<source> on a real nats-server: identical requests share one
upstream call while in flight, answers are reused for the TTL, big answers come in bounded chunks, a
source that is down is not asked, a slow upstream is cut off at the timeout, bad requests are refused."""

from __future__ import annotations

import asyncio
import itertools
import os
from collections.abc import AsyncIterator

import msgspec
import nats
import pytest
from argus_ingestor import HistoryAnswer, HistoryQuery, Runner, Source, WantedSet
from argus_protocol import Event, HistoryChunk, HistoryRequest, Kline, KlineEvent, Subjects, encode_msgpack
from argus_service.config import Config
from prometheus_client import CollectorRegistry

_n = itertools.count()


class SlowBars(Source):
    """A source whose upstream takes `delay` seconds and returns `n` bars; it counts the calls."""

    name = "slowbars"

    def __init__(self, delay: float = 0.3, n: int = 1200) -> None:
        super().__init__({})
        self.delay, self.n, self.calls = delay, n, 0
        self.stopped = asyncio.Event()

    async def start(self, ctx) -> None:  # type: ignore[no-untyped-def]
        self.ctx = ctx

    async def stop(self) -> None:
        self.stopped.set()

    def want(self, wanted: WantedSet) -> None:
        pass

    async def events(self) -> AsyncIterator[list[Event]]:
        await self.stopped.wait()
        return
        yield []

    async def history(self, query: HistoryQuery) -> HistoryAnswer:
        self.calls += 1
        await asyncio.sleep(self.delay)
        bars: list[Event] = [
            KlineEvent(
                symbol=query.symbol,
                kline=Kline(
                    period="1d",
                    open_time=f"2020-01-01T00:00:{i % 60:02d}+08:00",
                    open=1,
                    high=1,
                    low=1,
                    close=1,
                    volume=i,
                    amount=0,
                    closed=True,
                ),
            )
            for i in range(self.n)
        ]
        return HistoryAnswer(bars[-query.limit :])


async def ask(nc, subject: str, req: HistoryRequest | bytes, timeout: float = 5.0) -> list[HistoryChunk]:  # type: ignore[no-untyped-def]
    inbox = nc.new_inbox()
    chunks: list[HistoryChunk] = []
    done = asyncio.Event()

    async def on(msg) -> None:  # type: ignore[no-untyped-def]
        chunks.append(msgspec.msgpack.decode(msg.data, type=HistoryChunk))
        if chunks[-1].last:
            done.set()

    sub = await nc.subscribe(inbox, cb=on)
    await nc.publish(subject, req if isinstance(req, bytes) else encode_msgpack(req), reply=inbox)
    await asyncio.wait_for(done.wait(), timeout)
    await sub.unsubscribe()
    return sorted(chunks, key=lambda c: c.index)


@pytest.fixture
async def running(nats_url: str):  # type: ignore[no-untyped-def]
    started = []

    async def start(source: SlowBars, **history: float) -> tuple[Runner, str]:
        cfg = Config()
        cfg.nats.url = nats_url
        cfg.nats.subject_prefix = f"hs{os.getpid()}x{next(_n)}"
        cfg.retention.enabled = False
        for k, v in history.items():
            setattr(cfg.history, k, v)
        runner = Runner(source, cfg, CollectorRegistry())
        stop = asyncio.Event()
        task = asyncio.create_task(runner.run(stop))
        started.append((stop, task))
        for _ in range(100):
            if runner.ready()[0]:
                break
            await asyncio.sleep(0.05)
        return runner, Subjects(cfg.nats.subject_prefix).history(source.name)

    yield start
    for stop, task in started:
        stop.set()
        await asyncio.wait_for(task, 10)


REQ = HistoryRequest(kind="kline", symbols=["000001.SZ"], period="1d", limit=1200)


async def test_identical_requests_share_one_call_and_the_answer_is_reused(running, nats_url: str) -> None:
    source = SlowBars()
    _, subject = await running(source, cache_ttl=1.0, chunk_items=500)
    nc = await nats.connect(nats_url)
    try:
        answers = await asyncio.gather(*(ask(nc, subject, REQ) for _ in range(5)))
        assert source.calls == 1
        for chunks in answers:
            assert [len(c.events) for c in chunks] == [500, 500, 200] and chunks[-1].last and not chunks[0].last
            assert all(c.total == 1200 and c.source == "slowbars" for c in chunks)
            assert all(e.source == "slowbars" for c in chunks for e in c.events)  # stamped like live events
        await ask(nc, subject, REQ)
        assert source.calls == 1  # within the TTL
        await ask(nc, subject, msgspec.structs.replace(REQ, limit=10))
        assert source.calls == 2  # another request is another call
        await asyncio.sleep(1.2)
        await ask(nc, subject, REQ)
        assert source.calls == 3  # expired
        small = await ask(nc, subject, msgspec.structs.replace(REQ, chunk=100))
        assert len(small) == 12  # the asker may ask for smaller chunks
    finally:
        await nc.close()


async def test_down_slow_and_bad_requests_are_answered_quickly(running, nats_url: str) -> None:
    source = SlowBars(delay=3.0)
    runner, subject = await running(source, source_timeout=0.5)
    nc = await nats.connect(nats_url)
    try:
        [slow] = await ask(nc, subject, REQ)
        assert slow.code == "UNAVAILABLE" and "within 0.5s" in slow.reason
        [bad] = await ask(nc, subject, HistoryRequest(kind="kline", symbols=["nope"], period="1d"))
        assert bad.code == "INVALID_MESSAGE" and "nope" in bad.reason
        [bad] = await ask(nc, subject, HistoryRequest(kind="kline", symbols=["000001.SZ"], period="7m"))
        assert bad.code == "INVALID_MESSAGE" and "period" in bad.reason
        [bad] = await ask(nc, subject, b"\xc1not msgpack")
        assert bad.code == "INVALID_MESSAGE"
        calls = source.calls
        runner.status("down", reason="upstream unreachable")
        [down] = await ask(nc, subject, msgspec.structs.replace(REQ, limit=5), timeout=1.0)
        assert down.code == "UNAVAILABLE" and down.reason == "slowbars is down: upstream unreachable"
        assert source.calls == calls  # not hammered
    finally:
        await nc.close()


async def test_a_source_without_history_says_so(running, nats_url: str) -> None:
    class Plain(SlowBars):
        history = Source.history  # type: ignore[assignment]

    _, subject = await running(Plain())
    nc = await nats.connect(nats_url)
    try:
        [c] = await ask(nc, subject, REQ)
        assert c.code == "UNAVAILABLE" and c.reason == "this source keeps no history"
    finally:
        await nc.close()
