"""The TDX source driven by the real Runner, publishing to a real nats-server."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
from collections.abc import AsyncIterator

import msgspec
import nats
import pytest
from argus_ingestor import Runner
from argus_ingestor_tdx.source import TdxSource
from argus_protocol import SourceStatus, Stream, Subjects, decode_event
from argus_service.config import Config
from fixtures_tdx import at
from natsserver import sync_subscriptions
from prometheus_client import CollectorRegistry
from sourcekit import FAST, Clock

_n = itertools.count()


class Started:
    """A runner not yet running: subscribe to `subjects` first, then `go()`, so nothing is missed."""

    def __init__(self, runner: Runner, subjects: Subjects) -> None:
        self.runner, self.subjects = runner, subjects
        self.stop = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    def go(self) -> None:
        self.task = asyncio.create_task(self.runner.run(self.stop))


@pytest.fixture
async def run_tdx(nats_url: str) -> AsyncIterator:
    started: list[Started] = []

    async def start(hosts: list[str], always_on: list[Stream]) -> Started:
        cfg = Config()
        cfg.nats.url = nats_url
        cfg.nats.subject_prefix = f"tdx{os.getpid()}x{next(_n)}"  # private subjects on the shared server
        cfg.retention.enabled = False
        cfg.datasource.status_interval = 0.3
        source = TdxSource({**FAST, "hosts": hosts}, clock=Clock(at("10:00").replace(second=30)))
        runner = Runner(source, cfg, CollectorRegistry(), always_on=always_on)
        s = Started(runner, Subjects(cfg.nats.subject_prefix))
        started.append(s)
        return s

    yield start
    for s in started:
        s.stop.set()
        if s.task is not None:
            await asyncio.wait_for(s.task, 10)


async def test_all_four_types_reach_nats_stamped_by_the_runner(tdx_server, run_tdx, nats_url: str) -> None:
    server = tdx_server()
    streams = [
        Stream("quote", "000001.SZ"),
        Stream("tick", "000001.SZ"),
        Stream("trade", "000001.SZ"),
        Stream("kline", "000001.SZ", "5m"),
    ]
    nc = await nats.connect(nats_url)
    got: dict[str, list] = {}
    all_four = asyncio.Event()

    async def on_msg(msg) -> None:  # type: ignore[no-untyped-def]
        ev = decode_event(msg.data)
        got.setdefault(ev.__struct_config__.tag, []).append(ev)
        if len(got) == 4:
            all_four.set()

    try:
        s = await run_tdx([f"127.0.0.1:{server.port}"], streams)
        for stream in streams:
            await nc.subscribe(s.subjects.data(stream), cb=on_msg)
        await sync_subscriptions(nc)
        s.go()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(all_four.wait(), 10)
        assert set(got) == {"quote", "tick", "trade", "kline"}, got.keys()
        for events in got.values():
            for ev in events:
                assert ev.source == "tdx" and ev.seq >= 1 and ev.ts > 0
        assert got["kline"][0].kline.period == "5m"
    finally:
        await nc.close()


async def test_status_on_nats_goes_stale_then_down_naming_the_host(run_tdx, nats_url: str, tdx_server) -> None:
    dead = tdx_server()
    dead.refuse_login = True
    nc = await nats.connect(nats_url)
    states: list[SourceStatus] = []
    went_down = asyncio.Event()

    async def on_status(msg) -> None:  # type: ignore[no-untyped-def]
        states.append(msgspec.msgpack.decode(msg.data, type=SourceStatus))
        if states[-1].state == "down":
            went_down.set()

    try:
        s = await run_tdx([f"127.0.0.1:{dead.port}"], [Stream("quote", "600000.SH")])
        await nc.subscribe(s.subjects.status("tdx"), cb=on_status)
        await sync_subscriptions(nc)
        s.go()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(went_down.wait(), 10)
        down = [st for st in states if st.state == "down"]
        assert down, [(st.state, st.reason) for st in states]
        assert f"127.0.0.1:{dead.port}" in (down[-1].reason or "") and "connection closed" in (down[-1].reason or "")
    finally:
        await nc.close()
