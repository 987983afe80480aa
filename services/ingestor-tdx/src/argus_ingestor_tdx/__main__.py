"""`argus-ingestor-tdx`: the shared ingestor CLI plus the TDX flags and environment variables."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from argus_ingestor.main import main as ingestor_main

FLAG_KEYS = {
    "hosts": "datasource.options.tdx.hosts",
    "interval": "datasource.options.tdx.interval",
    "schedule": "datasource.options.tdx.schedule",
    "workers": "datasource.options.tdx.workers",
    "timeout": "datasource.options.tdx.timeout",
}

ENV_KEYS = {
    "TDX_HOSTS": "datasource.options.tdx.hosts",
    "TDX_INTERVAL": "datasource.options.tdx.interval",
    "TDX_SCHEDULE": "datasource.options.tdx.schedule",
    "TDX_WORKERS": "datasource.options.tdx.workers",
    "TDX_TIMEOUT": "datasource.options.tdx.timeout",
    "TDX_HOLIDAYS": "datasource.options.tdx.holidays",
}


def _host_list(raw: str) -> list[str]:
    return [item.strip() for item in raw.split(",") if item.strip()]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("tdx")
    group.add_argument("--hosts", type=_host_list, help="TDX servers, host:port,... (datasource.options.tdx.hosts)")
    group.add_argument("--interval", type=float, help="seconds between quote polls (default 3)")
    group.add_argument("--schedule", choices=["exchange", "always"], help="poll in exchange sessions only, or always")
    group.add_argument("--workers", type=int, help="parallel TDX connections (default 2)")
    group.add_argument("--timeout", type=float, help="socket timeout per TDX request, seconds (default 5)")


def main(argv: Sequence[str] | None = None) -> int:
    return ingestor_main(
        "tdx",
        argv,
        add_arguments=add_arguments,
        flag_keys=FLAG_KEYS,
        env_keys=ENV_KEYS,
        description="Poll TDX (通达信) servers for the symbols clients want and publish Argus events to NATS.",
    )


if __name__ == "__main__":
    sys.exit(main())
