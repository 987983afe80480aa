"""Start the stack `make run` starts (nats-server, mock ingestor, gateway) for one scenario."""

from __future__ import annotations

import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .ablate import MOCK_ABLATIONS
from .ports import free_port
from .procstat import cpu_seconds

BIN = Path(sys.executable).parent


def wait_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"port {port} did not open")


def _child_setup() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if sys.platform == "linux":  # die with the bench, so a killed run leaves no stack behind
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class Stack:
    def __init__(
        self,
        rate: float,
        universe: int,
        max_connections: int,
        gateway_cpu: int | None,
        *,
        deflate: bool = False,
        gateway_env: dict[str, str] | None = None,
        mock_env: dict[str, str] | None = None,
        ablate: str | None = None,
    ) -> None:
        self.ablate = ablate
        self.deflate = deflate
        self.gateway_env = gateway_env or {}
        self.mock_env = mock_env or {}
        self.rate = rate
        self.universe = universe
        self.max_connections = max_connections
        self.stack_cpu = gateway_cpu  # nats-server, the mock and the gateway share this core
        self.procs: list[subprocess.Popen[bytes]] = []
        self.named: dict[str, int] = {}  # process name -> pid
        self.store = tempfile.mkdtemp(prefix="argus-bench-")
        self.ws_port = free_port()
        self.metrics_port = 0
        self.mock_metrics_port = 0

    def _spawn(self, name: str, argv: list[str], **extra_env: str) -> subprocess.Popen[bytes]:
        env = {**os.environ, "LOG_FILE": "", "LOG_LEVEL": "WARNING", **extra_env}
        p = subprocess.Popen(
            argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=_child_setup
        )
        self.procs.append(p)
        self.named[name] = p.pid
        if self.stack_cpu is not None and hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(p.pid, {self.stack_cpu})  # one core for the whole service, as deployed
        return p

    def _await_seeding(self, mport: int, timeout: float = 300.0) -> None:
        """Measure the market, not its start: wait until the mock has published its seeded past
        (its publish rate falls back to the live walk's)."""
        live = 3 * self.universe * self.rate  # quotes plus closed bars and minutes, with room to spare
        deadline = time.monotonic() + timeout
        last = gateway_counter(mport, "ingestor_events_published_total")
        quiet = 0
        while time.monotonic() < deadline and quiet < 2:
            time.sleep(1.0)
            now = gateway_counter(mport, "ingestor_events_published_total")
            quiet = quiet + 1 if now - last < live else 0
            last = now

    def cpu_seconds(self) -> dict[str, float]:
        return {name: cpu_seconds(pid) for name, pid in self.named.items()}

    def start(self) -> None:
        nats_port = free_port()
        nats_bin = shutil.which("nats-server", path=str(BIN)) or "nats-server"
        self._spawn("nats", [nats_bin, "-a", "127.0.0.1", "-p", str(nats_port), "-js", "-sd", self.store])
        wait_port(nats_port)
        url = f"nats://127.0.0.1:{nats_port}"
        mport = self.mock_metrics_port = free_port()
        mock = [sys.executable, "-m", "bench.ablate", self.ablate] if self.ablate in MOCK_ABLATIONS else []
        self._spawn(
            "mock",
            [
                *(mock or [str(BIN / "argus-ingestor-mock")]),
                "--nats-url",
                url,
                "--metrics-port",
                str(mport),
                "--rate",
                str(self.rate),
                "--universe",
                str(self.universe),
                "--seed",
                "1",
                # no seeded past unless the scenario asks: it would load NATS and the mock's core
                *(() if "MOCK_HISTORY" in self.mock_env else ("--history", "0")),
            ],
            **self.mock_env,
        )
        wait_port(mport)
        if "MOCK_HISTORY" in self.mock_env:
            self._await_seeding(mport)
        gport = self.metrics_port = free_port()
        # an ablation runs the same gateway with one technique swapped out (bench/ablate.py)
        gateway = self.ablate and self.ablate not in MOCK_ABLATIONS
        launcher = [sys.executable, "-m", "bench.ablate", self.ablate] if gateway else [str(BIN / "argus-gateway")]
        self.gateway = self._spawn(
            "gateway",
            [
                *launcher,
                "--host",
                "127.0.0.1",
                "--port",
                str(self.ws_port),
                "--metrics-port",
                str(gport),
                "--nats-url",
                url,
                "--max-connections",
                str(self.max_connections + 10),
                "--max-subscriptions",
                "1000",
            ],
            WEBSOCKET_PERMESSAGE_DEFLATE="true" if self.deflate else "false",
            **self.gateway_env,
        )
        wait_port(self.ws_port)
        time.sleep(1.0)  # let the mock's universe start streaming

    def stop(self) -> None:
        for p in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in reversed(self.procs):
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        shutil.rmtree(self.store, ignore_errors=True)


def gateway_counter(port: int, name: str) -> float:
    """One counter from the gateway's /metrics, summed over its labels (0 when absent or no metrics)."""
    import urllib.request

    if not port:
        return 0.0
    total = 0.0
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        for line in r.read().decode().splitlines():
            if line.startswith((name + " ", name + "{")):
                total += float(line.rsplit(" ", 1)[1])
    return total


YARDSTICK = Path(__file__).resolve().parents[2] / "shared" / "bench" / "yardstick_fanout.py"


class Yardstick(Stack):
    """The workplace's minimal aiohttp+uvloop fan-out (../shared/bench/yardstick_fanout.py) on the
    same core and the same load, so the gateway's cost is compared with it in the same invocation.
    It simulates its own symbols; it has no NATS, no source process and no metrics."""

    def start(self) -> None:
        if not YARDSTICK.exists():
            raise FileNotFoundError(f"no yardstick at {YARDSTICK}")
        self.gateway = self._spawn(
            "gateway",
            [
                sys.executable,
                str(YARDSTICK),
                "--port",
                str(self.ws_port),
                "--universe-size",
                str(self.universe),
                "--rate",
                str(self.rate),
            ],
        )
        wait_port(self.ws_port)
        time.sleep(0.5)
