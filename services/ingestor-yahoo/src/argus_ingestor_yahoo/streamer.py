"""Our own receive loop over Yahoo's pricing WebSocket (aiohttp client).

yfinance's `AsyncWebSocket.listen()` spins after a clean close and never reconnects after an
abnormal one, so only its message format and decoder are used (decode.py). This loop reconnects
after *any* close or error with exponential backoff and jitter, re-sends the whole subscription on
every connect and every `resubscribe_interval`, and survives garbage frames.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable

import aiohttp

from .decode import DecodeError, Pricing, decode_frame, subscribe_message, unsubscribe_message

log = logging.getLogger("argus.yahoo")


class Streamer:
    """`set_tickers()` any time; `on_pricing` gets each decoded message, `on_state` connection changes."""

    def __init__(
        self,
        url: str,
        on_pricing: Callable[[Pricing], None],
        on_state: Callable[[bool, str], None],
        on_error: Callable[[str], None],
        *,
        resubscribe_interval: float = 15.0,
        heartbeat: float = 20.0,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
    ) -> None:
        self.url = url
        self.on_pricing = on_pricing
        self.on_state = on_state
        self.on_error = on_error
        self.resubscribe_interval = resubscribe_interval
        self.heartbeat = heartbeat
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.tickers: frozenset[str] = frozenset()
        self.connects = 0  # successful connections so far (reconnects = connects - 1)
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._sends: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="yahoo-streamer")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def set_tickers(self, tickers: frozenset[str]) -> None:
        """Follow a new set: subscribe the whole list (as yfinance does), unsubscribe the dropped."""
        old, self.tickers = self.tickers, tickers
        ws = self._ws
        if ws is not None and not ws.closed:
            gone = sorted(old - tickers)
            if gone:
                self._send(ws, unsubscribe_message(gone))
            if tickers - old:
                self._send(ws, subscribe_message(sorted(tickers)))
        self._wake.set()  # a loop waiting for its first ticker connects now

    def _send(self, ws: aiohttp.ClientWebSocketResponse, text: str) -> None:
        async def send() -> None:
            with contextlib.suppress(Exception):  # a dying connection: the receive loop reconnects
                await ws.send_str(text)

        task = asyncio.get_running_loop().create_task(send())
        self._sends.add(task)  # keep a reference until it is done
        task.add_done_callback(self._sends.discard)

    def _backoff(self, failures: int) -> float:
        cap = min(self.backoff_max, self.backoff_initial * 2 ** min(failures, 30))
        return random.uniform(cap / 2, cap)  # jitter: reconnecting ingestors do not stampede Yahoo

    async def _run(self) -> None:
        failures = 0
        async with aiohttp.ClientSession() as http:
            while True:
                while not self.tickers:  # nothing wanted: no connection
                    self._wake.clear()
                    await self._wake.wait()
                try:
                    got_data, reason = await self._session(http)
                except Exception as e:  # a bug must not end the stream: log, back off, reconnect
                    log.exception("yahoo streamer failed")
                    self.on_error("streamer")
                    got_data, reason = False, f"internal error: {e!r}"
                failures = 0 if got_data else failures + 1
                self.on_state(False, reason)
                delay = self._backoff(failures)
                log.warning("yahoo streamer closed", extra={"reason": reason, "retry_in": round(delay, 2)})
                await asyncio.sleep(delay)

    async def _session(self, http: aiohttp.ClientSession) -> tuple[bool, str]:
        """One connection, until it closes; returns (delivered any pricing, why it ended)."""
        got_data = False
        try:
            ws = await http.ws_connect(self.url, heartbeat=self.heartbeat, autoping=True)
        except (aiohttp.ClientError, OSError, TimeoutError) as e:
            self.on_error("connect")
            return False, f"connect failed: {e!r}"
        self._ws = ws
        self.connects += 1
        resub = asyncio.create_task(self._resubscribe(ws), name="yahoo-resubscribe")
        try:
            if self.tickers:
                await ws.send_str(subscribe_message(sorted(self.tickers)))
            self.on_state(True, "connected")
            async for msg in ws:
                if msg.type not in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                    break  # ERROR: the iterator ends on close frames by itself
                try:
                    pricing = decode_frame(msg.data)
                except DecodeError as e:
                    self.on_error("decode")
                    log.debug("yahoo frame skipped", extra={"error": str(e)})
                    continue
                if pricing is not None:
                    got_data = True
                    try:
                        self.on_pricing(pricing)
                    except Exception:  # one bad message must not drop the connection
                        log.exception("yahoo pricing handler failed", extra={"ticker": pricing.id})
                        self.on_error("handler")
            reason = f"closed by server: code {ws.close_code}" if ws.close_code is not None else "connection lost"
            if ws.exception() is not None:
                reason = f"connection error: {ws.exception()!r}"
        except (aiohttp.ClientError, OSError, TimeoutError) as e:
            reason = f"connection error: {e!r}"
        finally:
            resub.cancel()
            self._ws = None
            with contextlib.suppress(Exception):
                await ws.close()
        if reason != "closed by server: code 1000":
            self.on_error("disconnect")
        return got_data, reason

    async def _resubscribe(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        while not ws.closed:
            await asyncio.sleep(self.resubscribe_interval)
            if self.tickers and not ws.closed:
                with contextlib.suppress(Exception):
                    await ws.send_str(subscribe_message(sorted(self.tickers)))
