"""deploy/systemd: every unit verifies with systemd-analyze, and its ExecStart starts and stops as the unit says."""

from __future__ import annotations

import configparser
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from manifests import ROOT
from natsserver import free_port

UNITS = sorted((ROOT / "deploy" / "systemd").glob("*.service"))
BIN = Path(sys.executable).parent
VENV_BIN = "/opt/argus/venv/bin"
NO_WAY_OUT = {"HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9", "NO_PROXY": "127.0.0.1"}


def unit(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(path.read_text())
    return parser


def env_file() -> dict[str, str]:
    out = {}
    for line in (ROOT / "deploy" / "systemd" / "argus.env").read_text().splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            out[key] = value
    return out


def test_there_is_a_unit_per_service_and_for_nats() -> None:
    names = {u.stem for u in UNITS}
    services = {f"argus-{p.name}" for p in (ROOT / "services").iterdir() if (p / "pyproject.toml").exists()}
    assert services - {"argus-ingestor-qmt"} <= names, "QMT runs on Windows beside MiniQMT (its README)"
    assert "argus-nats" in names


@pytest.mark.parametrize("path", UNITS, ids=lambda p: p.stem)
def test_systemd_analyze_verify_is_clean(path: Path, tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("NOT CHECKED: systemd-analyze is not installed here")
    copy = tmp_path / path.name
    copy.write_text(path.read_text().replace(VENV_BIN, str(BIN)))  # where this checkout's venv has the commands
    r = subprocess.run([analyze, "verify", "--man=no", str(copy)], capture_output=True, text=True, timeout=60)
    problems = [line for line in (r.stdout + r.stderr).splitlines() if path.name in line or "error" in line.lower()]
    assert r.returncode == 0 and not problems, r.stdout + r.stderr


@pytest.mark.parametrize("path", UNITS, ids=lambda p: p.stem)
def test_exec_start_starts_and_stops_within_the_unit_timeout(path: Path, tmp_path: Path, nats_url: str) -> None:
    service = unit(path)["Service"]
    argv = shlex.split(service["ExecStart"])
    assert argv[0].startswith(VENV_BIN + "/")
    argv[0] = str(BIN / Path(argv[0]).name)
    assert Path(argv[0]).exists(), f"{argv[0]}: not a command this project installs"
    health = free_port()
    config = tmp_path / "websocket_config.yaml"
    config.write_text(
        (ROOT / "config" / "websocket_config.yaml")
        .read_text()
        .replace("host: 0.0.0.0", "host: 127.0.0.1")
        .replace("port: 8765", f"port: {free_port()}")
        .replace("port: 9090", f"port: {health}")
    )
    mapped = []
    for i, arg in enumerate(argv):
        before = argv[i - 1] if i else ""
        if arg == "/etc/argus/websocket_config.yaml":
            arg = str(config)
        elif before == "--metrics-port":
            arg = str(health)
        elif before == "-p":
            arg = str(free_port())
        elif before == "-m":
            arg = str(health)
        elif before == "-sd":
            arg = str(tmp_path / "nats-store")
        mapped.append(arg)
    env = {"PATH": f"{BIN}:/usr/bin:/bin", "HOME": str(tmp_path), **env_file(), "NATS_URL": nats_url, **NO_WAY_OUT}
    for line in path.read_text().splitlines():  # Environment= lines, with their directories mapped
        if line.startswith("Environment="):
            key, _, value = line.removeprefix("Environment=").partition("=")
            env[key] = value.replace("/var/cache/argus", str(tmp_path / "cache"))
    env.update(TDX_HOSTS="127.0.0.1:1", YAHOO_WS_URL="ws://127.0.0.1:1/", YAHOO_CHART_URL="http://127.0.0.1:1")
    work = tmp_path / "cwd"
    work.mkdir()
    p = subprocess.Popen(mapped, cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{health}/healthz", timeout=2) as r:
                    assert r.status == 200
                    break
            except OSError:
                if p.poll() is not None or time.monotonic() > deadline:
                    out = p.stdout.read().decode() if p.stdout else ""
                    raise AssertionError(
                        f"{path.stem} did not answer /healthz: exit {p.poll()}\n{out[-3000:]}"
                    ) from None
                time.sleep(0.2)
        sig = getattr(signal, service.get("KillSignal", "SIGTERM"))
        timeout = float(re.sub(r"s$", "", service.get("TimeoutStopSec", "90")))
        t0 = time.monotonic()
        p.send_signal(sig)
        code = p.wait(timeout)
        assert time.monotonic() - t0 < 10, "stops well within TimeoutStopSec"
        assert code == 0, p.stdout.read().decode()[-3000:] if p.stdout else ""
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert list(work.iterdir()) == [], "LOG_FILE= from argus.env: nothing written to the working directory"
