"""ArgusClient: one logical feed that outlives any single WebSocket session.

A background task owns the connection: it connects (rotating over the given URLs), resubscribes
everything with `resume` at the last seq of each stream, reads every frame as it arrives into a
bounded `Inbox`, and reconnects after a close, an error or a silent socket, with backoff. The
application reads the inbox (`async for event in client`, or handlers through `run()`), so it sees
each event once, every loss as a `Gap`, and every connection change as `Connected`/`Disconnected`.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import itertools
import logging
import time
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

import aiohttp

from .backoff import Backoff
from .inbox import Inbox
from .models import (
    Connected,
    Disconnected,
    Error,
    Gap,
    KlineEvent,
    QuoteEvent,
    Replayed,
    Status,
    Subscribed,
    Subscriptions,
    TickEvent,
    TradeEvent,
    Welcome,
)
from .seqbook import SeqBook
from .wire import JSON, MSGPACK, Codec

if TYPE_CHECKING:
    from .sync import SyncArgusClient

log = logging.getLogger("argus_client")

DATA_TYPES = ("quote", "tick", "kline", "trade")
MSGPACK_SUBPROTOCOL = "argus.v1.msgpack"
JSON_SUBPROTOCOL = "argus.v1.json"
CLOSE_RESTART = 1012  # the gateway restarts: reconnect (elsewhere) after its hint
CLOSE_TRY_AGAIN = 1013  # connection limit: back off
CLOSE_POLICY = 1008
DEFAULT_RESTART_HINT = 1.0

Token = str | Callable[[], str | Awaitable[str]] | None
Handler = Callable[[Any], Any]


class ArgusError(Exception):
    """A request the gateway refused (`code` is its ERROR code)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class AuthenticationError(ArgusError):
    """The gateway refused the token; the client stops (a token callable is asked again instead)."""


class ClientClosed(Exception):
    """The client was closed."""


class _SessionLost(Exception):
    pass


class _Want:
    """What a stream asked for on its first subscribe; reused until it has a seq to resume from."""

    __slots__ = ("history", "snapshot")

    def __init__(self, history: int | str, snapshot: bool) -> None:
        self.history = history
        self.snapshot = snapshot


class _End:
    """Why a session (or an attempt) ended."""

    def __init__(self, reason: str, code: int | None = None, hint: float | None = None, welcomed: bool = False):
        self.reason = reason
        self.code = code
        self.hint = hint  # seconds the server asked us to wait
        self.welcomed = welcomed


def stream_key(data_type: str, symbol: str, period: str = "") -> str:
    return f"kline:{symbol}:{period}" if data_type == "kline" else f"{data_type}:{symbol}"


def _split_key(key: str) -> tuple[str, str, str]:
    parts = key.split(":")
    return parts[0], parts[1], parts[2] if len(parts) > 2 else ""


