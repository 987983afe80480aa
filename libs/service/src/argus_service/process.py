"""Running a service's main coroutine: event loop choice and stop signals, on POSIX and Windows."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Callable, Coroutine
from typing import Any

log = logging.getLogger("argus.process")


def install_stop_signals(stop: asyncio.Event) -> None:
    """SIGTERM/SIGINT set `stop`; Windows has no loop signal handlers, so use signal.signal there."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError, ValueError):
            signal.signal(sig, lambda *_: loop.call_soon_threadsafe(stop.set))


def run(main: Callable[[], Coroutine[Any, Any, int]], use_uvloop: bool = True) -> int:
    """Run `main` on uvloop when installed (never required), else plain asyncio."""
    if use_uvloop and sys.platform != "win32":
        try:
            import uvloop

            return int(uvloop.run(main()))
        except ImportError:
            pass
    return int(asyncio.run(main()))
