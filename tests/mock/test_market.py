"""The simulated market behaves like one: consistent books, volumes, bars, and repeatable seeds."""

from __future__ import annotations

import asyncio
from datetime import datetime

from argus_ingestor import WantedSet
from argus_ingestor_mock.market import Instrument, base_price
from argus_ingestor_mock.schedule import is_open
from argus_ingestor_mock.source import MockSource
from argus_protocol import BEIJING, Stream

T0 = int(datetime(2026, 11, 23, 10, 0, tzinfo=BEIJING).timestamp() * 1000)


def test_random_walk_is_consistent_over_many_steps() -> None:
    inst = Instrument("000001.SZ", seed=7)
    last_volume, last_amount = 0, 0.0
    for i in range(2000):
        now = T0 + i * 1000
        p = inst.step(now)
        q = inst.quote(f"t{i}")
        assert q.low <= q.price <= q.high
        assert round(q.prev_close * 0.9, 2) <= q.price <= round(q.prev_close * 1.1, 2)  # daily limit, on the tick
        assert q.volume == last_volume + sum(t.volume for t in p.trades)
        assert abs(q.amount - (last_amount + sum(t.price * t.volume for t in p.trades))) < 0.05
        assert all(t.volume % 100 == 0 and t.side in ("B", "S") for t in p.trades)
        assert q.bid_prices == sorted(q.bid_prices, reverse=True) and q.ask_prices == sorted(q.ask_prices)
        assert q.bid_prices[0] < q.ask_prices[0] and round(q.ask_prices[0] - q.bid_prices[0], 2) == 0.01
        assert q.bid_prices[0] <= q.price <= q.ask_prices[0]
        assert len(q.bid_volumes) == len(q.ask_volumes) == 5 and min(q.bid_volumes + q.ask_volumes) > 0
        last_volume, last_amount = q.volume, q.amount
    ids = [int(t.trade_id) for t in inst.step(T0 + 3_000_000).trades]
    assert ids == sorted(ids)


def test_same_seed_same_prices_other_seed_other_prices() -> None:
    def path(seed: int) -> list[float]:
        inst = Instrument("600000.SH", seed=seed)
        return [inst.step(T0 + i * 1000).close for i in range(50)]

    assert path(1) == path(1)
    assert path(1) != path(2)
    assert base_price("300750.SZ") == base_price("300750.SZ") > 0


def test_schedule_cn_follows_the_a_share_sessions() -> None:
    def at(text: str) -> float:
        return datetime.fromisoformat(text).replace(tzinfo=BEIJING).timestamp()

    assert is_open("always", at("2026-11-22 03:00:00"))  # Sunday night: still trading by default
    assert not is_open("cn", at("2026-11-23 09:29:59"))
    assert is_open("cn", at("2026-11-23 09:30:00"))
    assert is_open("cn", at("2026-11-23 11:29:59"))
    assert not is_open("cn", at("2026-11-23 12:00:00"))  # lunch
    assert is_open("cn", at("2026-11-23 14:59:59"))
    assert not is_open("cn", at("2026-11-23 15:00:00"))
    assert not is_open("cn", at("2026-11-22 10:00:00"))  # Sunday


class Ctx:
    name = "mock"

    def __init__(self) -> None:
        self.statuses: list[tuple[str, str | None]] = []

    def status(self, state: str, *, symbol=None, reason=None, unsupported=None) -> None:  # type: ignore[no-untyped-def]
        self.statuses.append((state, reason))

    def count_error(self, kind: str) -> None:
        pass


async def collect(src: MockSource, seconds: float) -> list:
    out = []

    async def run() -> None:
        async for batch in src.events():
            out.extend(batch)

    task = asyncio.create_task(run())
    await asyncio.sleep(seconds)
    await src.stop()
    await asyncio.wait_for(task, 2)
    return out


async def test_source_publishes_quotes_for_the_universe_and_wanted_streams_only() -> None:
    src = MockSource({"rate": 20, "universe": 3, "seed": 1})
    ctx = Ctx()
    await src.start(ctx)
    src.want(WantedSet([Stream("trade", "300750.SZ"), Stream("kline", "000001.SZ", "5m"), Stream("tick", "000002.SZ")]))
    events = await collect(src, 0.6)
    kinds = {(e.__struct_config__.tag, e.symbol) for e in events}
    for s in ("000001.SZ", "000002.SZ", "000003.SZ", "600000.SH"):
        assert ("quote", s) in kinds  # always-on
    assert ("trade", "300750.SZ") in kinds and ("quote", "300750.SZ") not in kinds
    assert ("tick", "000002.SZ") in kinds and ("trade", "000002.SZ") not in kinds
    assert {e.kline.period for e in events if e.__struct_config__.tag == "kline"} == {"5m"}
    assert ("quote", "000004.SZ") not in kinds
    assert ctx.statuses == [("live", None)]
    assert all(e.source == "mock" for e in events)


async def test_schedule_cn_reports_closed_and_publishes_nothing_outside_sessions() -> None:
    sunday = datetime(2026, 11, 22, 10, 0, tzinfo=BEIJING).timestamp()
    src = MockSource({"rate": 20, "universe": 2, "schedule": "cn"}, clock=lambda: sunday)
    ctx = Ctx()
    await src.start(ctx)
    assert await collect(src, 0.3) == []
    assert ctx.statuses[0][0] == "closed" and "session" in (ctx.statuses[0][1] or "")


def test_bad_options_are_refused() -> None:
    import pytest

    for bad in ({"rate": 0}, {"universe": -1}, {"schedule": "weekends"}, {"rate": "fast"}):
        with pytest.raises(ValueError):
            MockSource(bad)