class ArgusClient:
    """Async client. `async with ArgusClient(url) as c: await c.subscribe([...]); async for ev in c: ...`

    url: one gateway URL or several (tried in turn on each reconnect), `ws://host:8765/`.
    token: API key or JWT (sent as `Authorization: Bearer`), or a callable returning one, asked
        on every connect so an expiring token can be refreshed.
    encoding: "json" or "msgpack"; batch / conflate_ms: the gateway's delivery options.
    backoff: reconnect policy (default: full jitter from 0.5 s up to 30 s).
    liveness_timeout: seconds without any frame after which a connected socket counts as dead
        (default: 2.5 heartbeat intervals from WELCOME, plus 1 s).
    max_queue: events that may wait for the application before trades and new bars are dropped
        (as GAP reason=client_overflow); quotes and bar versions conflate instead (inbox.py).
    stable_after: a session that lasted this long resets the backoff.
    """

    def __init__(
        self,
        url: str | Sequence[str],
        *,
        token: Token = None,
        encoding: str = JSON,
        batch: bool = False,
        conflate_ms: int = 0,
        backoff: Backoff | None = None,
        liveness_timeout: float | None = None,
        max_queue: int = 10_000,
        stable_after: float = 10.0,
        connect_timeout: float = 10.0,
        request_timeout: float = 10.0,
        headers: dict[str, str] | None = None,
        ssl: Any = True,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        urls = [url] if isinstance(url, str) else list(url)
        if not urls:
            raise ValueError("at least one gateway URL is needed")
        self.urls = [_ws_url(u) for u in urls]
        self.token = token
        self.codec = Codec(encoding)
        self.encoding = encoding
        self.batch = batch
        if not 0 <= conflate_ms <= 60_000:
            raise ValueError("conflate_ms must be 0..60000")
        self.conflate_ms = conflate_ms
        self.backoff = backoff or Backoff()
        self.liveness_timeout = liveness_timeout
        self.stable_after = stable_after
        self.connect_timeout = connect_timeout
        self.request_timeout = request_timeout
        self.headers = dict(headers or {})
        self.ssl = ssl
        self._sleep = sleep
        self._clock = clock
        self.book = SeqBook()
        self.inbox = Inbox(max_queue)
        self.welcome: Welcome | None = None
        self.url: str | None = None  # the gateway of the current session
        self.connections = 0
        self._wanted: dict[str, _Want] = {}
        self._handlers: dict[str, list[tuple[Handler, bool]]] = {}
        self._ids = itertools.count(1)
        self._replies: dict[str, asyncio.Future[Any]] = {}
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._http: aiohttp.ClientSession | None = None
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()  # a session is up and everything wanted is subscribed again
        self._closing = False
        self._fatal: BaseException | None = None
        self._leave: float | None = None  # STATUS draining: leave, come back after this many seconds
        self._unauthorized: str | None = None
        self._url_i = 0
        self._sent_token = False
        self._background: set[asyncio.Task[None]] = set()

    # ------------------------------------------------------------------ lifecycle
    @classmethod
    def sync(cls, url: str | Sequence[str], **options: Any) -> SyncArgusClient:
        """A blocking client whose event loop runs in its own thread: for scripts and Jupyter."""
        from .sync import SyncArgusClient

        return SyncArgusClient(url, **options)

    async def __aenter__(self) -> ArgusClient:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self) -> None:
        """Start connecting in the background (returns at once; see `wait_connected`)."""
        if self._task is not None:
            return
        self._http = aiohttp.ClientSession()
        self._task = asyncio.create_task(self._run(), name="argus-client")

    async def wait_connected(self, timeout: float | None = None) -> None:
        """Until a session is up and resubscribed; raises the client's fatal error, if any."""
        async with asyncio.timeout(timeout):
            await self._wait_ready()

    async def close(self) -> None:
        self._closing = True
        ws = self._ws
        if ws is not None and not ws.closed:
            with contextlib.suppress(Exception):
                await ws.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._http is not None:
            await self._http.close()
            self._http = None
        self._fail_replies(ClientClosed())
        self._ready.set()  # waiters wake up and see the client closed
        self.inbox.close()

    @property
    def closed(self) -> bool:
        return self._closing or self._fatal is not None

    @property
    def connected(self) -> bool:
        return self._ready.is_set() and not self.closed

    def stats(self) -> dict[str, int]:
        return {
            "connections": self.connections,
            "queued": len(self.inbox),
            "duplicates_dropped": self.book.duplicates,
            "conflated": self.inbox.conflated,
            "dropped_for_overflow": self.inbox.dropped,
        }

    # ------------------------------------------------------------------ subscriptions
    async def subscribe(
        self,
        symbols: Iterable[str],
        data_types: Iterable[str] = ("quote",),
        periods: Iterable[str] = ("1m",),
        *,
        history: int | str = 0,
        snapshot: bool = True,
        wait: bool = True,
        timeout: float | None = None,
    ) -> Subscribed | None:
        """Subscribe and remember it: every reconnect subscribes again, resuming each stream after
        its last seq. `history`: N entries per stream, or "day" (docs/protocol.md §4).

        With `wait` (default) returns the gateway's SUBSCRIBED (rejected items removed from what is
        remembered), waiting for a connection if there is none; raises ArgusError if the gateway
        refused the whole request. Without `wait`, returns None at once.
        """
        syms = [symbols] if isinstance(symbols, str) else list(symbols)
        types = [data_types] if isinstance(data_types, str) else list(data_types)
        pers = [periods] if isinstance(periods, str) else list(periods)
        if not (history == "day" or (isinstance(history, int) and history >= 0)):
            raise ValueError('history must be an integer >= 0 or "day"')
        keys = [stream_key(t, s, p) for s in syms for t in types for p in (pers if t == "kline" else [""])]
        data: dict[str, Any] = {"symbols": syms, "data_types": types, "periods": pers, "snapshot": snapshot}
        if history:
            data["history"] = history
        if not wait:
            self._want(keys, history, snapshot)
            if self.connected:
                self._spawn_request("SUBSCRIBE", {**data, **self._resume_of(keys)}, keys)
            return None
        async with asyncio.timeout(timeout):
            while True:
                await self._wait_ready()
                try:
                    reply = await self._request("SUBSCRIBE", {**data, **self._resume_of(keys)})
                except _SessionLost:
                    continue
                # remembered once the gateway took them, so a rejected item is not re-sent forever
                self._want(keys, history, snapshot)
                self._forget_rejected(keys, reply)
                return reply  # type: ignore[no-any-return]

    def _want(self, keys: list[str], history: int | str, snapshot: bool) -> None:
        for k in keys:
            self._wanted.setdefault(k, _Want(history, snapshot))

    async def unsubscribe(
        self,
        symbols: Iterable[str] | None = None,
        data_types: Iterable[str] | None = None,
        periods: Iterable[str] | None = None,
    ) -> list[str]:
        """Stop streams (None means all of that dimension); returns the stream keys dropped."""
        syms = None if symbols is None else set([symbols] if isinstance(symbols, str) else symbols)
        types = None if data_types is None else set([data_types] if isinstance(data_types, str) else data_types)
        pers = None if periods is None else set([periods] if isinstance(periods, str) else periods)
        gone = []
        for key in list(self._wanted):
            t, s, p = _split_key(key)
            if (syms is None or s in syms) and (types is None or t in types) and (pers is None or not p or p in pers):
                gone.append(key)
                del self._wanted[key]
        self.book.forget(gone)
        if self.connected:
            data: dict[str, Any] = {}
            for name, value in (("symbols", syms), ("data_types", types), ("periods", pers)):
                if value is not None:
                    data[name] = sorted(value)
            with contextlib.suppress(_SessionLost, TimeoutError, ArgusError):
                await self._request("UNSUBSCRIBE", data)
        return gone

    async def subscriptions(self) -> Subscriptions:
        """What the gateway holds for this session now."""
        while True:
            await self._wait_ready()
            with contextlib.suppress(_SessionLost):
                reply: Subscriptions = await self._request("SUBSCRIPTIONS", None)
                return reply

    @property
    def wanted(self) -> list[str]:
        """Stream keys this client keeps subscribed across reconnects."""
        return list(self._wanted)

    # ------------------------------------------------------------------ reading
    def __aiter__(self) -> AsyncIterator[Any]:
        """Events in order; one reader at a time (iteration, `next_event` or `run`)."""
        return self

    async def __anext__(self) -> Any:
        item = await self.inbox.get()
        if item is None:
            if self._fatal is not None:
                raise self._fatal
            raise StopAsyncIteration
        return item

    async def next_event(self, timeout: float | None = None) -> Any:
        """The next event, or None after `timeout` seconds or once closed (see `closed`)."""
        item = await self.inbox.get(timeout)
        if item is None and self._fatal is not None:
            raise self._fatal
        return item

    def on(self, kind: str, handler: Handler | None = None, *, blocking: bool = False) -> Any:
        """Register a handler for `run()`: kind is a data type (quote tick kline trade), "data"
        (all four), "gap", "replayed", "status", "error", "connected", "disconnected" or "*".
        A coroutine function is awaited; `blocking=True` runs a plain function in a worker
        thread so it cannot hold up the socket reader. Usable as a decorator."""

        def add(fn: Handler) -> Handler:
            self._handlers.setdefault(kind, []).append((fn, blocking))
            return fn

        return add(handler) if handler is not None else add

    async def run(self) -> None:
        """Deliver events to the handlers, in order, until the client is closed."""
        async for event in self:
            await self.dispatch(event)

    async def dispatch(self, event: Any) -> None:
        for kind in (*event_kinds(event), "*"):
            for fn, blocking in self._handlers.get(kind, ()):
                if blocking:
                    await asyncio.to_thread(fn, event)
                    continue
                result = fn(event)
                if inspect.isawaitable(result):
                    await result

    # ------------------------------------------------------------------ the connection task
    async def _run(self) -> None:
        try:
            while not self._closing:
                url = self.urls[self._url_i % len(self.urls)]
                started = self._clock()
                end = await self._session(url)
                if self._closing:
                    return
                if end.welcomed and self._clock() - started >= self.stable_after:
                    self.backoff.reset()
                delay = self._delay_after(end)
                self.inbox.put(Disconnected(url, end.reason, end.code, delay))
                if delay is None:
                    return
                log.info("argus: %s from %s; reconnecting in %.2fs", end.reason, url, delay)
                self._url_i += 1  # the next gateway, if there are several
                await self._sleep(delay)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # a bug here must not look like a quiet feed
            log.exception("argus client failed")
            self._fatal = e
        finally:
            if self._fatal is not None:
                self._ready.set()
                self.inbox.close()

    def _delay_after(self, end: _End) -> float | None:
        if self._unauthorized is not None:
            message, self._unauthorized = self._unauthorized, None
            if not callable(self.token):
                self._fatal = AuthenticationError("UNAUTHORIZED", message)
                return None
        if end.hint is not None:
            return self.backoff.after_hint(end.hint)
        if end.code == CLOSE_RESTART:
            return self.backoff.after_hint(DEFAULT_RESTART_HINT)
        return self.backoff.next()

    async def _session(self, url: str) -> _End:
        assert self._http is not None
        self._ready.clear()
        self._leave = None
        headers = dict(self.headers)
        token = await self._token()
        self._sent_token = bool(token)
        if token:
            headers["Authorization"] = f"Bearer {token}"
        try:
            async with asyncio.timeout(self.connect_timeout):
                ws = await self._http.ws_connect(
                    self._full_url(url),
                    headers=headers,
                    protocols=(MSGPACK_SUBPROTOCOL if self.encoding == MSGPACK else JSON_SUBPROTOCOL,),
                    autoping=True,
                    max_msg_size=0,
                    ssl=self.ssl,
                    timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=2.0),
                )
        except aiohttp.WSServerHandshakeError as e:
            retry = e.headers.get("Retry-After") if e.headers else None
            hint = float(retry) if retry and retry.isdigit() else None
            return _End(f"refused: HTTP {e.status}", None, hint)
        except (aiohttp.ClientError, OSError, TimeoutError) as e:
            return _End(f"unreachable: {type(e).__name__} {e}".strip())
        self._ws = ws
        self.url = url
        resubscribe: asyncio.Task[None] | None = None
        end: _End | None = None
        welcomed = False
        try:
            while end is None:
                if welcomed:
                    wait = self.liveness_timeout or (
                        2.5 * (self.welcome.heartbeat_interval if self.welcome else 30) + 1
                    )
                else:
                    wait = self.connect_timeout
                try:
                    msg = await ws.receive(timeout=wait)
                except TimeoutError:
                    end = _End("silent" if welcomed else "no WELCOME")
                    break
                if msg.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                    for kind, data, req_id in self.codec.messages(msg.data):
                        if kind == "WELCOME" and not welcomed:
                            welcomed = True
                            resubscribe = self._welcomed(url, data)
                        else:
                            self._handle(kind, data, req_id)
                    if self._unauthorized is not None and not self._sent_token:
                        end = _End("unauthorized: the gateway requires a token")
                    elif self._leave is not None:
                        end = _End("draining", None, self._leave)
                elif msg.type == aiohttp.WSMsgType.ERROR:
                    end = _End(f"error: {ws.exception()!r}"[:200], ws.close_code)
                else:  # CLOSE, CLOSING, CLOSED
                    code = ws.close_code
                    end = _End("closed" if code != CLOSE_POLICY or not self._unauthorized else "unauthorized", code)
        finally:
            self._ready.clear()
            if resubscribe is not None:
                resubscribe.cancel()
            self._fail_replies(_SessionLost())
            self._ws = None
            if not ws.closed:
                with contextlib.suppress(Exception):
                    await ws.close(code=1001 if end is not None and end.reason == "draining" else 1000)
        assert end is not None
        end.welcomed = welcomed
        if end.reason == "closed" and self._leave is not None:
            end.hint = self._leave
        return end

    def _welcomed(self, url: str, welcome: Welcome) -> asyncio.Task[None]:
        self.welcome = welcome
        self.connections += 1
        if welcome.auth_required and not self._sent_token and "Authorization" not in self.headers:
            self._unauthorized = "the gateway requires a token and none was given"
        requests = self._resubscriptions()
        resumed: dict[str, int] = {}
        for data, _ in requests:
            resumed.update(data.get("resume", {}))
        self.inbox.put(Connected(url, welcome.session_id, self.connections, resumed))
        return asyncio.create_task(self._resubscribe(requests), name="argus-resubscribe")

    def _resubscriptions(self) -> list[tuple[dict[str, Any], list[str]]]:
        """One SUBSCRIBE per (type, period, history, snapshot) of the wanted streams."""
        groups: dict[tuple[str, str, int | str, bool], list[str]] = {}
        for key, want in self._wanted.items():
            t, _, p = _split_key(key)
            groups.setdefault((t, p, want.history, want.snapshot), []).append(key)
        out = []
        for (t, p, history, snapshot), keys in groups.items():
            data: dict[str, Any] = {
                "symbols": [_split_key(k)[1] for k in keys],
                "data_types": [t],
                "snapshot": snapshot,
            }
            if p:
                data["periods"] = [p]
            if history:
                data["history"] = history
            data.update(self._resume_of(keys))
            out.append((data, keys))
        return out

    async def _resubscribe(self, requests: list[tuple[dict[str, Any], list[str]]]) -> None:
        try:
            replies = await asyncio.gather(*(self._request("SUBSCRIBE", data) for data, _ in requests))
        except (_SessionLost, asyncio.CancelledError):
            return
        except (TimeoutError, ArgusError) as e:
            log.warning("argus: resubscribe failed (%s); reconnecting", e)
            if self._ws is not None:
                await self._ws.close(code=1000)
            return
        for (_, keys), reply in zip(requests, replies, strict=True):
            self._forget_rejected(keys, reply)
        self._ready.set()

    def _handle(self, kind: str, data: Any, req_id: str | int | None) -> None:
        if kind == "DATA":
            deliver, gap = self.book.admit(data)
            if gap is not None:
                self.inbox.put(gap)
            if deliver:
                self.inbox.put(data)
        elif kind == "GAP":
            gap = self.book.gap(data)
            if gap is not None:
                self.inbox.put(gap)
        elif kind == "HEARTBEAT":
            pass  # its arrival is what the liveness check needed
        elif kind == "STATUS":
            if data.source == "gateway" and data.state == "draining":
                self._leave = (data.reconnect_after_ms or DEFAULT_RESTART_HINT * 1000) / 1000
            self.inbox.put(data)
        elif kind == "REPLAYED":
            data.id = req_id
            self.inbox.put(data)
        elif kind == "ERROR":
            if data.id is None:
                data.id = req_id
            if data.code == "UNAUTHORIZED":
                self._unauthorized = data.message
            fut = self._replies.get(str(req_id)) if req_id is not None else None
            if fut is not None and not fut.done():
                cls = AuthenticationError if data.code == "UNAUTHORIZED" else ArgusError
                fut.set_exception(cls(data.code, data.message))
            self.inbox.put(data)
        elif kind in ("SUBSCRIBED", "UNSUBSCRIBED", "SUBSCRIPTIONS", "AUTHENTICATED"):
            fut = self._replies.get(str(req_id)) if req_id is not None else None
            if fut is not None and not fut.done():
                fut.set_result(data)
        else:
            log.debug("argus: ignoring %s", kind)

    # ------------------------------------------------------------------ requests
    async def _request(self, kind: str, data: Any) -> Any:
        ws = self._ws
        if ws is None or ws.closed:
            raise _SessionLost()
        req_id = f"c{next(self._ids)}"
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._replies[req_id] = fut
        try:
            payload = self.codec.encode(kind, data, req_id)
            try:
                if self.encoding == MSGPACK:
                    await ws.send_bytes(payload)
                else:
                    await ws.send_str(payload.decode())
            except (ConnectionError, RuntimeError, aiohttp.ClientError) as e:
                raise _SessionLost() from e
            async with asyncio.timeout(self.request_timeout):
                return await fut
        finally:
            self._replies.pop(req_id, None)

    def _spawn_request(self, kind: str, data: Any, keys: list[str]) -> None:
        async def go() -> None:
            with contextlib.suppress(_SessionLost, TimeoutError, ArgusError):
                self._forget_rejected(keys, await self._request(kind, data))

        task = asyncio.get_running_loop().create_task(go())
        self._background.add(task)  # held until done: the loop keeps only weak references
        task.add_done_callback(self._background.discard)

    def _fail_replies(self, exc: Exception) -> None:
        for fut in self._replies.values():
            if not fut.done():
                fut.set_exception(exc)
                fut.exception()  # retrieved here: a waiter that went away must not warn

    def _resume_of(self, keys: Iterable[str]) -> dict[str, Any]:
        points = self.book.resume_points(keys)
        return {"resume": points} if points else {}

    def _forget_rejected(self, keys: list[str], reply: Subscribed) -> None:
        """Rejected streams are not asked for again on every reconnect."""
        for r in reply.rejected:
            for key in keys:
                t, s, p = _split_key(key)
                if (
                    (r.symbol is None or r.symbol == s)
                    and (r.data_type is None or r.data_type == t)
                    and (r.period is None or r.period == p)
                ):
                    self._wanted.pop(key, None)

    async def _wait_ready(self) -> None:
        while True:
            if self._fatal is not None:
                raise self._fatal
            if self._closing:
                raise ClientClosed()
            if self._ready.is_set():
                return
            await self._ready.wait()

    async def _token(self) -> str | None:
        token = self.token
        if callable(token):
            value = token()
            if inspect.isawaitable(value):
                value = await value
            return str(value) if value else None
        return token

    def _full_url(self, url: str) -> str:
        """The URL with the delivery options as query parameters (docs/protocol.md §1)."""
        query: dict[str, str] = {}
        if self.encoding == MSGPACK:
            query["encoding"] = MSGPACK
        if self.batch:
            query["batch"] = "1"
        if self.conflate_ms:
            query["conflate_ms"] = str(self.conflate_ms)
        if not query:
            return url
        parts = urllib.parse.urlsplit(url)
        merged = [*urllib.parse.parse_qsl(parts.query), *query.items()]
        return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(merged)))


def _ws_url(url: str) -> str:
    if url.startswith("http://"):
        return "ws://" + url[7:]
    if url.startswith("https://"):
        return "wss://" + url[8:]
    if not url.startswith(("ws://", "wss://")):
        return "ws://" + url
    return url


def event_kinds(event: Any) -> tuple[str, ...]:
    """The handler kinds an event is delivered to (besides "*")."""
    if isinstance(event, (QuoteEvent, TickEvent, KlineEvent, TradeEvent)):
        return (event.type, "data")
    if isinstance(event, Gap):
        return ("gap",)
    if isinstance(event, Replayed):
        return ("replayed",)
    if isinstance(event, Status):
        return ("status",)
    if isinstance(event, Error):
        return ("error",)
    if isinstance(event, Connected):
        return ("connected",)
    if isinstance(event, Disconnected):
        return ("disconnected",)
    return ()
