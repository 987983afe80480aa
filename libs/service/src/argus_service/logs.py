"""Structured logging: one JSON object per line to stderr and, optionally, to a rotating file."""

from __future__ import annotations

import logging
import logging.handlers
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

_RESERVED = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "service": self.service,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _RESERVED and not key.startswith("_"):
                line[key] = value
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=str).decode()


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        extra = " ".join(f"{k}={v}" for k, v in record.__dict__.items() if k not in _RESERVED and not k.startswith("_"))
        base = f"{datetime.fromtimestamp(record.created).isoformat(timespec='milliseconds')} {record.levelname:<7} {record.name}: {record.getMessage()}"
        text = f"{base} {extra}" if extra else base
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


def setup_logging(
    service: str,
    level: str = "INFO",
    file: str = "",
    max_bytes: int = 10 * 1024 * 1024,
    backup_count: int = 5,
    fmt: str = "json",
) -> None:
    """Configure the root logger for a service process (called once, from main).

    `file` "" means stderr only. A file that cannot be opened (read-only working directory, as in a
    container with a read-only root) is reported once and skipped: logging must never stop a service.
    """
    formatter: logging.Formatter = JsonFormatter(service) if fmt == "json" else TextFormatter()
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    stderr = logging.StreamHandler(sys.stderr)
    stderr.setFormatter(formatter)
    root.addHandler(stderr)
    root.setLevel(level)
    # aiohttp logs every access line; keep it quiet unless debugging.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    if file:
        try:
            Path(file).parent.mkdir(parents=True, exist_ok=True)
            rotating = logging.handlers.RotatingFileHandler(
                file, maxBytes=max_bytes, backupCount=backup_count, encoding="utf-8"
            )
        except OSError as e:
            logging.getLogger("argus.logs").warning(
                "log file unavailable; logging to stderr only (set LOG_FILE= to turn the file off)",
                extra={"file": file, "error": e.strerror or repr(e)},
            )
            return
        rotating.setFormatter(formatter)
        root.addHandler(rotating)
