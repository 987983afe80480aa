"""`argus-ingestor-yahoo`: the shared ingestor CLI plus the Yahoo flags and environment variables."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from argus_ingestor.main import main as ingestor_main

FLAG_KEYS = {
    "ws_url": "datasource.options.yahoo.ws_url",
    "chart_url": "datasource.options.yahoo.chart_url",
    "poll_interval": "datasource.options.yahoo.poll_interval",
    "stale_after": "datasource.options.yahoo.stale_after",
    "schedule": "datasource.options.yahoo.schedule",
}

ENV_KEYS = {
    "YAHOO_WS_URL": "datasource.options.yahoo.ws_url",
    "YAHOO_CHART_URL": "datasource.options.yahoo.chart_url",
    "YAHOO_POLL_INTERVAL": "datasource.options.yahoo.poll_interval",
    "YAHOO_POLL_WORKERS": "datasource.options.yahoo.poll_workers",
    "YAHOO_STALE_AFTER": "datasource.options.yahoo.stale_after",
    "YAHOO_SCHEDULE": "datasource.options.yahoo.schedule",
    "YAHOO_CACHE_DIR": "datasource.options.yahoo.cache_dir",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("yahoo")
    group.add_argument("--ws-url", dest="ws_url", help="Yahoo pricing WebSocket (datasource.options.yahoo.ws_url)")
    group.add_argument("--chart-url", dest="chart_url", help="chart API base URL every yfinance request goes to")
    group.add_argument("--poll-interval", dest="poll_interval", type=float, help="seconds between chart polls (30)")
    group.add_argument("--stale-after", dest="stale_after", type=float, help="seconds without a price → stale (60)")
    group.add_argument("--schedule", choices=["exchange", "always"], help="market sessions, or always in session")


def main(argv: Sequence[str] | None = None) -> int:
    return ingestor_main(
        "yahoo",
        argv,
        add_arguments=add_arguments,
        flag_keys=FLAG_KEYS,
        env_keys=ENV_KEYS,
        description="Stream Yahoo Finance prices and poll its chart API for the symbols clients want; publish to NATS.",
    )


if __name__ == "__main__":
    sys.exit(main())
