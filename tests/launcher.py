"""`make run`'s launcher (scripts/run_local_stack.py) on free ports, as a test starts and watches it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from natsserver import free_port

ROOT = Path(__file__).resolve().parents[1]


class Launcher:
    def __init__(self, env_extra: dict[str, str]) -> None:
        self.ports = {
            k: str(free_port()) for k in ("NATS_PORT", "WEBSOCKET_PORT", "METRICS_PORT", "INGESTOR_METRICS_PORT")
        }
        env = {k: v for k, v in os.environ.items() if k not in ("NATS_URL", "LOG_FILE")}
        env.update(self.ports, LOG_FILE="", **env_extra)
        self.p = subprocess.Popen(
            [sys.executable, str(ROOT / "scripts" / "run_local_stack.py")],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.out: list[str] = []

    def banner(self, timeout: float = 60) -> str:
        assert self.p.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.p.stdout.readline()
            if not line:
                break
            self.out.append(line)
            if "Press Ctrl-C" in line:
                return "".join(self.out)
        raise AssertionError("no banner:\n" + "".join(self.out[-40:]))

    def children(self) -> list[int]:
        found = subprocess.run(["pgrep", "-P", str(self.p.pid)], capture_output=True, text=True).stdout.split()
        return [int(pid) for pid in found]

    def kill(self) -> None:
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()


def alive(pid: int) -> bool:
    status = Path(f"/proc/{pid}/status")
    try:
        return "zombie" not in status.read_text().lower()
    except OSError:
        return False


def wait_gone(pids: list[int], timeout: float) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        left = [pid for pid in pids if alive(pid)]
        if not left:
            return []
        time.sleep(0.1)
    return [pid for pid in pids if alive(pid)]
