"""GET /v1/bars, /v1/ticks, /v1/trades against a real gateway, nats-server and the mock ingestor:
retention first, the older part from the mock over argus.history.mock, paging, and the seam with
the WebSocket replay."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from httpkit import Http, private_prefix
from wsclient import Client

SYMBOL = "000001.SZ"  # always on in the mock: seeded at start (60 bars a period, 80 trades)


def stack_config(tmp_path: Path, **sections: Any) -> tuple[Path, str]:
    prefix = private_prefix()
    cfg: dict[str, Any] = {"nats": {"subject_prefix": prefix}, "datasource": {"status_interval": 1}}
    for k, v in sections.items():
        cfg.setdefault(k, {}).update(v)
    path = tmp_path / f"{prefix}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path, prefix


@pytest.fixture
async def mock_http(gateway, ingestor, tmp_path: Path):  # type: ignore[no-untyped-def]
    path, _ = stack_config(tmp_path)
    port, _ = gateway("--config", str(path))
    ingestor(
        "mock", "--config", str(path), "--seed", "7", "--universe", "0", "--history", "60", "--history-trades", "80"
    )
    http = Http(port)
    # the mock's past is in retention and its STATUS heard: bars answer from both
    await http.until(
        "/v1/bars",
        lambda s, d: s == 200 and d["sources"] == ["mock", "retention"],
        symbol=SYMBOL,
        period="1d",
        limit=62,
    )
    yield http, port
    await http.close()


def _day(iso: str) -> date:
    return datetime.fromisoformat(iso).date()


async def test_bars_page_past_retention_from_the_source_without_seam(mock_http) -> None:
    http, port = mock_http
    page = await http.ok("/v1/bars", symbol=SYMBOL, period="1d", limit=150)
    assert page["count"] == 150 and page["sources"] == ["mock", "retention"], page
    assert page["adjust"] == "none" and page["complete"] is True and page["more"] is True
    bars = page["bars"]
    times = [b["open_time"] for b in bars]
    assert times == sorted(times) and len(set(times)) == 150
    assert all(b["closed"] for b in bars[:-1]) and not bars[-1]["closed"]  # today's bar forming, last
    # the newest 61 are what retention holds: the same bars a subscriber's replay starts from
    c = await Client.connect(port)
    try:
        await c.subscribe([SYMBOL], ["kline"], periods=["1d"], history=61)
        await c.expect("REPLAYED")
        replay = [m["data"]["kline"] for m in c.seen if m["type"] == "DATA" and m["data"].get("replay")]
    finally:
        await c.close()
    assert [b["open_time"] for b in replay] == times[-61:]
    assert [b for b in replay if b["closed"]] == [b for b in bars[-61:] if b["closed"]]
    # where the source's part meets retention, the older bar closes at the price the next one opens
    assert bars[-62]["close"] == bars[-61]["open"]
    # the next page continues right before the first one, and the same page asked again is the same
    nxt = page["next"]
    assert nxt and "end=" in nxt
    status, older, _ = await http.get(nxt)
    assert status == 200 and older["count"] == 150 and older["sources"] == ["mock"]
    assert older["bars"][-1]["open_time"] < times[0]
    assert (_day(times[0]) - _day(older["bars"][-1]["open_time"])).days <= 1  # the mock trades every day
    again = await http.ok("/v1/bars", symbol=SYMBOL, period="1d", limit=150)
    assert again["bars"][:-1] == bars[:-1]


async def test_bars_in_a_range_and_intraday(mock_http) -> None:
    http, _ = mock_http
    page = await http.ok("/v1/bars", symbol=SYMBOL, period="1d", limit=1000, start="2025-01-01", end="2025-01-31")
    days = [b["open_time"][:10] for b in page["bars"]]
    assert days[0] == "2025-01-01" and days[-1] == "2025-01-31" and len(days) == 31
    assert page["sources"] == ["mock"]
    five = await http.ok("/v1/bars", symbol=SYMBOL, period="5m", limit=100)
    assert five["count"] == 100
    starts = [datetime.fromisoformat(b["open_time"]) for b in five["bars"]]
    assert all(t.minute % 5 == 0 for t in starts)


async def test_ticks_today_from_retention_and_an_older_day_from_the_source(mock_http) -> None:
    http, _ = mock_http
    today = await http.ok("/v1/ticks", symbol=SYMBOL)
    assert today["sources"] == ["retention"] and today["complete"] and today["count"] > 0
    day = today["date"]
    assert all(t["time"][:10] == day for t in today["ticks"])
    older = await http.ok("/v1/ticks", symbol=SYMBOL, date="2026-01-05")
    assert older["sources"] == ["mock"] and older["date"] == "2026-01-05" and older["count"] == 1440
    assert all(t["closed"] for t in older["ticks"])


async def test_trades_newest_first_from_retention(mock_http) -> None:
    http, _ = mock_http
    page = await http.ok("/v1/trades", symbol=SYMBOL, limit=50)
    assert page["count"] == 50 and page["sources"] == ["retention"]
    ids = [int(t["trade_id"]) for t in page["trades"]]
    assert ids == sorted(ids)


async def test_bad_requests_get_the_error_envelope(mock_http) -> None:
    http, _ = mock_http
    for params, code in (
        ({"symbol": "nope"}, "INVALID_SYMBOL"),
        ({"symbol": SYMBOL, "period": "2h"}, "UNSUPPORTED_DATA_TYPE"),
        ({"symbol": SYMBOL, "limit": "100000"}, "INVALID_MESSAGE"),
        ({"symbol": SYMBOL, "adjust": "sideways"}, "INVALID_MESSAGE"),
        ({"symbol": SYMBOL, "limt": "5"}, "INVALID_MESSAGE"),
        ({"symbol": SYMBOL, "end": "yesterday"}, "INVALID_MESSAGE"),
    ):
        status, data, _ = await http.get("/v1/bars", **params)
        assert status == 400 and data["type"] == "ERROR" and data["data"]["code"] == code, (params, data)


async def test_newest_bars_over_http_are_the_replay_s_exactly(gateway, nats_url: str) -> None:
    """A chart that loads over HTTP and then subscribes has no seam: the same bars, the forming one too."""
    import nats
    from eventfactory import BarPlayer, unique_symbol

    port, _ = gateway()
    nc = await nats.connect(nats_url)
    http = Http(port)
    try:
        sym = unique_symbol("S")
        bars = BarPlayer(nc, "kline", sym, period="5m")
        for i in range(40):
            await bars.bar(f"2026-11-30T{9 + i * 5 // 60:02d}:{i * 5 % 60:02d}:00+08:00")
        await bars.bar("2026-11-30T12:20:00+08:00", versions=2, close=False)  # forming
        await nc.flush()
        page = await http.until(
            "/v1/bars", lambda s, d: s == 200 and d["count"] == 41, symbol=sym, period="5m", limit=41
        )
        assert page["sources"] == ["retention"] and not page["bars"][-1]["closed"]
        c = await Client.connect(port)
        try:
            await c.subscribe([sym], ["kline"], periods=["5m"], history=41)
            await c.expect("REPLAYED")
            replay = [m["data"]["kline"] for m in c.seen if m["type"] == "DATA" and m["data"].get("replay")]
            assert replay == page["bars"]
            # live continues from there: the forming bar's next version is the next DATA
            await bars.bar("2026-11-30T12:20:00+08:00", versions=1, close=True)
            live = (await c.data(1, symbol=sym))[0]["kline"]
            assert live["open_time"] == page["bars"][-1]["open_time"] and live["closed"]
        finally:
            await c.close()
    finally:
        await http.close()
        await nc.close()
