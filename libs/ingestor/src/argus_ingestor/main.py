"""The command line every ingestor service shares: config layers, logging, ops server, runner."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from argus_protocol import Stream, parse_stream_key, validate_stream
from argus_service.config import Config, ConfigError, common_arguments, load_config
from argus_service.health import OpsServer
from argus_service.logs import setup_logging
from argus_service.process import Abandoned, install_stop_signals, run, until_stopped
from argus_service.tracing import setup_tracing
from prometheus_client import CollectorRegistry

from .failover import Failover
from .lease import SourceLease, lease_key
from .registry import UnknownSource, load_source
from .runner import Runner

log = logging.getLogger("argus.ingestor")


def parse_always_on(items: Sequence[str]) -> list[Stream]:
    """Config `datasource.always_on`: stream keys, or bare symbols meaning their quote stream."""
    out = []
    for item in items:
        try:
            out.append(parse_stream_key(item) if ":" in item else validate_stream("quote", item))
        except ValueError as e:
            raise ConfigError(f"config error: datasource.always_on: {item!r}: {e}") from None
    return out


def source_options(cfg: Config, name: str) -> dict[str, Any]:
    opts = dict(cfg.datasource.options.get(name, {}))
    opts.setdefault("update_interval", cfg.datasource.update_interval)
    return opts


def main(
    source_name: str,
    argv: Sequence[str] | None = None,
    *,
    add_arguments: Callable[[argparse.ArgumentParser], None] | None = None,
    flag_keys: Mapping[str, str] | None = None,
    env_keys: Mapping[str, str] | None = None,
    description: str = "",
) -> int:
    """Entry point of `argus-ingestor-<source>`; returns the exit code (2 on bad config)."""
    parser = argparse.ArgumentParser(prog=f"argus-ingestor-{source_name}", description=description)
    common_arguments(parser)
    if add_arguments is not None:
        add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        cfg = load_config(args, os.environ, flag_keys, env_keys)
        always_on = parse_always_on(cfg.datasource.always_on)
        source_cls = load_source(source_name)
    except (ConfigError, UnknownSource) as e:
        print(f"argus-ingestor-{source_name}: {e}", file=sys.stderr)
        return 2
    try:  # every value is checked before anything is set up (logs, tracing, sockets)
        source = source_cls(source_options(cfg, source_name))
    except (ValueError, TypeError) as e:
        print(f"argus-ingestor-{source_name}: config error: datasource.options.{source_name}: {e}", file=sys.stderr)
        return 2
    setup_logging(
        f"ingestor-{source_name}",
        cfg.logging.level,
        _ingestor_log_file(cfg.logging.file, source_name),
        cfg.logging.max_bytes,
        cfg.logging.backup_count,
        cfg.logging.format,
    )
    try:
        tracing = setup_tracing(f"ingestor-{source_name}", cfg.tracing)
    except ConfigError as e:
        print(f"argus-ingestor-{source_name}: {e}", file=sys.stderr)
        return 2

    async def amain() -> int:
        stop = asyncio.Event()
        install_stop_signals(stop)
        registry = CollectorRegistry()
        name = source.name  # the mock can run under another name (failover drills)
        lease = SourceLease(lease_key(name, cfg.nats.subject_prefix), cfg.lease, registry=registry, source=name)
        failover = None
        if cfg.failover.markets:
            failover = Failover(
                cfg.failover,
                cfg.lease,
                name,
                subject_prefix=cfg.nats.subject_prefix,
                may_hold=lambda: lease.held,
                state=lambda: runner.board.overall.state,
            )
        runner = Runner(
            source, cfg, registry, always_on=always_on, tracer=tracing.tracer, lease=lease, failover=failover
        )
        ops = OpsServer(registry, runner.ready)
        if cfg.metrics.enabled:
            await ops.start(cfg.metrics.host, cfg.metrics.port)
        log.info("ingestor starting", extra={"source": source_name, "nats": cfg.nats.url, "metrics_port": ops.port})
        try:
            await until_stopped(runner.run(stop), stop, lambda: runner.nc is not None and runner.nc.is_reconnecting)
        except Abandoned:
            await runner.close()  # stuck on a NATS that went away: close what was opened
        except ConnectionError:
            pass
        finally:
            await ops.stop()
            tracing.shutdown()
        log.info("ingestor stopped", extra={"source": source_name})
        return 0

    return run(amain)


def _ingestor_log_file(path: str, source: str) -> str:
    """Each ingestor gets its own file beside the gateway's (`logs/ingestor-mock.log`)."""
    if not path:
        return ""
    return str(Path(path).with_name(f"ingestor-{source}.log"))  # Windows paths too (QMT runs there)
