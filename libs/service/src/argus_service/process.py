"""Running a service's main coroutine: event loop choice and stop signals, on POSIX and Windows."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

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


class Abandoned(ConnectionError):
    """`stop` was set and the work was cancelled: waiting for it could not have achieved anything."""


async def until_stopped(
    work: Awaitable[T], stop: asyncio.Event, pointless: Callable[[], bool], grace: float = 6.0
) -> T:
    """Await `work`; once `stop` is set, keep waiting only while `pointless()` is False, `grace` s at most.

    A service asked to stop lets its work finish cleanly (a drain of at most 5 s, a source's stop),
    except when that work waits on something gone or stuck: a JetStream call on a NATS that is
    reconnecting, or on a JetStream that does not answer, would hold a SIGTERM for its timeouts.
    Then the work is cancelled and Abandoned is raised.
    """
    task = asyncio.ensure_future(work)
    stopper = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
        deadline = asyncio.get_running_loop().time() + grace
        while not task.done():
            if pointless() or asyncio.get_running_loop().time() >= deadline:
                log.warning("stop: abandoning work that waits on NATS", extra={"grace": grace})
                task.cancel()
                break
            await asyncio.wait({task}, timeout=0.1)
        try:
            return await task
        except asyncio.CancelledError:
            if task.cancelled() and stop.is_set():
                raise Abandoned("stopped while waiting on NATS") from None
            raise
    finally:
        stopper.cancel()


GC_THRESHOLDS = (50_000, 50, 1000)


def tune_gc() -> None:
    """Fewer, younger garbage collections. A gateway holding thousands of sessions spent seconds
    of a subscribe wave in full collections of its whole heap (py-spy: the cost showed on every
    line that allocates); its hot-path objects do not form cycles, so young collections suffice."""
    gc.freeze()  # what start-up built (modules, config) is never scanned again
    gc.set_threshold(*GC_THRESHOLDS)


LEFTOVER_GRACE = 1.0  # seconds tasks still running when `main` returned get to finish their cancel


async def _then_leftovers(main: Callable[[], Coroutine[Any, Any, int]]) -> int:
    """`main`, then cancel what it left running; a task that ignores its cancel (a library's
    retry loop swallowing CancelledError) cannot keep the process alive: it exits anyway."""
    code = 1
    try:
        code = int(await main())
    finally:
        me = asyncio.current_task()
        rest = [t for t in asyncio.all_tasks() if t is not me and not t.done()]
        for t in rest:
            t.cancel()
        if rest:
            _, stuck = await asyncio.wait(rest, timeout=LEFTOVER_GRACE)
            if stuck:
                names = ", ".join(sorted({getattr(t.get_coro(), "__qualname__", t.get_name()) for t in stuck}))
                log.warning(f"exiting with tasks that ignored their cancel: {names}")
                logging.shutdown()
                os._exit(code)
    return code


def run(main: Callable[[], Coroutine[Any, Any, int]], use_uvloop: bool = True) -> int:
    """Run `main` on uvloop when installed (never required), else plain asyncio."""
    tune_gc()
    if use_uvloop and sys.platform != "win32":
        try:
            import uvloop

            return int(uvloop.run(_then_leftovers(main)))
        except ImportError:
            pass
    return int(asyncio.run(_then_leftovers(main)))
