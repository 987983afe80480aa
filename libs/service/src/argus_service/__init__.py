"""Process plumbing shared by Argus services."""

from .config import Config, ConfigError, build_config, common_arguments, load_config
from .health import OpsServer
from .logs import setup_logging
from .natsconn import connect_nats

__all__ = [
    "Config",
    "ConfigError",
    "OpsServer",
    "build_config",
    "common_arguments",
    "connect_nats",
    "load_config",
    "setup_logging",
]
