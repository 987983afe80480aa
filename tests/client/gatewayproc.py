"""A gateway process on a port chosen once, so it can be killed and started again where clients
(and a browser page) expect it."""

from __future__ import annotations

import signal
from pathlib import Path

from natsserver import free_port, wait_port
from stack import BIN, Proc


class GatewayOn:
    def __init__(self, nats_url: str, log_dir: Path, procs: list[Proc], *flags: str) -> None:
        self.nats_url = nats_url
        self.log_dir = log_dir
        self.procs = procs
        self.flags = flags
        self.port = free_port()
        self.metrics_port = free_port()
        self.proc: Proc | None = None

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/"

    def start(self, *flags: str, env: dict[str, str] | None = None) -> int:
        argv = [
            str(BIN / "argus-gateway"),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--metrics-port",
            str(self.metrics_port),
            "--nats-url",
            self.nats_url,
            "--heartbeat-interval",
            "1",
            *self.flags,
            *flags,
        ]
        full_env = {"ARGUS_CONFIG": "", "LOG_FILE": str(self.log_dir / f"gateway-{self.port}.jsonl"), **(env or {})}
        self.proc = Proc(argv, full_env, self.log_dir, f"gateway-{self.port}")
        self.procs.append(self.proc)
        try:
            wait_port(self.port, 20)
        except TimeoutError:
            raise RuntimeError(f"gateway did not start on :{self.port}\n{self.proc.log()}") from None
        return self.port

    def kill(self) -> None:
        """SIGKILL: no drain, no close frames; the port is free again once it returns."""
        assert self.proc is not None
        self.proc.stop(signal.SIGKILL)
