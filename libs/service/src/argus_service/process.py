"""Running a service's main coroutine: event loop choice and stop signals, on POSIX and Windows."""

from __future__ import annotations

import asyncio
import gc
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


GC_THRESHOLDS = (50_000, 50, 1000)


def tune_gc() -> None:
    """Fewer, younger garbage collections. A gateway holding thousands of sessions spent seconds
    of a subscribe wave in full collections of its whole heap (py-spy: the cost showed on every
    line that allocates); its hot-path objects do not form cycles, so young collections suffice."""
    gc.freeze()  # what start-up built (modules, config) is never scanned again
    gc.set_threshold(*GC_THRESHOLDS)


def run(main: Callable[[], Coroutine[Any, Any, int]], use_uvloop: bool = True) -> int:
    """Run `main` on uvloop when installed (never required), else plain asyncio."""
    tune_gc()
    if use_uvloop and sys.platform != "win32":
        try:
            import uvloop

            return int(uvloop.run(main()))
        except ImportError:
            pass
    return int(asyncio.run(main()))
