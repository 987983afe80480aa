"""History from Yahoo end to end: fake chart API (v8 JSON with adjclose) → yfinance in
argus-ingestor-yahoo → nats-server → argus-gateway → HTTP: daily bars over a range as traded,
前复权 from Yahoo's adjusted close and 后复权 against its first day, a day's 分时 from 1m bars,
and no trades (Yahoo has none)."""

from __future__ import annotations

import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from fake_chart import FakeChartServer, History
from fake_streamer import FakeStreamer
from stack import BIN
from test_yahoo_e2e import NO_WAY_OUT

sys.path.insert(0, str(Path(__file__).parent.parent / "http"))
from httpkit import Http, private_prefix

pytestmark = pytest.mark.skipif(not (BIN / "argus-gateway").exists(), reason="needs argus-gateway installed")

NY = ZoneInfo("America/New_York")
DIVIDEND_DAY = 200  # from this daily bar on, no adjustment; before it, adjusted close = 0.98 × close


def aapl() -> History:
    today = datetime.now(NY).replace(hour=9, minute=30, second=0, microsecond=0)
    days = [today - timedelta(days=400 - i) for i in range(400)]
    daily = []
    for i, d in enumerate(days):
        c = round(150 + i * 0.1, 2)
        daily.append(
            (
                int(d.timestamp()),
                c - 0.5,
                c + 1,
                c - 1,
                c,
                1_000_000 + i,
                round(c * (0.98 if i < DIVIDEND_DAY else 1.0), 4),
            )
        )
    day = (today - timedelta(days=3)).replace(hour=9, minute=30)
    minutes = [
        (int((day + timedelta(minutes=i)).timestamp()), 200.0, 200.2, 199.8, 200.0 + (i % 4) * 0.05, 100 + i, 0.0)
        for i in range(390)
    ]
    return History("AAPL", "US", {"1d": daily, "1m": minutes})


@pytest.fixture
async def yahoo_http(
    streamer: FakeStreamer, chart_server: FakeChartServer, ingestor: Any, gateway: Any, tmp_path: Path
):  # type: ignore[no-untyped-def]
    chart_server.history["AAPL"] = aapl()
    path = tmp_path / "yahoo.yaml"
    path.write_text(
        yaml.safe_dump({"nats": {"subject_prefix": private_prefix()}, "datasource": {"status_interval": 1}})
    )
    port, _ = gateway("--config", str(path))
    ingestor(
        "yahoo",
        "--config",
        str(path),
        "--ws-url",
        streamer.url,
        "--chart-url",
        chart_server.url,
        "--schedule",
        "always",
        env={**NO_WAY_OUT, "YAHOO_CACHE_DIR": str(tmp_path / "yf")},
    )
    http = Http(port)
    await http.until(
        "/v1/bars",
        lambda s, d: s == 200 and d["sources"] == ["yahoo"],
        timeout=30,
        symbol="AAPL.US",
        period="1d",
        limit=5,
    )
    yield http, chart_server
    await http.close()


async def test_daily_bars_as_traded_qfq_and_hfq(yahoo_http) -> None:
    http, server = yahoo_http
    series = server.history["AAPL"].series["1d"]
    plain = await http.ok("/v1/bars", symbol="AAPL.US", period="1d", limit=300)
    assert plain["count"] == 300 and plain["adjust"] == "none"
    closes = {datetime.fromtimestamp(r[0], NY).date().isoformat(): r for r in series}
    for b in plain["bars"]:
        assert b["open_time"].endswith("T00:00:00-05:00") or b["open_time"].endswith("T00:00:00-04:00")
        assert b["close"] == closes[b["open_time"][:10]][4]
    cut = datetime.fromtimestamp(series[DIVIDEND_DAY][0], NY).date().isoformat()
    qfq = await http.ok("/v1/bars", symbol="AAPL.US", period="1d", limit=300, adjust="qfq")
    hfq = await http.ok("/v1/bars", symbol="AAPL.US", period="1d", limit=300, adjust="hfq")
    assert qfq["adjust_source"] == hfq["adjust_source"] == "yahoo adjclose"
    for q, h in zip(qfq["bars"], hfq["bars"], strict=True):
        raw = closes[q["open_time"][:10]][4]
        before = q["open_time"][:10] < cut
        assert q["close"] == pytest.approx(raw * (0.98 if before else 1.0), abs=1e-3)
        assert h["close"] == pytest.approx(
            raw * (1.0 if before else 1 / 0.98), abs=1e-3
        )  # the first day keeps its price
    ranged = await http.ok(
        "/v1/bars", symbol="AAPL.US", period="1d", limit=1000, start=closes and list(closes)[10], end=list(closes)[19]
    )
    assert [b["open_time"][:10] for b in ranged["bars"]] == list(closes)[10:20]


async def test_a_day_s_ticks_and_no_trades(yahoo_http) -> None:
    http, server = yahoo_http
    first = server.history["AAPL"].series["1m"][0][0]
    day = datetime.fromtimestamp(first, NY).date().isoformat()
    ticks = await http.ok("/v1/ticks", symbol="AAPL.US", date=day)
    assert ticks["count"] == 390 and ticks["sources"] == ["yahoo"]
    assert ticks["ticks"][0]["time"].startswith(f"{day}T09:30:00")
    assert ticks["ticks"][0]["amount"] == pytest.approx(200.0 * 100)  # close × volume, as the live 分时
    status, err, _ = await http.get("/v1/trades", symbol="AAPL.US", limit=10)
    assert status == 503 and "no trade prints" in err["data"]["message"]
    status, err, _ = await http.get("/v1/bars", symbol="AAPL.US", period="1m", limit=10, end="2020-01-01")
    assert status == 503 and "last 30 days" in err["data"]["message"]
