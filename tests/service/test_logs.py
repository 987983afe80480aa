"""Operators read JSON log lines: connects/disconnects with reason, subscriptions, errors, stats."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from wsclient import Client


async def test_gateway_writes_structured_lines_to_the_rotating_file(gateway, tmp_path: Path) -> None:
    cfg = tmp_path / "logs.yaml"
    log_file = tmp_path / "gw" / "websocket_server.log"
    cfg.write_text("logging:\n  stats_interval: 0.3\n")
    port, _ = gateway("--config", str(cfg), env={"LOG_FILE": str(log_file)})
    c = await Client.connect(port)
    await c.subscribe(["000001.SZ", "nope"])
    await c.send("WHAT")
    await c.expect("ERROR", code="UNKNOWN_TYPE")
    await c.close()
    await asyncio.sleep(0.8)
    lines = [json.loads(line) for line in log_file.read_text().splitlines()]
    assert all({"ts", "level", "service", "msg"} <= set(line) for line in lines)
    by_msg: dict[str, list[dict]] = {}
    for line in lines:
        by_msg.setdefault(line["msg"], []).append(line)
    assert by_msg["connected"][0]["remote"] == "127.0.0.1"
    assert by_msg["subscribed"][0]["added"] == 1 and by_msg["subscribed"][0]["rejected"] == 1
    assert by_msg["disconnected"][0]["reason"] == "client closed"
    assert {e["code"] for e in by_msg["client error"]} == {"INVALID_SYMBOL", "UNKNOWN_TYPE"}
    assert "stats" in by_msg and "connections" in by_msg["stats"][-1]
    assert by_msg["gateway listening"][0]["service"] == "gateway"
