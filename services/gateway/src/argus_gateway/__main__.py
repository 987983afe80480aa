"""`argus-gateway`: config layers, logging, ops endpoint, the gateway, drain on SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import warnings
from collections.abc import Sequence

import jwt
from argus_service.config import ConfigError, common_arguments, load_config
from argus_service.health import OpsServer
from argus_service.logs import setup_logging
from argus_service.process import install_stop_signals, run, until_stopped
from prometheus_client import CollectorRegistry

from .auth import load_public_key
from .server import Gateway

log = logging.getLogger("argus.gateway")

FLAG_KEYS = {
    "max_connections": "server.max_connections",
    "max_subscriptions": "server.max_subscriptions_per_client",
    "slow_consumer": "server.slow_consumer",
    "outbox_bytes": "server.outbox_bytes",
    "enable_auth": "security.enable_auth",
    "heartbeat_interval": "server.heartbeat_interval",
}


# The gateway's own variables (the shared ones are argus_service.config.ENV_KEYS).
ENV_KEYS = {
    "ARGUS_JWT_PUBLIC_KEY": "security.jwt_public_key",
    "ARGUS_JWT_JWKS_URL": "security.jwt_jwks_url",
    "ARGUS_JWT_AUDIENCE": "security.jwt_audience",
    "ARGUS_JWT_ISSUER": "security.jwt_issuer",
    "MAX_CONNECTIONS_PER_IP": "server.max_connections_per_ip",
}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="argus-gateway", description="Argus WebSocket market-data gateway")
    common_arguments(p)
    p.add_argument("--max-connections", type=int, help="server.max_connections")
    p.add_argument("--max-subscriptions", type=int, help="server.max_subscriptions_per_client")
    p.add_argument("--slow-consumer", choices=["gap", "close"], help="server.slow_consumer")
    p.add_argument("--outbox-bytes", type=int, help="server.outbox_bytes")
    p.add_argument("--heartbeat-interval", type=float, help="server.heartbeat_interval")
    p.add_argument("--enable-auth", action="store_true", default=None, help="security.enable_auth")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        cfg = load_config(args, os.environ, FLAG_KEYS, ENV_KEYS)
        if cfg.security.jwt_public_key:
            load_public_key(cfg.security.jwt_public_key)
    except (ConfigError, ValueError, OSError) as e:
        print(f"argus-gateway: {e}", file=sys.stderr)
        return 2
    # The short-secret warning is logged once at start-up, not by PyJWT on every token.
    warnings.filterwarnings("ignore", category=jwt.InsecureKeyLengthWarning)
    lc = cfg.logging
    setup_logging("gateway", lc.level, lc.file, lc.max_bytes, lc.backup_count, lc.format)
    if cfg.security.enable_auth and not cfg.security.api_keys and not cfg.security.jwt_secret:
        log.warning(
            "auth is enabled but no API key (ARGUS_API_KEYS) or JWT secret (ARGUS_JWT_SECRET) is set: "
            "every client will be refused"
        )

    async def amain() -> int:
        stop = asyncio.Event()
        install_stop_signals(stop)
        registry = CollectorRegistry()
        gateway = Gateway(cfg, registry)
        ops = OpsServer(registry, gateway.ready)
        if cfg.metrics.enabled:
            await ops.start(cfg.metrics.host, cfg.metrics.port)
        try:  # a stop while NATS is gone mid-start (a JetStream call waiting) ends the start at once
            await until_stopped(
                gateway.start(stop), stop, lambda: gateway.nc is not None and gateway.nc.is_reconnecting
            )
        except ConnectionError:
            await ops.stop()
            return 0
        except OSError as e:
            log.error("cannot listen", extra={"host": cfg.server.host, "port": cfg.server.port, "error": str(e)})
            await ops.stop()
            return 1
        await stop.wait()
        await gateway.drain()
        await gateway.stop()
        await ops.stop()
        return 0

    return run(amain)


if __name__ == "__main__":
    sys.exit(main())
