"""History from TDX end to end: fake TDX server (real pytdx wire) → argus-ingestor-tdx → nats-server →
argus-gateway → HTTP. Bars paged back past one 800-bar page, 前复权/后复权 from the 除权除息
records fed to the fake, a past day's 分时, a day's transactions paged back, and a source that is
down not asked."""

from __future__ import annotations

import sys
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import yaml
from argus_calendar import Calendar
from argus_protocol import BEIJING
from fake_tdx import FakeBar, FakeTrade, FakeXdxr
from fixtures_tdx import PING_AN, standard_market
from stack import BIN

sys.path.insert(0, str(Path(__file__).parent.parent / "http"))
from httpkit import Http, private_prefix

pytestmark = pytest.mark.skipif(not (BIN / "argus-gateway").exists(), reason="needs argus-gateway installed")

DAYS = 1200
EVENTS = [FakeXdxr("2025-06-10", cash=1.0), FakeXdxr("2026-06-15", cash=2.5, bonus=3.0)]


def deep_market():  # type: ignore[no-untyped-def]
    """000001.SZ with 1,200 daily bars up to the last trading day, two ex-dates and 2,500 transactions today."""
    m = standard_market()
    cal = Calendar.for_market("SH")
    day = cal.previous_trading_day(datetime.now(BEIJING).date() + timedelta(days=1))
    days = []
    while len(days) < DAYS:
        days.append(day)
        day = cal.previous_trading_day(day)
    days.reverse()
    bars = []
    for i, d in enumerate(days):
        o = round(20 + (i % 50) * 0.1, 2)
        c = round(o + 0.05, 2)
        bars.append(
            FakeBar(
                datetime(d.year, d.month, d.day, 15, 0, tzinfo=BEIJING),
                o,
                c,
                c + 0.1,
                o - 0.1,
                1000 + i,
                (1000 + i) * 100 * c,
            )
        )
    m.bars[(*PING_AN, 9)] = bars
    m.xdxr[PING_AN] = list(EVENTS)
    m.history_minutes[(*PING_AN, 20251110)] = [(12.0 + 0.01 * (i % 30), 50 + i) for i in range(240)]
    m.transactions[PING_AN] = [
        FakeTrade(f"{9 + (30 + i // 100) // 60:02d}:{(30 + i // 100) % 60:02d}", 10.5, 1 + i % 9, 1, i % 2)
        for i in range(2500)
    ]
    return m


@pytest.fixture
async def tdx_http(tdx_server, ingestor, gateway, tmp_path: Path):  # type: ignore[no-untyped-def]
    server = tdx_server(deep_market())
    path = tmp_path / "tdx.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "nats": {"subject_prefix": private_prefix()},
                "datasource": {
                    "status_interval": 1,
                    "options": {"tdx": {"timeout": 3, "down_after": 1, "backoff_initial": 0.2, "backoff_max": 0.5}},
                },
            }
        )
    )
    port, _ = gateway("--config", str(path))
    ingestor("tdx", "--config", str(path), "--hosts", f"127.0.0.1:{server.port}", "--schedule", "always")
    http = Http(port)
    await http.until(
        "/v1/bars", lambda s, d: s == 200 and d["sources"] == ["tdx"], symbol="000001.SZ", period="1d", limit=5
    )
    yield http, server
    await http.close()


def _raw(server) -> dict[str, FakeBar]:  # type: ignore[no-untyped-def]
    return {b.end.date().isoformat(): b for b in server.market.bars[(*PING_AN, 9)]}


async def test_bars_page_back_past_one_tdx_page(tdx_http) -> None:
    http, server = tdx_http
    before = server.requests["bars"]
    page = await http.ok("/v1/bars", symbol="000001.SZ", period="1d", limit=1000)
    assert page["count"] == 1000 and page["sources"] == ["tdx"] and page["more"] is True
    assert server.requests["bars"] - before >= 2  # 800 a page: two pages for 1,000 bars
    raw = _raw(server)
    newest = list(raw)[-1000:]
    assert [b["open_time"][:10] for b in page["bars"]] == newest
    b = page["bars"][0]
    assert (b["open"], b["close"], b["volume"]) == (
        raw[newest[0]].open,
        raw[newest[0]].close,
        round(raw[newest[0]].vol) * 100,
    )
    status, older, _ = await http.get(page["next"])
    assert status == 200 and older["count"] == DAYS - 1000 and older["more"] is False
    assert [x["open_time"][:10] for x in older["bars"]] == list(raw)[: DAYS - 1000]


