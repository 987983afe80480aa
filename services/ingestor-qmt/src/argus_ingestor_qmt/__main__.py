"""`argus-ingestor-qmt` / `python -m argus_ingestor_qmt`: the shared ingestor CLI plus QMT's flags and variables."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from argus_ingestor.main import main as ingestor_main

FLAG_KEYS = {
    "qmt_host": "datasource.options.qmt.host",
    "qmt_port": "datasource.options.qmt.port",
    "level2": "datasource.options.qmt.level2",
    "whole_quote_threshold": "datasource.options.qmt.whole_quote_threshold",
    "nats_creds": "nats.creds",
    "nats_tls_ca": "nats.tls_ca",
}

ENV_KEYS = {
    "QMT_HOST": "datasource.options.qmt.host",
    "QMT_PORT": "datasource.options.qmt.port",
    "QMT_LEVEL2": "datasource.options.qmt.level2",
    "QMT_WHOLE_QUOTE_THRESHOLD": "datasource.options.qmt.whole_quote_threshold",
    "QMT_BAR_LABEL": "datasource.options.qmt.bar_label",
    "QMT_XTDATA_MODULE": "datasource.options.qmt.xtdata_module",
}  # NATS_USER/NATS_PASSWORD/NATS_TOKEN/NATS_CREDS/NATS_TLS_CA are mapped suite-wide in argus_service


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("qmt")
    group.add_argument("--qmt-host", help="MiniQMT xtdata host (default: the local MiniQMT)")
    group.add_argument("--qmt-port", type=int, help="MiniQMT xtdata port (default: found by xtquant)")
    group.add_argument(
        "--level2", action="store_true", default=None, help="the account has Level-2: trades from l2transaction"
    )
    group.add_argument(
        "--whole-quote-threshold", type=int, help="above this many quote symbols use subscribe_whole_quote (50)"
    )
    group.add_argument("--nats-creds", help="NATS credentials file (nats.creds)")
    group.add_argument("--nats-tls-ca", help="CA bundle for a tls:// NATS (nats.tls_ca)")


def main(argv: Sequence[str] | None = None) -> int:
    return ingestor_main(
        "qmt",
        argv,
        add_arguments=add_arguments,
        flag_keys=FLAG_KEYS,
        env_keys=ENV_KEYS,
        description="Follow the symbols clients want through MiniQMT (xtquant.xtdata) and publish Argus events to NATS.",
    )


if __name__ == "__main__":
    sys.exit(main())
