"""History from QMT end to end: fake MiniQMT (xtdata's call shapes, DataFrames) → argus-ingestor-qmt →
nats-server → argus-gateway → HTTP: bars as traded and adjusted by MiniQMT (dividend_type front/back
against the factors fed to the fake), a past day's 分时 from 1m bars, Level-2 trades, a quote snapshot."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path

import pytest
import yaml
from qmt_fake_autoplay import DIVIDENDS, HISTORIC
from stack import BIN
from test_qmt_e2e import fake_env

sys.path.insert(0, str(Path(__file__).parent.parent / "http"))
from httpkit import Http, private_prefix

pytestmark = pytest.mark.skipif(not (BIN / "argus-gateway").exists(), reason="needs argus-gateway installed")


@pytest.fixture
async def qmt_http(ingestor, gateway, tmp_path: Path):  # type: ignore[no-untyped-def]
    path = tmp_path / "qmt.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "nats": {"subject_prefix": private_prefix()},
                "datasource": {"status_interval": 1, "options": {"qmt": {"level2": True, "backoff_initial": 0.2}}},
            }
        )
    )
    port, _ = gateway("--config", str(path))
    ingestor("qmt", "--config", str(path), env=fake_env())
    http = Http(port)
    await http.until(
        "/v1/bars", lambda s, d: s == 200 and d["sources"] == ["qmt"], symbol=HISTORIC, period="1d", limit=5
    )
    yield http
    await http.close()


async def test_bars_as_traded_and_adjusted_by_miniqmt(qmt_http) -> None:
    http = qmt_http
    plain = await http.ok("/v1/bars", symbol=HISTORIC, period="1d", limit=250)
    assert plain["count"] == 250 and plain["adjust"] == "none" and plain["adjust_source"] == ""
    assert all(b["closed"] for b in plain["bars"]) and all(
        b["open_time"].endswith("T00:00:00+08:00") for b in plain["bars"]
    )
    raw = {b["open_time"][:10]: b for b in plain["bars"]}
    ex = datetime.strptime(DIVIDENDS[0][0], "%Y%m%d").date().isoformat()
    dr = DIVIDENDS[0][1]
    for adjust, source in (("qfq", "front"), ("hfq", "back")):
        page = await http.ok("/v1/bars", symbol=HISTORIC, period="1d", limit=250, adjust=adjust)
        assert page["adjust"] == adjust and page["adjust_source"].endswith(f"dividend_type={source}")
        for b in page["bars"]:
            day = b["open_time"][:10]
            f = (1 / dr if day < ex else 1.0) if adjust == "qfq" else (dr if day >= ex else 1.0)
            assert b["close"] == pytest.approx(raw[day]["close"] * f, abs=0.002), (adjust, day)
            assert b["volume"] == raw[day]["volume"]


async def test_a_past_day_s_ticks_trades_and_a_quote_snapshot(qmt_http) -> None:
    http = qmt_http
    day = await http.ok("/v1/ticks", symbol=HISTORIC, date="2025-11-10")
    assert day["sources"] == ["qmt"] and day["count"] == 240
    first = day["ticks"][0]
    assert first["time"] == "2025-11-10T09:30:00+08:00" and first["volume"] == 1000 and first["closed"]
    assert day["ticks"][120]["time"] == "2025-11-10T13:00:00+08:00"  # lunch skipped
    bars = await http.ok("/v1/bars", symbol=HISTORIC, period="60m", limit=4, end="2025-11-10")
    assert [b["open_time"][11:16] for b in bars["bars"]] == ["09:30", "10:30", "13:00", "14:00"]  # session buckets
    trades = await http.ok("/v1/trades", symbol=HISTORIC, limit=100)
    assert trades["count"] == 100 and trades["sources"] == ["qmt"]
    assert [t["trade_id"] for t in trades["trades"]][-1] == "20251110-500"
    snap = await http.ok("/v1/snapshot", symbols="000002.SZ", types="quote")
    assert snap["snapshots"]["000002.SZ"]["quote"]["source"] == "qmt"