async def test_qfq_and_hfq_from_the_xdxr_records(tdx_http) -> None:
    http, server = tdx_http
    raw = _raw(server)
    days = list(raw)

    def ratio(ex: FakeXdxr) -> float:
        prev = raw[max(d for d in days if d < ex.day)].close
        return (prev - ex.cash / 10) / (1 + ex.bonus / 10) / prev

    r1, r2 = ratio(EVENTS[0]), ratio(EVENTS[1])
    for adjust in ("qfq", "hfq"):
        page = await http.ok("/v1/bars", symbol="000001.SZ", period="1d", limit=1000, adjust=adjust)
        assert page["adjust"] == adjust and "get_xdxr_info" in page["adjust_source"] and page["sources"] == ["tdx"]
        for bar in page["bars"]:
            day = bar["open_time"][:10]
            if adjust == "qfq":
                f = (r1 if day < EVENTS[0].day else 1.0) * (r2 if day < EVENTS[1].day else 1.0)
            else:
                f = (1 / r1 if day >= EVENTS[0].day else 1.0) * (1 / r2 if day >= EVENTS[1].day else 1.0)
            assert bar["close"] == pytest.approx(raw[day].close * f, abs=0.0015), (adjust, day)
            assert bar["volume"] == round(raw[day].vol) * 100  # volumes as traded
    plain = await http.ok("/v1/bars", symbol="000001.SZ", period="1d", limit=3)
    assert plain["adjust"] == "none" and plain["adjust_source"] == ""
    assert [b["close"] for b in plain["bars"]] == [raw[d].close for d in days[-3:]]


async def test_a_past_day_s_ticks_and_today_s_transactions(tdx_http) -> None:
    http, server = tdx_http
    day = await http.ok("/v1/ticks", symbol="000001.SZ", date="2025-11-10")
    assert day["sources"] == ["tdx"] and day["count"] == 240 and day["date"] == "2025-11-10"
    assert day["ticks"][0]["time"] == "2025-11-10T09:30:00.000+08:00" and day["ticks"][-1]["time"].startswith(
        "2025-11-10T14:59"
    )
    assert (
        day["ticks"][0]["price"] == 12.0
        and day["ticks"][0]["volume"] == 5000
        and all(t["closed"] for t in day["ticks"])
    )
    before = server.requests["transactions"]
    trades = await http.ok("/v1/trades", symbol="000001.SZ", limit=2000)
    assert trades["count"] == 2000 and trades["sources"] == ["tdx"]
    assert server.requests["transactions"] - before >= 2  # 2,000 a page
    ids = [int(t["trade_id"].split("-")[1]) for t in trades["trades"]]
    assert ids == list(range(500, 2500))  # the live numbering: index from the day's first transaction
    status, err, _ = await http.get("/v1/bars", symbol="AAPL.US", period="1d", limit=5)
    assert status == 503 and "TDX serves SZ, SH and BJ only" in err["data"]["message"]


async def test_a_source_down_for_live_data_is_not_asked(tdx_http) -> None:
    from wsclient import Client

    http, server = tdx_http
    port = int(http.base.rsplit(":", 1)[1])
    server.die()
    c = await Client.connect(port)  # a live stream makes the source poll, fail and report down
    try:
        await c.subscribe(["600000.SH"], ["quote"], snapshot=False)
        await c.expect("STATUS", timeout=30, state="down")
        status, err, _ = await http.get("/v1/bars", symbol="000001.SZ", period="1d", limit=5)
        assert status == 503 and err["data"]["code"] == "UNAVAILABLE"
        assert "tdx: down (no TDX host answered" in err["data"]["message"], err
    finally:
        await c.close()
