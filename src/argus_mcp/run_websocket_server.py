"""Compatibility entry point for the original server: `python src/argus_mcp/run_websocket_server.py`.

The original command ran one process; Argus runs NATS, an ingestor and a gateway. This shim keeps
the old command line (--host --port --config --log-level --enable-auth, and the environment
variables WEBSOCKET_HOST, WEBSOCKET_PORT, DATASOURCE_TYPE, LOG_LEVEL, ENABLE_AUTH) and starts that
stack with `make run`'s launcher (scripts/run_local_stack.py). README: "Coming from the original server".
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VENV_PYTHON = ROOT / ".venv" / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
LAUNCHER = ROOT / "scripts" / "run_local_stack.py"


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="run_websocket_server.py",
        description="Start Argus (NATS, the ingestor for DATASOURCE_TYPE, the gateway) as the original server did.",
        epilog="New deployments: `make run`, or the services on their own (README: Deployment).",
    )
    p.add_argument("--host", help="listen address (WEBSOCKET_HOST, server.host)")
    p.add_argument("--port", help="WebSocket port (WEBSOCKET_PORT, server.port)")
    p.add_argument("--config", help="config file; the original config/websocket_config.yaml keys still apply")
    p.add_argument("--log-level", help="DEBUG, INFO, WARNING, ERROR (LOG_LEVEL)")
    p.add_argument("--enable-auth", action="store_true", help="require an API key or JWT (ENABLE_AUTH)")
    return p.parse_args(argv)


def environment(args: argparse.Namespace, base: dict[str, str]) -> dict[str, str]:
    """The old flags as the variables every Argus service reads (flags win over variables, as before)."""
    env = dict(base)
    if args.host:
        env["WEBSOCKET_HOST"] = args.host
    if args.port:
        env["WEBSOCKET_PORT"] = args.port
    if args.config:
        env["ARGUS_CONFIG"] = str(Path(args.config).resolve())
    if args.log_level:
        env["LOG_LEVEL"] = args.log_level
    if args.enable_auth:
        env["ENABLE_AUTH"] = "true"
    return env


def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    env = environment(args, dict(os.environ))
    if not VENV_PYTHON.exists():
        print(
            "run_websocket_server.py: run `make install` (or `make run`) once first: it creates .venv", file=sys.stderr
        )
        return 2
    # the services are installed in .venv, whichever python ran this file
    os.execve(str(VENV_PYTHON), [str(VENV_PYTHON), str(LAUNCHER)], env)
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
