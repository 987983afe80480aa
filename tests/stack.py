"""Start real Argus service processes for tests: gateway and ingestors as their console scripts."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

from natsserver import free_port, wait_port

BIN = Path(sys.executable).parent


class Proc:
    """A service process with its stderr captured to a file (read it when a test fails)."""

    def __init__(self, argv: list[str], env: dict[str, str] | None, log_dir: Path, name: str) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}-{time.monotonic_ns()}.log"
        self._log: IO[bytes] = open(self.log_path, "wb")
        full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.proc = subprocess.Popen(argv, stdout=self._log, stderr=subprocess.STDOUT, env=full_env)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode


def start_gateway(
    nats_url: str, log_dir: Path, *extra: str, env: dict[str, str] | None = None
) -> tuple[Proc, int, int]:
    """Returns (process, websocket port, metrics port) once both ports accept connections."""
    port, mport = free_port(), free_port()
    argv = [
        str(BIN / "argus-gateway"),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--metrics-port",
        str(mport),
        "--nats-url",
        nats_url,
        *extra,
    ]
    env = {"LOG_FILE": str(log_dir / f"gateway-{port}.jsonl"), **(env or {})}
    p = Proc(argv, env, log_dir, "gateway")
    try:
        wait_port(port, 20)
        wait_port(mport, 20)
    except TimeoutError:
        p.stop()
        raise RuntimeError(f"gateway did not start:\n{p.log()}") from None
    return p, port, mport


def start_ingestor(
    source: str, nats_url: str, log_dir: Path, *extra: str, env: dict[str, str] | None = None
) -> tuple[Proc, int]:
    """Returns (process, metrics port) once the metrics port accepts connections."""
    mport = free_port()
    argv = [str(BIN / f"argus-ingestor-{source}"), "--metrics-port", str(mport), "--nats-url", nats_url, *extra]
    env = {"LOG_FILE": str(log_dir / f"ingestor-{source}-{mport}.jsonl"), **(env or {})}
    p = Proc(argv, env, log_dir, f"ingestor-{source}")
    try:
        wait_port(mport, 20)
    except TimeoutError:
        p.stop()
        raise RuntimeError(f"ingestor {source} did not start:\n{p.log()}") from None
    return p, mport
