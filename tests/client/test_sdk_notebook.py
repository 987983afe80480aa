"""Jupyter-style use: the calling thread already runs an event loop (as a notebook kernel's does),
so asyncio.run() is refused; the blocking facade still subscribes, iterates and builds
DataFrames of bars and 分时 from `history`, then live updates."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import nats
import pandas as pd
import pytest
from argus_client import ArgusClient, BarSeries, Gap, KlineEvent, Replayed, TickEvent, to_dataframe
from eventfactory import BarPlayer, unique_symbol
from natsserver import sync_subscriptions

T0 = datetime(2026, 11, 30, 9, 30).astimezone()


def minute(i: int) -> str:
    return (T0 + timedelta(minutes=i)).isoformat(timespec="seconds")


async def play(url: str, sym: str, start: int, n: int, close_last: bool = True) -> None:
    nc = await nats.connect(url)
    bars, line = BarPlayer(nc, "kline", sym), BarPlayer(nc, "tick", sym)
    bars.seq = line.seq = start * 2
    for i in range(start, start + n):
        last = i == start + n - 1
        await bars.bar(minute(i), versions=2, close=close_last or not last)
        await line.bar(minute(i), versions=2, close=close_last or not last)
    await nc.flush()
    await asyncio.sleep(0.3)  # JetStream has stored what was published
    await nc.close()


def test_blocking_client_inside_a_running_loop_builds_frames_from_history_then_live(own_nats, gw) -> None:
    port = gw()
    sym = unique_symbol()
    asyncio.run(play(own_nats.url, sym, 0, 20, close_last=False))  # 19 finished bars + a forming one

    async def notebook_cell() -> tuple[pd.DataFrame, pd.DataFrame, list[object]]:
        assert asyncio.get_running_loop().is_running()
        probe = asyncio.sleep(0)
        with pytest.raises(RuntimeError):
            asyncio.run(probe)  # what fails in a notebook
        probe.close()
        with ArgusClient.sync(f"ws://127.0.0.1:{port}/") as c:
            reply = c.subscribe([sym], ["kline", "tick"], ["1m"], history=240)
            assert reply is not None and sorted(reply.added) == sorted([f"kline:{sym}:1m", f"tick:{sym}"])
            bars, line, seen = BarSeries(), BarSeries(), []
            replayed = 0
            for ev in c.events(timeout=5):
                seen.append(ev)
                bars.add(ev) if isinstance(ev, KlineEvent) else line.add(ev)
                replayed += isinstance(ev, Replayed)
                if replayed and len(bars) == 20 and len(line) == 20:
                    break
            # live: the forming bar closes and the next one starts, published while we iterate
            nc_done = asyncio.run_coroutine_threadsafe(live(own_nats.url, sym), c._loop)
            for ev in c.events(timeout=5):
                seen.append(ev)
                bars.add(ev) if isinstance(ev, KlineEvent) else line.add(ev)
                if len(bars) == 22 and len(line) == 22:
                    break
            nc_done.result(5)
            return bars.to_dataframe(), to_dataframe(e for e in seen if isinstance(e, TickEvent)), seen

    kdf, tdf, seen = asyncio.run(notebook_cell())
    assert list(kdf.columns) == ["open", "high", "low", "close", "volume", "amount", "closed"]
    assert len(kdf) == 22 and kdf.index.is_monotonic_increasing and str(kdf.index.tz) != "None"
    assert kdf.index[0] == pd.Timestamp(minute(0)) and kdf.index[-1] == pd.Timestamp(minute(21))
    assert kdf["closed"].tolist() == [True] * 21 + [False]
    assert len(tdf) == 22 and list(tdf.columns) == ["price", "avg_price", "volume", "amount", "closed"]
    # one row per bar: its newest version (replayed from history, then the live closing one)
    newest = {e.kline.open_time: e for e in seen if isinstance(e, KlineEvent)}
    assert [kdf.loc[pd.Timestamp(t), "close"] for t in sorted(newest)] == [
        newest[t].kline.close for t in sorted(newest)
    ]
    assert not [e for e in seen if isinstance(e, Gap)]
    assert any(isinstance(e, KlineEvent) and e.replay for e in seen)
    assert any(isinstance(e, KlineEvent) and not e.replay for e in seen)


async def live(url: str, sym: str) -> None:
    """The forming minute 19 closes, then 20 closes and 21 starts forming."""
    nc = await nats.connect(url)
    await sync_subscriptions(nc)
    for kind in ("kline", "tick"):
        p = BarPlayer(nc, kind, sym)
        p.seq = 40  # where play() left both streams
        await p.bar(minute(19), versions=1)
        await p.bar(minute(20), versions=2)
        await p.bar(minute(21), versions=1, close=False)
    await nc.flush()
    await nc.close()
