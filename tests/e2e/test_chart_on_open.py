"""A chart opened right after the stack starts is full: the day's 分时 and hundreds of bars come
with SUBSCRIBE, from the mock's seeded past through JetStream and the gateway."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta

from argus_protocol import BEIJING
from wsclient import Client


def minutes(start: str, end: str) -> int:
    return int((datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds() // 60)


async def test_a_chart_opened_at_start_gets_the_day_line_and_bars(own_nats, gateway, ingestor) -> None:
    ingestor("mock", "--universe", "3", "--seed", "4", url=own_nats.url)
    port, _ = gateway(url=own_nats.url)
    c = await Client.connect(port)
    await c.send("SUBSCRIBE", {"symbols": ["000002.SZ"], "data_types": ["tick"], "history": "day"}, id="line")
    await c.expect("REPLAYED", timeout=20)
    line = [m["data"]["tick"] for m in c.seen if m["type"] == "DATA" and m["data"]["type"] == "tick"]
    now = datetime.now(BEIJING)
    day_start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    # the mock trades around the clock: the day began at 00:00 Beijing, one point per minute since
    assert line[0]["time"] == day_start.isoformat(timespec="seconds")
    assert abs(len(line) - (minutes(day_start.isoformat(), now.isoformat()) + 1)) <= 1
    assert all(minutes(a["time"], b["time"]) == 1 for a, b in itertools.pairwise(line))
    assert all(p["closed"] for p in line[:-1]) and not line[-1]["closed"]
    await c.send(
        "SUBSCRIBE",
        {"symbols": ["000002.SZ"], "data_types": ["kline"], "periods": ["1m", "1d"], "history": 240},
        id="k",
    )
    replayed = await c.expect("REPLAYED", timeout=20)
    assert all(s["recovered"] for s in replayed["data"]["streams"].values())
    bars = [m["data"]["kline"] for m in c.seen if m["type"] == "DATA" and m["data"]["type"] == "kline"]
    ones = [b for b in bars if b["period"] == "1m"]
    days = [b for b in bars if b["period"] == "1d"]
    assert len(ones) == 240 and len(days) == 240
    assert all(minutes(a["open_time"], b["open_time"]) == 1 for a, b in itertools.pairwise(ones))
    assert not ones[-1]["closed"] and not days[-1]["closed"] and all(b["closed"] for b in ones[:-1] + days[:-1])
    assert days[-1]["open_time"] == day_start.isoformat(timespec="seconds")
    assert datetime.fromisoformat(days[0]["open_time"]) < day_start - timedelta(days=200)
    # the day's bar and the 分时 agree with the newest 1m bar: one walk behind all of them
    assert days[-1]["close"] == ones[-1]["close"] == line[-1]["price"] or ones[-1]["open_time"] != line[-1]["time"]
    assert days[-1]["high"] >= max(b["high"] for b in ones if b["open_time"] >= day_start.isoformat())
    await c.close()
