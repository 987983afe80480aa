"""Running a service's main coroutine: event loop choice and stop signals, on POSIX and Windows."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from collections.abc import Callable, Coroutine
from typing import Any

log = logging.getLogger("argus.process")


# SIGHUP too: a closed terminal must stop a service as cleanly as Ctrl-C does.
STOP_SIGNALS: tuple[signal.Signals, ...] = tuple(
    getattr(signal, name) for name in ("SIGTERM", "SIGINT", "SIGHUP") if hasattr(signal, name)
)


def install_stop_signals(stop: asyncio.Event) -> None:
    """SIGTERM/SIGINT/SIGHUP set `stop`; Windows has no loop signal handlers, so use signal.signal there.

    A second signal while stopping exits at once: an operator pressing Ctrl-C twice means now.
    """
    loop = asyncio.get_running_loop()

    def on_signal(sig: int) -> None:
        if stop.is_set():
            log.warning("second stop signal; exiting now", extra={"signal": signal.Signals(sig).name})
            os._exit(128 + sig)
        log.info("stop signal", extra={"signal": signal.Signals(sig).name})
        stop.set()

    for sig in STOP_SIGNALS:
        try:
            loop.add_signal_handler(sig, on_signal, sig)
        except (NotImplementedError, RuntimeError, ValueError):
            signal.signal(sig, lambda signum, _frame: loop.call_soon_threadsafe(on_signal, signum))


def run(main: Callable[[], Coroutine[Any, Any, int]], use_uvloop: bool = True) -> int:
    """Run `main` on uvloop when installed (never required), else plain asyncio."""
    if use_uvloop and sys.platform != "win32":
        try:
            import uvloop

            return int(uvloop.run(main()))
        except ImportError:
            pass
    return int(asyncio.run(main()))
