"""End to end: fake MiniQMT → argus-ingestor-qmt → nats-server → argus-gateway → WebSocket client."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from stack import BIN
from wsclient import Client

HERE = Path(__file__).parent
needs_gateway = pytest.mark.skipif(not (BIN / "argus-gateway").exists(), reason="needs argus-gateway installed")

FAST_CONFIG = """\
datasource:
  options:
    qmt:
      level2: true
      health_interval: 1
      roll_interval: 0.5
      backoff_initial: 0.2
"""


def fake_env() -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(HERE), os.environ.get("PYTHONPATH", "")) if p)
    return {"PYTHONPATH": path, "QMT_XTDATA_MODULE": "qmt_fake_autoplay"}


@needs_gateway
async def test_websocket_client_sees_all_four_types_from_qmt(ingestor, gateway, tmp_path: Path) -> None:
    config = tmp_path / "qmt.yaml"
    config.write_text(FAST_CONFIG)
    ingestor("qmt", "--config", str(config), env=fake_env())
    ws_port, _ = gateway()
    c = await Client.connect(ws_port)
    try:
        await c.expect("WELCOME")
        await c.subscribe(["000001.SZ"], ["quote", "tick", "kline", "trade"], periods=["1m"], snapshot=False)
        seen: dict[str, list[dict]] = {}
        while len(seen) < 4 or len(seen["trade"]) < 3:
            d = (await c.data(1, timeout=20, symbol="000001.SZ", source="qmt"))[0]
            seen.setdefault(d["type"], []).append(d)
        q = seen["quote"][0]["quote"]
        assert q["timestamp"].endswith("+08:00") and q["volume"] % 100 == 0 and len(q["bid_prices"]) == 5
        k = seen["kline"][0]["kline"]
        assert k["period"] == "1m" and k["open_time"].endswith("+08:00") and k["closed"] is False
        assert seen["tick"][0]["tick"]["time"].endswith("+08:00")
        assert all(t["trade"]["price"] > 0 and t["trade"]["side"] in ("B", "S") for t in seen["trade"])  # no cancels
        for events in seen.values():
            for d in events:
                assert d["seq"] >= 1 and d["ts"] > 0
        # a suspended stock: STATUS halted for its subscribers, and no zero-price quotes
        await c.subscribe(["600001.SH"], ["quote"], snapshot=False)
        st = await c.expect("STATUS", timeout=20, symbol="600001.SH")
        assert st["data"]["state"] == "halted" and st["data"]["source"] == "qmt"
        assert not [m for m in c.seen if m["type"] == "DATA" and m["data"]["symbol"] == "600001.SH"]
    finally:
        await c.close()


def test_cli_bad_option_exits_2_naming_the_key() -> None:
    r = subprocess.run(
        [str(BIN / "argus-ingestor-qmt"), "--metrics-port", "0", "--qmt-host", "10.0.0.5"],
        capture_output=True,
        text=True,
        timeout=30,
        env={"PATH": str(Path(sys.executable).parent)},
    )
    assert r.returncode == 2
    assert "datasource.options.qmt" in r.stderr and "port" in r.stderr


def test_python_dash_m_runs_the_same_cli() -> None:
    r = subprocess.run(
        [sys.executable, "-m", "argus_ingestor_qmt", "--help"], capture_output=True, text=True, timeout=30
    )
    assert r.returncode == 0 and "--level2" in r.stdout and "--qmt-port" in r.stdout


@needs_gateway
async def test_a_type_the_source_cannot_serve_is_told_at_subscribe(ingestor, gateway, tmp_path: Path) -> None:
    config = tmp_path / "qmt.yaml"
    config.write_text(FAST_CONFIG.replace("level2: true", "level2: false"))
    ingestor("qmt", "--config", str(config), env=fake_env())
    ws_port, _ = gateway()
    watcher = await Client.connect(ws_port)  # holds a quote, so the gateway hears and tracks qmt
    c = await Client.connect(ws_port)
    try:
        await watcher.expect("WELCOME")
        await watcher.subscribe(["000002.SZ"], ["quote"], snapshot=False)
        await watcher.data(1, timeout=20, symbol="000002.SZ", source="qmt")
        await c.expect("WELCOME")
        await c.subscribe(["000001.SZ"], ["trade"], snapshot=False)
        st = await c.expect("STATUS", timeout=5, source="qmt")  # right after SUBSCRIBED, not never
        assert st["data"]["unsupported"] == ["trade"] and st["data"]["state"] in ("live", "closed")
        await c.subscribe(["000001.SZ"], ["quote"], snapshot=False)  # a type it serves: no such STATUS
        await c.data(1, timeout=20, symbol="000001.SZ", source="qmt")
        assert [m for m in c.seen if m["type"] == "STATUS"] == [st]
    finally:
        await c.close()
        await watcher.close()
