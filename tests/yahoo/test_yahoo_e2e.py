"""End to end: fake Yahoo streamer + chart server → argus-ingestor-yahoo → nats-server → argus-gateway → client."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from fake_chart import FakeChartServer
from fake_streamer import FakeStreamer
from stack import BIN
from wsclient import Client
from yahoo_fixtures import all_charts, ms

pytestmark = pytest.mark.skipif(not (BIN / "argus-gateway").exists(), reason="needs argus-gateway installed")

SYMBOLS = ["00700.HK", "AAPL.US", "600000.SH"]
# belt and braces: any HTTP request not for 127.0.0.1 would go to a dead proxy instead of the internet
NO_WAY_OUT = {
    "HTTP_PROXY": "http://127.0.0.1:9",
    "HTTPS_PROXY": "http://127.0.0.1:9",
    "ALL_PROXY": "http://127.0.0.1:9",
    "NO_PROXY": "127.0.0.1,localhost",
}


async def _market(streamer: FakeStreamer) -> None:
    """Yahoo's stream: each ticker trades every 0.1 s (day volume grows, so trades are derived)."""
    i = 0
    while True:
        i += 1
        for ticker, price, t0 in (
            ("0700.HK", 501.0, ms("2026-11-24T09:31:00+08:00")),
            ("AAPL", 229.5, ms("2026-11-23T10:15:00-05:00")),
            ("600000.SS", 10.52, ms("2026-11-24T09:31:00+08:00")),
        ):
            await streamer.push(
                id=ticker, price=price, time=t0 + i * 100, market_hours=1, day_volume=1000 + 100 * i, bid=price - 0.01
            )
        await asyncio.sleep(0.1)


async def test_websocket_client_sees_quotes_trades_klines_and_ticks_from_yahoo(
    streamer: FakeStreamer, chart_server: FakeChartServer, ingestor: Any, gateway: Any, tmp_path: Path
) -> None:
    chart_server.charts = all_charts()
    ingestor(
        "yahoo",
        "--ws-url",
        streamer.url,
        "--chart-url",
        chart_server.url,
        "--poll-interval",
        "0.3",
        "--schedule",
        "always",
        env={"YAHOO_CACHE_DIR": str(tmp_path / "yf-cache"), **NO_WAY_OUT},
    )
    ws_port, _ = gateway()
    pusher = asyncio.create_task(_market(streamer))
    c = await Client.connect(ws_port)
    try:
        await c.expect("WELCOME")
        await c.subscribe(SYMBOLS, ["quote", "trade", "kline", "tick"], periods=["1m"], snapshot=False)
        seen: dict[tuple[str, str], dict[str, Any]] = {}
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30
        while len(seen) < 12:
            assert loop.time() < deadline, f"only {sorted(seen)}"
            d = (await c.data(1, timeout=30))[0]
            seen.setdefault((d["symbol"], d["type"]), d)
        hk, us, sh = (seen[(s, "quote")]["quote"] for s in SYMBOLS)
        assert hk["price"] == 501.0 and hk["timestamp"].endswith("+08:00") and hk["bid_prices"] == [500.99]
        assert (
            us["price"] == 229.5
            and us["timestamp"].startswith("2026-11-23T10:15:")
            and us["timestamp"][-6:] == "-05:00"
        )
        assert sh["timestamp"].endswith("+08:00") and "ask_prices" not in sh  # absent levels are left out
        for s in SYMBOLS:
            trade = seen[(s, "trade")]
            assert trade["source"] == "yahoo-derived" and trade["trade"]["volume"] == 100
            assert seen[(s, "quote")]["source"] == "yahoo"
        assert seen[("AAPL.US", "kline")]["kline"]["open_time"].endswith("-05:00")
        assert seen[("00700.HK", "kline")]["kline"]["open_time"].startswith("2026-11-24T09:3")
        assert seen[("600000.SH", "tick")]["tick"]["time"].endswith("+08:00")
        # the ingestor subscribed with Yahoo's names and asked the chart server (only) for their bars
        assert {"0700.HK", "AAPL", "600000.SS"} <= streamer.current.subscribed()
        assert {r.path.rsplit("/", 1)[1] for r in chart_server.chart_requests()} == {"0700.HK", "AAPL", "600000.SS"}
    finally:
        pusher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await pusher
        await c.close()


