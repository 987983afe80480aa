"""Coming from the original server: its command, flags and variables still start a working service."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from natsserver import free_port
from stack import start_gateway
from wsclient import Client

ROOT = Path(__file__).resolve().parents[2]
SHIM = ROOT / "src" / "argus_mcp" / "run_websocket_server.py"


def test_the_original_command_with_its_flags_starts_the_stack_with_auth(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("NATS_URL", "LOG_FILE", "ARGUS_CONFIG")}
    env.update(
        NATS_PORT=str(free_port()),
        METRICS_PORT=str(free_port()),
        INGESTOR_METRICS_PORT=str(free_port()),
        LOG_FILE="",
        ARGUS_API_KEYS="old-key",
    )
    config = tmp_path / "websocket_config.yaml"  # the original file's sections
    config.write_text(
        "server:\n  max_connections: 100\ndatasource:\n  source_type: mock\nsecurity:\n  enable_auth: false\n"
    )
    # the system python, not the venv's: users ran `python src/argus_mcp/run_websocket_server.py`
    p = subprocess.Popen(
        ["python3", str(SHIM), "--host", "127.0.0.1", "--port", str(port), "--config", str(config), "--log-level", "info",
         "--enable-auth"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )  # fmt: skip
    out: list[str] = []
    try:
        assert p.stdout is not None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any("Press Ctrl-C" in line for line in out):
            line = p.stdout.readline()
            if not line:
                break
            out.append(line)
        assert f"ws://localhost:{port}/" in "".join(out), "".join(out[-30:])

        async def client() -> tuple[dict, dict]:
            refused = await Client.connect(port)
            await refused.send("AUTH", {"token": "wrong"})
            error = await refused.expect("ERROR")
            await refused.close()
            c = await Client.connect(port)
            await c.send("AUTH", {"token": "old-key"})
            await c.expect("AUTHENTICATED")
            await c.subscribe(["000001.SZ"])
            data = (await c.data(1, timeout=15))[0]
            await c.close()
            return error, data

        error, data = asyncio.run(client())
        assert error["data"]["code"] == "UNAUTHORIZED"  # --enable-auth took effect over the file's false
        assert data["symbol"] == "000001.SZ" and data["source"] == "mock"
        p.send_signal(signal.SIGINT)
        assert p.wait(30) == 0
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()


def test_auth_on_without_any_key_is_warned_about(nats_url: str, tmp_path: Path) -> None:
    gw, _, _ = start_gateway(nats_url, tmp_path, env={"ENABLE_AUTH": "yes"})
    try:
        deadline = time.monotonic() + 10
        while "gateway listening" not in gw.log() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert "auth is enabled but no API key" in gw.log() and "every client will be refused" in gw.log()
    finally:
        gw.stop()


def test_the_shim_says_what_to_do_without_a_venv(tmp_path: Path) -> None:
    copy = tmp_path / "repo" / "src" / "argus_mcp"
    copy.mkdir(parents=True)
    (copy / "run_websocket_server.py").write_text(SHIM.read_text())
    r = subprocess.run(
        [sys.executable, str(copy / "run_websocket_server.py")], capture_output=True, text=True, timeout=30
    )
    assert r.returncode == 2 and "make install" in r.stderr
