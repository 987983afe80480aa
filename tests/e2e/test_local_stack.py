"""The whole local stack as a user meets it: mock ingestor, NATS, gateway; the README snippet and the
examples run as written, pointed at a free port instead of their default :8765."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from launcher import Launcher
from natsserver import free_port, wait_port
from stack import Proc, start_ingestor
from wsclient import Client

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "websocket_client_example.py"
DEFAULT_URL = "ws://localhost:8765/"  # what the README snippet and the examples connect to


@pytest.fixture(scope="module")
def stack(nats_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    log_dir = tmp_path_factory.mktemp("stack")
    started: list[Proc] = []
    try:
        ing, _ = start_ingestor("mock", nats_url, log_dir, "--universe", "20", "--rate", "4")
        started.append(ing)
        gw, port, _ = start_gateway_on(nats_url, log_dir)
        started.append(gw)
        yield port
    finally:
        for p in reversed(started):
            p.stop()


def start_gateway_on(nats_url: str, log_dir: Path) -> tuple[Proc, int, int]:
    from natsserver import wait_port as wp

    port, mport = free_port(), free_port()
    argv = [
        str(Path(sys.executable).parent / "argus-gateway"),
        "--port",
        str(port),
        "--metrics-port",
        str(mport),
        "--nats-url",
        nats_url,
    ]
    p = Proc(argv, {"LOG_FILE": str(log_dir / "gateway.jsonl")}, log_dir, "gateway")
    try:
        wp(port, 20)
    except TimeoutError:
        p.stop()
        raise RuntimeError(f"gateway did not start on :{port}\n{p.log()}") from None
    return p, port, mport


def readme_snippet() -> str:
    text = (ROOT / "README.md").read_text()
    m = re.search(r"<!-- snippet:start -->\s*```python\n(.*?)```\s*<!-- snippet:end -->", text, re.S)
    assert m, "README must carry the client snippet between snippet markers"
    return m.group(1)


def test_readme_snippet_prints_quote_and_tick_for_both_symbols(stack: int, tmp_path: Path) -> None:
    script = tmp_path / "snippet.py"
    snippet = readme_snippet()
    assert DEFAULT_URL in snippet, "the README's snippet connects to make run's default port"
    script.write_text(snippet.replace(DEFAULT_URL, f"ws://localhost:{stack}/"))
    p = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    want = {(s, t) for s in ("000001.SZ", "600000.SH") for t in ("quote", "tick")}
    seen: set[tuple[str, str]] = set()
    lines: list[str] = []
    deadline = time.monotonic() + 30
    try:
        assert p.stdout is not None
        while not want <= seen and time.monotonic() < deadline:
            line = p.stdout.readline()
            if not line:
                break
            lines.append(line)
            parts = line.split()
            if len(parts) >= 2:
                seen.add((parts[0], parts[1]))
    finally:
        p.kill()
        p.wait()
    assert want <= seen, f"missing {want - seen}; output:\n{''.join(lines[-20:])}"


def test_demo_example_exits_0(stack: int) -> None:
    r = subprocess.run(
        [sys.executable, str(EXAMPLE), "--url", f"ws://localhost:{stack}/", "--mode", "demo", "--timeout", "60"],
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    for kind in ("quote", "tick", "kline", "trade"):
        assert f"DATA {kind}" in r.stdout
    assert "UNSUBSCRIBED" in r.stdout


async def test_symbol_outside_the_universe_streams_within_two_seconds(stack: int) -> None:
    c = await Client.connect(stack)
    await c.expect("WELCOME")
    t0 = time.monotonic()
    await c.subscribe(["300750.SZ"], ["quote", "trade"])
    first = (await c.data(1, timeout=2.0, symbol="300750.SZ"))[0]
    assert time.monotonic() - t0 < 2.0
    assert first["symbol"] == "300750.SZ" and first["source"] == "mock"
    q = first.get("quote") or (await c.data(1, timeout=2.0, symbol="300750.SZ", type="quote"))[0]["quote"]
    assert q["price"] > 0
    await c.close()


async def test_all_four_types_and_kline_periods_are_consistent(stack: int) -> None:
    c = await Client.connect(stack)
    await c.subscribe(["000001.SZ"], ["quote", "tick", "kline", "trade"], periods=["1m", "5m", "1d"], snapshot=False)
    got = await c.data(60, timeout=20, symbol="000001.SZ")
    kinds = {d["type"] for d in got}
    assert kinds == {"quote", "tick", "kline", "trade"}
    periods = {d["kline"]["period"] for d in got if d["type"] == "kline"}
    assert periods == {"1m", "5m", "1d"}
    quotes = [d["quote"] for d in got if d["type"] == "quote"]
    for q in quotes:
        assert q["bid_prices"][0] < q["ask_prices"][0]
        assert q["bid_prices"] == sorted(q["bid_prices"], reverse=True) and q["ask_prices"] == sorted(q["ask_prices"])
        assert q["low"] <= q["price"] <= q["high"]
        assert q["timestamp"].endswith("+08:00")
    vols = [q["volume"] for q in quotes]
    assert vols == sorted(vols), "cumulative volume never falls"
    for kind in ("quote", "trade", "tick"):
        seqs = [d["seq"] for d in got if d["type"] == kind]
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert all(d["trade"]["side"] in ("B", "S", "N") for d in got if d["type"] == "trade")
    await c.close()


def test_make_run_stack_starts_and_ctrl_c_leaves_no_process(tmp_path: Path) -> None:
    launcher = Launcher({})
    p, ports = launcher.p, launcher.ports
    try:
        banner = launcher.banner()
        assert f"ws://localhost:{ports['WEBSOCKET_PORT']}/" in banner, banner[-3000:]
        wait_port(int(ports["WEBSOCKET_PORT"]), 5)

        async def one_quote() -> dict:
            c = await Client.connect(int(ports["WEBSOCKET_PORT"]))
            await c.subscribe(["600000.SH"])
            d = (await c.data(1, timeout=10))[0]
            await c.close()
            return d

        assert asyncio.run(one_quote())["symbol"] == "600000.SH"
        children = launcher.children()
        assert len(children) == 3  # nats-server, ingestor, gateway
        p.send_signal(signal.SIGINT)
        assert p.wait(40) == 0
        time.sleep(0.5)
        for pid in children:
            assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text().lower(), (
                f"process {pid} left behind"
            )
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)


def test_interactive_example_subscribes_lists_unsubscribes_and_quits(stack: int) -> None:
    p = subprocess.Popen(
        [sys.executable, str(EXAMPLE), "--url", f"ws://localhost:{stack}/", "--mode", "interactive"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert p.stdin is not None and p.stdout is not None
    out: list[str] = []

    def until(needle: str, limit: float = 15) -> None:
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            line = p.stdout.readline()
            if not line:
                break
            out.append(line)
            if needle in line:
                return
        raise AssertionError(f"no {needle!r} in output:\n{''.join(out[-15:])}")

    try:
        until("commands:")
        p.stdin.write("sub 600000.SH quote,trade\n")
        p.stdin.flush()
        until("SUBSCRIBED")
        until("DATA quote 600000.SH")
        p.stdin.write("list\n")
        p.stdin.flush()
        until("SUBSCRIPTIONS")
        assert "quote:600000.SH" in out[-1] and "trade:600000.SH" in out[-1]
        p.stdin.write("unsub 600000.SH\n")
        p.stdin.flush()
        until("UNSUBSCRIBED")
        p.stdin.write("quit\n")
        p.stdin.flush()
        assert p.wait(10) == 0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