def test_cli_with_a_bad_streamer_url_exits_2_naming_the_key() -> None:
    r = subprocess.run(
        [str(BIN / "argus-ingestor-yahoo"), "--metrics-port", "0"],
        capture_output=True,
        text=True,
        timeout=30,
        env={"PATH": str(Path(sys.executable).parent), "YAHOO_WS_URL": "http://not-a-websocket"},
    )
    assert r.returncode == 2
    assert "ws_url" in r.stderr


async def test_trades_missed_in_an_outage_reach_the_client_as_a_gap(
    streamer: FakeStreamer, ingestor: Any, gateway: Any, tmp_path: Path
) -> None:
    ingestor(
        "yahoo",
        "--ws-url",
        streamer.url,
        "--chart-url",
        "http://127.0.0.1:9",
        "--schedule",
        "always",
        env={"YAHOO_CACHE_DIR": str(tmp_path / "yf-cache"), **NO_WAY_OUT},
    )
    ws_port, _ = gateway()
    c = await Client.connect(ws_port)
    try:
        await c.expect("WELCOME")
        await c.subscribe(["AAPL.US"], ["trade"], snapshot=False)
        await streamer.wait(lambda: streamer.open() and streamer.current.subscribed() == {"AAPL"}, timeout=20)
        t0 = ms("2026-11-23T10:15:00-05:00")
        volume = 38_000_000
        first: list[dict[str, Any]] = []
        while not first:  # the gateway may take a moment to hold the subject: keep trading until a trade arrives
            await streamer.push(id="AAPL", price=229.0, time=t0, day_volume=volume)
            volume += 100
            with contextlib.suppress(TimeoutError):
                first = await c.data(1, timeout=0.5, symbol="AAPL.US")
        before = first[0]["seq"]
        streamer.drop()
        await streamer.wait(lambda: len(streamer.open()) == 1 and streamer.current.subscribed() == {"AAPL"}, timeout=20)
        await streamer.push(id="AAPL", price=229.5, time=t0 + 60_000, day_volume=volume + 250_000)  # unseen prints
        await streamer.push(id="AAPL", price=229.5, time=t0 + 60_100, day_volume=volume + 250_100)
        gap = await c.expect("GAP", timeout=10)
        assert gap["data"] == {
            "symbol": "AAPL.US",
            "type": "trade",
            "from_seq": before + 1,
            "to_seq": before + 1,
            "reason": "upstream",
        }
        (after,) = await c.data(1, timeout=10, symbol="AAPL.US")
        assert after["seq"] == before + 2 and after["trade"]["volume"] == 100
    finally:
        await c.close()


async def test_aliases_are_refused_at_the_gateway_and_never_stop_anothers_feed(
    streamer: FakeStreamer, ingestor: Any, gateway: Any, tmp_path: Path
) -> None:
    """Issue 10: one client subscribing `aapl.US`, `700.HK` and `00700.HK` stopped another's feed."""
    ingestor(
        "yahoo",
        "--ws-url",
        streamer.url,
        "--chart-url",
        "http://127.0.0.1:9",
        "--schedule",
        "always",
        env={"YAHOO_CACHE_DIR": str(tmp_path / "yf-cache"), **NO_WAY_OUT},
    )
    ws_port, _ = gateway()
    pusher = asyncio.create_task(_market(streamer))
    victim, attacker = await Client.connect(ws_port), await Client.connect(ws_port)
    try:
        await victim.subscribe(["00700.HK", "AAPL.US"], ["quote"], snapshot=False)
        await victim.data(2, timeout=30, type="quote")
        ack = await attacker.subscribe(["aapl.US", "700.HK", "00700.HK"], ["quote"], snapshot=False)
        assert ack["data"]["added"] == ["quote:00700.HK"]
        rejected = {r["symbol"]: r for r in ack["data"]["rejected"]}
        assert set(rejected) == {"aapl.US", "700.HK"}
        assert {r["code"] for r in rejected.values()} == {"INVALID_SYMBOL"}
        assert "AAPL.US" in rejected["aapl.US"]["message"] and "00700.HK" in rejected["700.HK"]["message"]
        # both of the victim's symbols keep arriving after the attempt, and nothing under an alias name
        victim.seen.clear()
        got = {d["symbol"] for d in await victim.data(20, timeout=15, type="quote")}
        assert got == {"00700.HK", "AAPL.US"}
        assert {d["symbol"] for d in await attacker.data(5, timeout=15, type="quote")} == {"00700.HK"}
        assert streamer.current.subscribed() == {"0700.HK", "AAPL"}
    finally:
        pusher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await pusher
        await victim.close()
        await attacker.close()
