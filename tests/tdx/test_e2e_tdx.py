"""End to end: fake TDX server → argus-ingestor-tdx → nats-server → argus-gateway → WebSocket client."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from fake_tdx import FakeTrade
from fixtures_tdx import PING_AN
from stack import BIN
from wsclient import Client

pytestmark = pytest.mark.skipif(not (BIN / "argus-gateway").exists(), reason="needs argus-gateway installed")

FAST_CONFIG = """\
datasource:
  options:
    tdx:
      bars_interval: 0.3
      minutes_interval: 0.3
      trades_interval: 0.3
      timeout: 2
"""


async def test_websocket_client_sees_all_four_types_from_tdx(tdx_server, ingestor, gateway, tmp_path: Path) -> None:
    dead = tdx_server()
    dead.refuse_login = True  # listed first: the ingestor must fail over to the live one
    server = tdx_server()
    config = tmp_path / "tdx.yaml"
    config.write_text(FAST_CONFIG)
    ingestor(
        "tdx",
        "--config",
        str(config),
        "--hosts",
        f"127.0.0.1:{dead.port},127.0.0.1:{server.port}",
        "--schedule",
        "always",
        "--interval",
        "0.2",
    )
    ws_port, _ = gateway()
    c = await Client.connect(ws_port)
    try:
        await c.expect("WELCOME")
        await c.subscribe(["000001.SZ"], ["quote", "tick", "kline", "trade"], periods=["1m"], snapshot=False)
        seen: dict[str, dict] = {}
        while len(seen) < 4:
            d = (await c.data(1, timeout=20, symbol="000001.SZ", source="tdx"))[0]
            seen.setdefault(d["type"], d)
        assert seen["quote"]["quote"]["price"] == 10.5 and seen["quote"]["quote"]["volume"] == 1_234_500
        assert seen["kline"]["kline"]["period"] == "1m"
        assert seen["tick"]["tick"]["time"].endswith("+08:00")
        assert 10 <= int(seen["trade"]["trade"]["trade_id"].split("-")[1]) < 30  # the last 20 of 30 (backfill)
        for d in seen.values():
            assert d["seq"] >= 1 and d["ts"] > 0
        # a new transaction upstream arrives once, with the next id
        with server.market.lock:
            server.market.transactions[PING_AN].append(FakeTrade("10:01", 10.6, 42, 3, 0))
        t = await c.expect("DATA", timeout=10, type="trade", symbol="000001.SZ")
        while t["data"]["trade"]["volume"] != 4200:
            t = await c.expect("DATA", timeout=10, type="trade", symbol="000001.SZ")
        assert t["data"]["trade"]["trade_id"].endswith("-30") and t["data"]["trade"]["side"] == "B"
    finally:
        await c.close()


def test_cli_without_hosts_exits_2_naming_the_variable() -> None:
    r = subprocess.run(
        [str(BIN / "argus-ingestor-tdx"), "--metrics-port", "0"],
        capture_output=True,
        text=True,
        timeout=30,
        env={"PATH": str(Path(sys.executable).parent)},
    )
    assert r.returncode == 2
    assert "TDX_HOSTS" in r.stderr


async def test_statuses_of_symbols_tdx_lacks_stop_when_nobody_wants_them(
    tdx_server, ingestor, gateway, nats_url: str, tmp_path: Path
) -> None:
    """Issue 10: 3,000 symbols TDX does not carry, then unsubscribed, had their `down` re-sent every 5 s forever."""
    import asyncio

    import msgspec
    import nats
    from argus_protocol import SourceStatus, Subjects

    server = tdx_server()
    config = tmp_path / "tdx-status.yaml"
    config.write_text(FAST_CONFIG + "  status_interval: 0.5\n")
    ingestor("tdx", "--config", str(config), "--hosts", f"127.0.0.1:{server.port}", "--schedule", "always")
    ws_port, _ = gateway(config={"server": {"max_subscriptions_per_client": 3000}})
    nc = await nats.connect(nats_url)
    seen: list[SourceStatus] = []
    dec = msgspec.msgpack.Decoder(SourceStatus)

    async def on_status(msg) -> None:  # type: ignore[no-untyped-def]
        seen.append(dec.decode(msg.data))

    await nc.subscribe(Subjects().status("tdx"), cb=on_status)
    foreign = [f"{10000 + i:05d}.HK" for i in range(3000)]
    c = await Client.connect(ws_port)
    try:
        for i in range(0, 3000, 1000):
            ack = await c.subscribe(foreign[i : i + 1000], ["quote"], snapshot=False)
            assert len(ack["data"]["added"]) == 1000
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 20
        while len({s.symbol for s in seen if s.state == "down" and s.symbol in set(foreign)}) < 3000:
            assert loop.time() < deadline, "TDX never said it lacks them"
            await asyncio.sleep(0.2)
        await c.send("UNSUBSCRIBE", {}, id="u")
        assert (await c.expect("UNSUBSCRIBED"))["data"]["total"] == 0
        deadline = loop.time() + 20
        while len({s.symbol for s in seen if s.state == "live" and s.symbol}) < 3000:
            assert loop.time() < deadline, "their down was never withdrawn"
            await asyncio.sleep(0.2)
        seen.clear()
        await asyncio.sleep(2.0)  # four heartbeats
        assert any(s.symbol is None for s in seen), "the source heartbeat goes on"
        assert [s for s in seen if s.symbol in set(foreign)] == [], "nobody wants them: nothing about them is repeated"
    finally:
        await c.close()
        await nc.close()
