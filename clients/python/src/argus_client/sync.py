"""A blocking facade over ArgusClient for scripts and notebooks.

The async client runs on an event loop of its own in a daemon thread, so this works where the
calling thread already runs a loop (Jupyter, IPython), where `asyncio.run` refuses, and a slow
consumer in the calling thread never delays the socket reader.

    c = ArgusClient.sync("ws://localhost:8765/")
    c.subscribe(["000001.SZ"], ["kline"], history=240)
    for event in c.events(timeout=5):   # stops after 5 s without an event
        ...
    c.close()
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Any, TypeVar

from .client import ArgusClient, event_kinds
from .models import Subscribed, Subscriptions

T = TypeVar("T")


class SyncArgusClient:
    def __init__(self, url: str | Sequence[str], **options: Any) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="argus-client-loop", daemon=True)
        self._thread.start()

        async def make() -> ArgusClient:
            client = ArgusClient(url, **options)
            await client.start()
            return client

        try:
            self.client: ArgusClient = self._call(make())
        except BaseException:
            self._stop_loop()
            raise
        self._closed = False
        self._handlers: dict[str, list[Callable[[Any], Any]]] = {}

    def _call(self, coro: Awaitable[T], timeout: float | None = None) -> T:
        async def run() -> T:
            return await coro

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(timeout)

    # ------------------------------------------------------------------ requests
    def wait_connected(self, timeout: float | None = None) -> None:
        self._call(self.client.wait_connected(timeout))

    def subscribe(self, symbols: Sequence[str] | str, *args: Any, **kw: Any) -> Subscribed | None:
        """As ArgusClient.subscribe, blocking until the gateway replies."""
        return self._call(self.client.subscribe(symbols, *args, **kw))

    def unsubscribe(self, *args: Any, **kw: Any) -> list[str]:
        return self._call(self.client.unsubscribe(*args, **kw))

    def subscriptions(self) -> Subscriptions:
        return self._call(self.client.subscriptions())

    def stats(self) -> dict[str, int]:
        return self._call(_value(self.client.stats))

    # ------------------------------------------------------------------ reading
    def next_event(self, timeout: float | None = None) -> Any:
        """The next event, or None after `timeout` seconds (or once closed)."""
        return self._call(self.client.next_event(timeout))

    def events(self, timeout: float | None = None) -> Iterator[Any]:
        """Events as they come; ends after `timeout` seconds without one, or when closed."""
        while True:
            event = self.next_event(timeout)
            if event is None:
                return
            yield event

    def __iter__(self) -> Iterator[Any]:
        return self.events()

    def on(self, kind: str, handler: Callable[[Any], Any] | None = None) -> Any:
        """Register a handler for `run()`; it is called in the thread that calls `run()`."""

        def add(fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
            self._handlers.setdefault(kind, []).append(fn)
            return fn

        return add(handler) if handler is not None else add

    def run(self, timeout: float | None = None) -> None:
        """Call the handlers for each event in this thread; returns when closed (or after
        `timeout` seconds without an event)."""
        for event in self.events(timeout):
            for kind in (*event_kinds(event), "*"):
                for fn in self._handlers.get(kind, ()):
                    fn(event)

    # ------------------------------------------------------------------ lifecycle
    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._call(self.client.close(), timeout=10)
        finally:
            self._stop_loop()

    def _stop_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def __enter__(self) -> SyncArgusClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def closed(self) -> bool:
        return self.client.closed


async def _value(fn: Callable[[], T]) -> T:
    return fn()
