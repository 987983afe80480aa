"""The QMT source on the fake xtdata, driven by the real Runner, publishing to a real nats-server."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
from collections.abc import AsyncIterator
from typing import Any

import msgspec
import nats
import pytest
from argus_ingestor import Runner
from argus_ingestor_qmt.source import QmtSource
from argus_protocol import SourceStatus, Stream, Subjects, decode_event
from argus_service.config import Config
from natsserver import sync_subscriptions
from prometheus_client import CollectorRegistry
from qmt_fake_xtdata import FakeXtData, bar, l2, ms, tick
from qmt_kit import DAY, FAST, Clock

_n = itertools.count()
T0 = ms(DAY, "10:00:03")


class Started:
    """A runner not yet running: subscribe first, then `go()`, so nothing is missed."""

    def __init__(self, runner: Runner, subjects: Subjects) -> None:
        self.runner, self.subjects = runner, subjects
        self.stop = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    def go(self) -> None:
        self.task = asyncio.create_task(self.runner.run(self.stop))


@pytest.fixture
async def run_qmt(nats_url: str) -> AsyncIterator:
    started: list[Started] = []

    async def start(fake: FakeXtData, always_on: list[Stream], **options: Any) -> Started:
        cfg = Config()
        cfg.nats.url = nats_url
        cfg.nats.subject_prefix = f"qmt{os.getpid()}x{next(_n)}"  # private subjects on the shared server
        cfg.retention.enabled = False
        cfg.datasource.status_interval = 0.3
        source = QmtSource({**FAST, **options}, xtdata=fake, clock=Clock())
        runner = Runner(source, cfg, CollectorRegistry(), always_on=always_on)
        s = Started(runner, Subjects(cfg.nats.subject_prefix))
        started.append(s)
        return s

    yield start
    for s in started:
        s.stop.set()
        if s.task is not None:
            await asyncio.wait_for(s.task, 10)


async def test_all_four_types_reach_nats_stamped_by_the_runner(fake_xt: FakeXtData, run_qmt, nats_url: str) -> None:
    fake_xt.full_tick["000001.SZ"] = tick(T0, 10.5)
    fake_xt.history[("000001.SZ", "1m")] = [bar(ms(DAY, "10:00:00"), 10.4, 10.5, 10.4, 10.5, 100)]
    streams = [
        Stream("quote", "000001.SZ"),
        Stream("tick", "000001.SZ"),
        Stream("trade", "000001.SZ"),
        Stream("kline", "000001.SZ", "1m"),
        Stream("kline", "000001.SZ", "15m"),
    ]
    nc = await nats.connect(nats_url)
    got: dict[str, list] = {}
    ready = asyncio.Event()

    async def on_msg(msg) -> None:  # type: ignore[no-untyped-def]
        ev = decode_event(msg.data)
        got.setdefault(ev.__struct_config__.tag, []).append(ev)
        if len(got) == 4 and len(got["trade"]) >= 2:
            ready.set()

    try:
        s = await run_qmt(fake_xt, streams, level2=True)
        for stream in streams:
            await nc.subscribe(s.subjects.data(stream), cb=on_msg)
        await sync_subscriptions(nc)
        s.go()
        source: QmtSource = s.runner.source  # type: ignore[assignment]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while not (source.connected and set(source.subs) == set(source._desired())):
            assert loop.time() < deadline, fake_xt.calls
            await asyncio.sleep(0.02)
        fake_xt.push_l2("000001.SZ", [l2(T0, 10.5, 300, 1, 1), l2(T0, 0.0, 100, 3, 2), l2(T0, 10.49, 200, 2, 3)])
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(ready.wait(), 10)
        assert set(got) == {"quote", "tick", "trade", "kline"}, got.keys()
        for events in got.values():
            for ev in events:
                assert ev.source == "qmt" and ev.seq >= 1 and ev.ts > 0
        assert got["quote"][0].quote.volume == 75861300 and got["quote"][0].quote.timestamp.endswith("+08:00")
        assert {k.kline.period for k in got["kline"]} == {"1m", "15m"}
        assert [t.trade.trade_id for t in got["trade"]] == ["20250815-1", "20250815-3"]  # the cancel is gone
        assert [t.seq for t in got["trade"]] == [1, 2]
    finally:
        await nc.close()


async def test_status_on_nats_down_with_reason_then_live_with_trade_unsupported(
    fake_xt: FakeXtData, run_qmt, nats_url: str
) -> None:
    fake_xt.running = False
    nc = await nats.connect(nats_url)
    states: list[SourceStatus] = []
    live = asyncio.Event()

    async def on_status(msg) -> None:  # type: ignore[no-untyped-def]
        states.append(msgspec.msgpack.decode(msg.data, type=SourceStatus))
        if states[-1].state == "live" and states[-1].symbol is None:
            live.set()

    try:
        s = await run_qmt(fake_xt, [Stream("quote", "600000.SH")])
        await nc.subscribe(s.subjects.status("qmt"), cb=on_status)
        await sync_subscriptions(nc)
        s.go()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while not any(st.state == "down" and "无法连接" in (st.reason or "") for st in states):
            assert loop.time() < deadline, [(st.state, st.reason) for st in states]
            await asyncio.sleep(0.05)
        fake_xt.revive()
        await asyncio.wait_for(live.wait(), 10)
        assert states[-1].unsupported == ["trade"]
    finally:
        await nc.close()
