"""`argus-ingestor-mock`: the simulated market under the shared ingestor runner."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from argus_ingestor.main import main as ingestor_main

FLAG_KEYS = {
    "rate": "datasource.options.mock.rate",
    "universe": "datasource.options.mock.universe",
    "seed": "datasource.options.mock.seed",
    "schedule": "datasource.options.mock.schedule",
    "history": "datasource.options.mock.history",
    "history_periods": "datasource.options.mock.history_periods",
    "history_trades": "datasource.options.mock.history_trades",
    "name": "datasource.options.mock.name",
    "book": "datasource.options.mock.book",
    "steps": "datasource.options.mock.steps",
}
ENV_KEYS = {
    "MOCK_RATE": "datasource.options.mock.rate",
    "MOCK_UNIVERSE": "datasource.options.mock.universe",
    "MOCK_SEED": "datasource.options.mock.seed",
    "MOCK_SCHEDULE": "datasource.options.mock.schedule",
    "MOCK_HISTORY": "datasource.options.mock.history",
    "MOCK_HISTORY_PERIODS": "datasource.options.mock.history_periods",
    "MOCK_HISTORY_TRADES": "datasource.options.mock.history_trades",
    "MOCK_NAME": "datasource.options.mock.name",
    "MOCK_BOOK": "datasource.options.mock.book",
    "MOCK_STEPS": "datasource.options.mock.steps",
}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--rate", type=float, help="updates per second per symbol (default 1/datasource.update_interval)")
    p.add_argument("--universe", type=int, help="always-on symbols 000001.SZ, 000002.SZ, ... (default 10)")
    p.add_argument("--seed", type=int, help="make prices repeatable")
    p.add_argument("--schedule", choices=["always", "cn"], help="always (default) or the A-share sessions")
    p.add_argument(
        "--history", type=int, help="closed bars seeded per period when a symbol starts (default 300, 0: none)"
    )
    p.add_argument(
        "--history-periods", help="kline periods seeded, comma-separated (default all: 1m,5m,15m,30m,60m,1d)"
    )
    p.add_argument("--history-trades", type=int, help="trades seeded per symbol (default 200)")
    p.add_argument(
        "--book", choices=["true", "false"], help="quotes with the 5-level book (default true; false: like Yahoo's)"
    )
    p.add_argument(
        "--steps", type=float, help="steps per second the updates are spread over (default 50; = rate: one burst)"
    )
    p.add_argument("--name", help="the source name it publishes as (default mock; another to drill failover)")


def main(argv: Sequence[str] | None = None) -> int:
    return ingestor_main(
        "mock",
        argv,
        add_arguments=add_arguments,
        flag_keys=FLAG_KEYS,
        env_keys=ENV_KEYS,
        description="Argus simulated market",
    )


if __name__ == "__main__":
    sys.exit(main())
