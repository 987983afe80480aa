"""The gateway: WebSocket sessions over aiohttp, wired to the fan-out hub and the control plane."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import ssl
import time
from typing import Any

import msgspec
from aiohttp import WSMsgType, web
from argus_protocol import (
    MSGPACK,
    CloseCode,
    ErrorCode,
    SourceStatus,
    Subjects,
    decode_client,
    decode_event,
    encode,
    iso_now,
    now_us,
)
from argus_protocol.messages import (
    CLIENT_TYPES,
    KNOWN_CLIENT_TYPES,
    PROTOCOL_VERSION,
    Auth,
    Authenticated,
    ClientEnvelope,
    Envelope,
    Error,
    Limits,
    ServerHeartbeat,
    Status,
    Subscribe,
    Subscribed,
    Subscriptions,
    Unsubscribe,
    Unsubscribed,
    Welcome,
)
from argus_service.config import Config
from argus_service.jetstream import ensure_last_value_stream
from argus_service.natsconn import connect_nats
from argus_service.tasks import Background
from nats.aio.client import Client
from prometheus_client import CollectorRegistry

from .announce import DemandAnnouncer
from .auth import OPEN, Authenticator, AuthError, Grant
from .fanout import Hub, Topic
from .frames import ws_frame
from .metrics import GatewayMetrics
from .options import delivery_options
from .ratelimit import TokenBucket
from .requests import plan_subscribe, plan_unsubscribe
from .session import Session
from .sources import SourceTracker

log = logging.getLogger("argus.gateway")

MSGPACK_SUBPROTOCOL = "argus.v1.msgpack"
JSON_SUBPROTOCOL = "argus.v1.json"


def default_gateway_id() -> str:
    host = "".join(c if c.isalnum() or c in "-_" else "-" for c in socket.gethostname())[:40] or "gw"
    return f"{host}-{os.getpid()}-{secrets.token_hex(3)}"


class Gateway:
    def __init__(self, cfg: Config, registry: CollectorRegistry) -> None:
        self.cfg = cfg
        self.metrics = GatewayMetrics(registry)
        self.subjects = Subjects(cfg.nats.subject_prefix)
        self.gateway_id = cfg.server.gateway_id or default_gateway_id()
        self.auth = Authenticator(cfg.security.api_keys, cfg.security.jwt_secret)
        self.sources = SourceTracker()
        self.sessions: dict[Session, web.WebSocketResponse] = {}
        self.draining = False
        self.nc: Client | None = None
        self.hub: Hub | None = None
        self.announcer: DemandAnnouncer | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._runner: web.AppRunner | None = None
        self.port = 0
        self._n = 0
        self._background = Background()

    # ------------------------------------------------------------------ lifecycle
    async def start(self, stop: asyncio.Event | None = None) -> None:
        self.nc = await connect_nats(
            self.cfg.nats,
            f"argus-gateway-{self.gateway_id}",
            on_reconnect=self._on_reconnect,
            on_disconnect=self._on_disconnect,
            stop=stop,
        )
        self.metrics.nats_connected.set(1)
        if self.cfg.nats.snapshot_stream:
            await ensure_last_value_stream(self.nc, self.cfg.nats.snapshot_stream, self.subjects.all_data())
        self.hub = Hub(
            self.nc,
            self.subjects,
            self.metrics,
            snapshot_stream=self.cfg.nats.snapshot_stream,
            on_demand_change=self._demand_changed,
            flush_interval=self.cfg.server.flush_interval_ms / 1000.0,
            flush_budget=self.cfg.server.flush_budget_ms / 1000.0,
        )
        self.announcer = DemandAnnouncer(
            self.nc,
            self.subjects,
            self.gateway_id,
            self.cfg.nats.demand_refresh,
            self.cfg.nats.demand_ttl,
            self.hub.streams,
        )
        await self.announcer.start()
        await self.nc.subscribe(self.subjects.status_all(), cb=self._on_status)
        self._tasks = [
            asyncio.create_task(self._heartbeats(), name="heartbeats"),
            asyncio.create_task(self._watch_sources(), name="watch-sources"),
            asyncio.create_task(self._stats(), name="stats"),
        ]
        app = web.Application()
        app.router.add_get("/", self.handle)
        app.router.add_get("/ws", self.handle)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await self._runner.setup()
        ssl_ctx = None
        if self.cfg.security.tls_cert:
            ssl_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ssl_ctx.load_cert_chain(self.cfg.security.tls_cert, self.cfg.security.tls_key or None)
        site = web.TCPSite(self._runner, self.cfg.server.host, self.cfg.server.port, ssl_context=ssl_ctx, backlog=4096)
        await site.start()
        sockets = getattr(site._server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1] if sockets else self.cfg.server.port
        log.info(
            "gateway listening",
            extra={
                "host": self.cfg.server.host,
                "port": self.port,
                "tls": bool(ssl_ctx),
                "gateway_id": self.gateway_id,
                "nats": self.cfg.nats.url,
            },
        )

    def ready(self) -> tuple[bool, str]:
        if self.draining:
            return False, "draining"
        if self.nc is None or not self.nc.is_connected:
            return False, "nats not connected"
        return True, "ok"

    async def drain(self) -> None:
        """SIGTERM: stop taking connections, tell clients to reconnect elsewhere, then close 1012."""
        self.draining = True
        n = len(self.sessions)
        log.info("draining", extra={"connections": n, "drain_seconds": self.cfg.server.drain_seconds})
        if n:
            status = Status(
                source="gateway",
                state="draining",
                since=iso_now(),
                reconnect_after_ms=self.cfg.server.reconnect_after_ms,
            )
            self._broadcast_all(status, only_subscribed=False)
            deadline = time.monotonic() + self.cfg.server.drain_seconds
            while self.sessions and time.monotonic() < deadline:  # noqa: ASYNC110 - polls two conditions
                await asyncio.sleep(0.05)
            await asyncio.gather(
                *(self._close(s, CloseCode.RESTART, "service restart") for s in list(self.sessions)),
                return_exceptions=True,
            )

    async def stop(self) -> None:
        if self.announcer is not None:
            with contextlib.suppress(Exception):
                await self.announcer.withdraw()
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        if self._runner is not None:
            await self._runner.cleanup()
        if self.hub is not None:
            await self.hub.close()
        if self.nc is not None and not self.nc.is_closed:
            with contextlib.suppress(Exception):
                await self.nc.drain()
        log.info("gateway stopped")

    # ------------------------------------------------------------------ connection
    async def handle(self, request: web.Request) -> web.StreamResponse:
        srv = self.cfg.server
        origin = request.headers.get("Origin")
        allowed = self.cfg.security.allowed_origins
        if origin and "*" not in allowed and origin not in allowed:
            self.metrics.errors.labels(ErrorCode.FORBIDDEN).inc()
            log.info("origin refused", extra={"origin": origin, "remote": request.remote})
            return web.Response(status=403, text="origin not allowed\n")
        if self.draining:
            return web.Response(status=503, text="draining\n", headers={"Retry-After": "1"})
        encoding = "json"
        if request.query.get("encoding") == MSGPACK:
            encoding = MSGPACK
        ws = web.WebSocketResponse(
            protocols=(MSGPACK_SUBPROTOCOL, JSON_SUBPROTOCOL),
            max_msg_size=srv.max_frame_bytes,
            compress=srv.permessage_deflate,
            heartbeat=srv.heartbeat_interval,
            timeout=2.0,
        )
        await ws.prepare(request)
        if ws.ws_protocol == MSGPACK_SUBPROTOCOL:
            encoding = MSGPACK
        options, option_errors = delivery_options(request.query)
        transport = request.transport
        assert self.hub is not None
        self._n += 1
        session = Session(
            f"{self.gateway_id}-{self._n}",
            transport,
            encoding,
            outbox_bytes=srv.outbox_bytes,
            high_water=srv.write_buffer_high,
            slow_close=srv.slow_consumer == "close",
            on_dirty=self.hub.mark_dirty,
            on_slow=self._on_slow,
            gap_frame=self.hub.gap_frame,
            remote=request.remote or "",
            batch=options.batch,
            conflate_ms=options.conflate_ms,
            deflate_bits=int(ws.compress),  # window bits the client allows us, 0 when not negotiated
        )
        if len(self.sessions) >= srv.max_connections:
            self._error(
                session, ErrorCode.UNAVAILABLE, f"connection limit of {srv.max_connections} reached; try again later"
            )
            session.write_now()
            self.metrics.disconnects.labels("connection_limit").inc()
            await ws.close(code=CloseCode.TRY_AGAIN_LATER, message=b"connection limit")
            return ws
        self.sessions[session] = ws
        self.metrics.connections_total.inc()
        self.metrics.active_connections.set(len(self.sessions))
        reason = "client closed"
        try:
            grant = await self._authenticate(session, ws, request)
            if grant is None:
                reason = "auth failed"
                return ws
            session.grant = grant
            for problem in option_errors:  # after WELCOME, which states the options in force
                self._error(session, ErrorCode.INVALID_MESSAGE, problem)
            log.info(
                "connected",
                extra={"session": session.id, "remote": session.remote, "encoding": encoding, "subject": grant.subject},
            )
            reason = await self._read_loop(session, ws)
            if ws.close_code == CloseCode.SLOW_CONSUMER:
                reason = "slow consumer"
        except Exception:
            log.exception("session failed", extra={"session": session.id})
            reason = "internal error"
            self._error(session, ErrorCode.INTERNAL, "internal error")
            await self._close(session, CloseCode.INTERNAL, "internal error")
        finally:
            self._forget(session)
            close_code = ws.close_code
            log.info(
                "disconnected",
                extra={"session": session.id, "remote": session.remote, "reason": reason, "close_code": close_code},
            )
            self.metrics.disconnects.labels(reason).inc()
        return ws

    async def _authenticate(self, session: Session, ws: web.WebSocketResponse, request: web.Request) -> Grant | None:
        sec = self.cfg.security
        if not sec.enable_auth:
            self._welcome(session, False)
            return OPEN
        header = request.headers.get("Authorization", "")
        token = header[7:].strip() if header[:7].lower() == "bearer " else request.query.get("token", "")
        if token:
            try:
                grant = self.auth.check(token)
            except AuthError as e:
                await self._refuse(session, str(e))
                return None
            self._welcome(session, True)
            self._arm_expiry(session, grant)
            return grant
        self._welcome(session, True)
        # No token on the handshake: the first message must be AUTH, within auth_timeout.
        try:
            msg = await ws.receive(timeout=sec.auth_timeout)
        except TimeoutError:
            await self._refuse(session, f"no AUTH within {sec.auth_timeout:g}s")
            return None
        if msg.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
            return None
        try:
            env = decode_client(msg.data, MSGPACK if msg.type == WSMsgType.BINARY else "json")
            if env.type != "AUTH":
                raise AuthError("first message must be AUTH")
            req = msgspec.convert(env.data, Auth)
            grant = self.auth.check(req.token)
        except (msgspec.MsgspecError, AuthError) as e:
            await self._refuse(
                session, str(e) if isinstance(e, AuthError) else "first message must be AUTH with a token"
            )
            return None
        self._arm_expiry(session, grant)
        session.send(
            Envelope(
                "AUTHENTICATED", Authenticated(subject=grant.subject, expires_at=grant.expires_at), iso_now(), env.id
            )
        )
        return grant

    async def _refuse(self, session: Session, why: str) -> None:
        self._error(session, ErrorCode.UNAUTHORIZED, why)
        await self._close(session, CloseCode.POLICY, "unauthorized")

    def _arm_expiry(self, session: Session, grant: Grant) -> None:
        if grant.expires_at is None:
            return
        delay = max(0.0, grant.expires_at - time.time())
        loop = asyncio.get_running_loop()

        def expire() -> None:
            if session in self.sessions and session.grant is grant:
                self._error(session, ErrorCode.UNAUTHORIZED, "token expired")
                self._background.spawn(self._close(session, CloseCode.POLICY, "token expired"))

        loop.call_later(delay, expire)

    def _welcome(self, session: Session, auth_required: bool) -> None:
        srv = self.cfg.server
        session.send(
            Envelope(
                "WELCOME",
                Welcome(
                    session_id=session.id,
                    protocol_version=PROTOCOL_VERSION,
                    heartbeat_interval=srv.heartbeat_interval,
                    encoding=session.encoding,
                    limits=Limits(
                        max_subscriptions=srv.max_subscriptions_per_client,
                        max_message_bytes=srv.max_message_bytes,
                        max_messages_per_second=srv.max_messages_per_second,
                        outbox_bytes=srv.outbox_bytes,
                    ),
                    auth_required=auth_required,
                    options={
                        "slow_consumer": srv.slow_consumer,
                        "batch": session.batch,
                        "conflate_ms": session.conflate_ms,
                        "compression": "permessage-deflate" if session.deflate_bits else "none",
                    },
                ),
                iso_now(),
            )
        )

    async def _read_loop(self, session: Session, ws: web.WebSocketResponse) -> str:
        srv = self.cfg.server
        bucket = TokenBucket(srv.max_messages_per_second, srv.rate_limit_burst)
        received = self.metrics.messages_received
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                data: str | bytes = msg.data
                size = len(data) if len(data) * 4 <= srv.max_message_bytes else len(data.encode())
                encoding = "json"
            elif msg.type == WSMsgType.BINARY:
                data = msg.data
                size = len(data)
                encoding = MSGPACK
            elif msg.type == WSMsgType.ERROR:
                return f"protocol error: {ws.exception()!r}"[:120]
            else:
                break
            received.inc()
            if size > srv.max_message_bytes:
                self._error(
                    session, ErrorCode.MESSAGE_TOO_LARGE, f"message of {size} bytes exceeds {srv.max_message_bytes}"
                )
                continue
            if not bucket.take():
                strikes = bucket.strike()
                if strikes >= srv.rate_limit_strikes:
                    self._error(session, ErrorCode.RATE_LIMITED, "message rate limit repeatedly exceeded; closing")
                    await self._close(session, CloseCode.POLICY, "rate limit")
                    return "rate limited"
                if strikes == 1 or strikes % 10 == 0:
                    self._error(
                        session,
                        ErrorCode.RATE_LIMITED,
                        f"more than {srv.max_messages_per_second:g} messages/s; message dropped",
                    )
                continue
            await self._dispatch(session, data, encoding)
        return (
            "client closed"
            if ws.close_code in (None, CloseCode.NORMAL, CloseCode.GOING_AWAY)
            else f"closed {ws.close_code}"
        )

    async def _dispatch(self, session: Session, data: str | bytes, encoding: str) -> None:
        try:
            env = decode_client(data, encoding)
        except msgspec.MsgspecError as e:
            self._error(session, ErrorCode.INVALID_MESSAGE, f"not a valid envelope: {e}"[:300])
            return
        kind = env.type
        if kind not in KNOWN_CLIENT_TYPES:
            self._error(session, ErrorCode.UNKNOWN_TYPE, f"unknown message type {kind[:40]!r}", env.id)
            return
        req: Any = None
        if kind in CLIENT_TYPES:
            try:
                req = msgspec.convert({} if env.data is None else env.data, CLIENT_TYPES[kind])
            except msgspec.ValidationError as e:
                self._error(session, ErrorCode.INVALID_MESSAGE, f"bad {kind}: {e}"[:300], env.id)
                return
        if kind == "SUBSCRIBE":
            self._subscribe(session, req, env)
        elif kind == "UNSUBSCRIBE":
            self._unsubscribe(session, req, env)
        elif kind == "SUBSCRIPTIONS":
            self._subscriptions(session, env)
        elif kind == "HEARTBEAT":
            session.send(
                Envelope("HEARTBEAT", ServerHeartbeat(timestamp=iso_now(), server_time_us=now_us()), iso_now(), env.id)
            )
        elif kind == "AUTH":
            await self._reauth(session, req, env)

    async def _reauth(self, session: Session, req: Auth, env: ClientEnvelope) -> None:
        try:
            grant = self.auth.check(req.token) if self.cfg.security.enable_auth else OPEN
        except AuthError as e:
            await self._refuse(session, str(e))
            return
        session.grant = grant
        self._arm_expiry(session, grant)
        session.send(
            Envelope(
                "AUTHENTICATED", Authenticated(subject=grant.subject, expires_at=grant.expires_at), iso_now(), env.id
            )
        )

    # ------------------------------------------------------------------ subscriptions
    def _subscribe(self, session: Session, req: Subscribe, env: ClientEnvelope) -> None:
        hub = self.hub
        assert hub is not None
        had_any = bool(session.streams)
        add, symbols, rejected = plan_subscribe(
            req, session.streams, self.cfg.server.max_subscriptions_per_client, session.grant
        )
        new_symbols = [s for s in dict.fromkeys(st.symbol for st in add) if s not in session.symbols]
        fresh: list[Topic] = []
        known: list[Topic] = []
        for stream in add:
            session.add_stream(stream)
            topic, created = hub.add(session, stream)
            (fresh if created else known).append(topic)
        self._count_subscriptions(len(add))
        # Reply before any snapshot or live frame can be queued: nothing above awaited.
        session.send(
            Envelope(
                "SUBSCRIBED",
                Subscribed(
                    added=[s.key for s in add],
                    symbols=symbols,
                    data_types=[
                        t
                        for t in dict.fromkeys(req.data_types)
                        if isinstance(t, str) and any(s.type == t for s in session.streams)
                    ],
                    periods=sorted({s.period for s in session.streams if s.period and s.period in req.periods}),
                    rejected=rejected,
                    total=len(session.streams),
                ),
                iso_now(),
                env.id,
            )
        )
        for code in dict.fromkeys(r.code for r in rejected):
            items = [r for r in rejected if r.code == code]
            self._error(session, code, f"{len(items)} item(s) rejected: {items[0].message}", env.id)
        if add:
            log.info(
                "subscribed",
                extra={
                    "session": session.id,
                    "added": len(add),
                    "total": len(session.streams),
                    "rejected": len(rejected),
                },
            )
        if add:  # source STATUS first: not-live sources (first streams only), sources lacking a requested type
            for st in self.sources.on_subscribe(not had_any, {s.type for s in add}):
                session.send(self._status_envelope(st))
        for sym in new_symbols:
            for st in self.sources.for_symbol(sym):
                session.send(self._status_envelope(st))
        if req.snapshot or req.resume:
            resume = req.resume or {}
            stored = fresh
            for topic in known:
                if topic.last_raw is not None:
                    self._send_snapshot(session, topic, topic.last_raw, resume.get(topic.key))
                else:
                    stored.append(topic)  # held here but nothing live yet: ask the store too
            if stored:
                self._background.spawn(self._snapshots_from_store(session, stored, resume))

    async def _snapshots_from_store(self, session: Session, topics: list[Topic], resume: dict[str, int]) -> None:
        hub = self.hub
        assert hub is not None
        live_before = [t.live for t in topics]
        await asyncio.gather(*(hub.load_stored(t) for t in topics), return_exceptions=True)
        for topic, live in zip(topics, live_before, strict=True):
            raw = topic.last_raw
            if raw is None or topic.live != live or session.closed or topic.stream not in session.streams:
                continue  # nothing stored, or live data already reached this session
            self._send_snapshot(session, topic, raw, resume.get(topic.key))

    def _send_snapshot(self, session: Session, topic: Topic, raw: bytes, last_seen: int | None) -> None:
        try:
            event = decode_event(raw)
        except msgspec.MsgspecError:
            return
        if last_seen is not None:
            if event.seq <= last_seen:
                return  # the client already has this one
            if event.seq > last_seen + 1:
                s = topic.stream
                session.push_frame(
                    self.hub.gap_frame(
                        session, s.type, s.symbol, s.period, last_seen + 1, event.seq - 1, "resume_unavailable"
                    )
                )  # type: ignore[union-attr]
        event.snapshot = True
        session.push_frame(ws_frame(encode(Envelope("DATA", event, iso_now()), session.encoding), session.binary))

    def _unsubscribe(self, session: Session, req: Unsubscribe, env: ClientEnvelope) -> None:
        hub = self.hub
        assert hub is not None
        gone = plan_unsubscribe(req, session.streams)
        for stream in gone:
            session.remove_stream(stream)
            hub.remove(session, stream)
        self._count_subscriptions(-len(gone))
        session.send(
            Envelope(
                "UNSUBSCRIBED",
                Unsubscribed(
                    removed=sorted(s.key for s in gone),
                    symbols=sorted({s.symbol for s in gone}),
                    total=len(session.streams),
                ),
                iso_now(),
                env.id,
            )
        )
        if gone:
            log.info("unsubscribed", extra={"session": session.id, "removed": len(gone), "total": len(session.streams)})

    def _subscriptions(self, session: Session, env: ClientEnvelope) -> None:
        by_symbol: dict[str, list[str]] = {}
        for s in sorted(session.streams):
            by_symbol.setdefault(s.symbol, []).append(f"kline:{s.period}" if s.period else s.type)
        session.send(
            Envelope(
                "SUBSCRIPTIONS",
                Subscriptions(
                    streams=sorted(s.key for s in session.streams), symbols=by_symbol, total=len(session.streams)
                ),
                iso_now(),
                env.id,
            )
        )

    def _count_subscriptions(self, delta: int) -> None:
        if delta:
            self.metrics.active_subscriptions.inc(delta)

    def _forget(self, session: Session) -> None:
        if self.sessions.pop(session, None) is None:
            return
        hub = self.hub
        if hub is not None:
            hub.detach(session)
            for stream in list(session.streams):
                hub.remove(session, stream)
        self._count_subscriptions(-len(session.streams))
        session.streams.clear()
        self.metrics.active_connections.set(len(self.sessions))

    # ------------------------------------------------------------------ replies and closes
    def _error(self, session: Session, code: str, message: str, req_id: str | int | None = None) -> None:
        self.metrics.errors.labels(str(code)).inc()
        # Bounded by the inbound rate limit, so a misbehaving client cannot flood the log.
        log.info(
            "client error",
            extra={"session": session.id, "remote": session.remote, "code": str(code), "detail": message[:200]},
        )
        session.send(Envelope("ERROR", Error(code=str(code), message=message, id=req_id), iso_now(), req_id))

    async def _close(self, session: Session, code: int, reason: str) -> None:
        ws = self.sessions.get(session)
        session.write_now()
        session.closed = True
        if ws is not None and not ws.closed:
            with contextlib.suppress(Exception):
                # No drain: a client that stopped reading would hold us forever; the socket
                # still sends what is buffered, then the close frame, as the client reads.
                await ws.close(code=code, message=reason.encode()[:120], drain=False)

    def _on_slow(self, session: Session) -> None:
        if session.closed:
            return
        log.warning("slow consumer closed", extra={"session": session.id, "remote": session.remote})
        # Queued frames would only delay the close; the ERROR says they were not delivered.
        session.discard_pending()
        self._error(session, ErrorCode.SLOW_CONSUMER, f"outbox exceeded {session.outbox_bytes} bytes; closing")
        session.write_now()
        session.closed = True  # nothing more queues for it
        self._background.spawn(self._close(session, CloseCode.SLOW_CONSUMER, "slow consumer"))

    # ------------------------------------------------------------------ status and heartbeats
    def _status_envelope(self, st: SourceStatus) -> Envelope:
        return Envelope(
            "STATUS",
            Status(
                source=st.source,
                state=st.state,
                since=st.since,
                symbol=st.symbol,
                reason=st.reason,
                unsupported=st.unsupported,
            ),
            iso_now(),
        )

    async def _on_status(self, msg: Any) -> None:
        st = self.sources.receive(msg.data)
        if st is not None:
            self._broadcast_status(st)

    def _broadcast_status(self, st: SourceStatus) -> None:
        log.info(
            "source status", extra={"source": st.source, "state": st.state, "symbol": st.symbol, "reason": st.reason}
        )
        env = self._status_envelope(st)
        if st.symbol:
            for s in self.sessions:
                if st.symbol in s.symbols:
                    s.send(env)
        else:
            self._broadcast_all(env.data, only_subscribed=True)

    def _broadcast_all(self, data: Any, *, only_subscribed: bool, kind: str = "STATUS") -> None:
        frames: dict[str, bytes] = {}
        env = Envelope(kind, data, iso_now())
        for s in self.sessions:
            if only_subscribed and not s.streams:
                continue
            frame = frames.get(s.encoding)
            if frame is None:
                frame = frames[s.encoding] = ws_frame(encode(env, s.encoding), s.binary)
            s.push_frame(frame)

    async def _heartbeats(self) -> None:
        while True:
            await asyncio.sleep(self.cfg.server.heartbeat_interval)
            self._broadcast_all(
                ServerHeartbeat(timestamp=iso_now(), server_time_us=now_us()), only_subscribed=False, kind="HEARTBEAT"
            )

    async def _watch_sources(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            for st in self.sources.check_silence():
                self._broadcast_status(st)
            self.metrics.sources_down.set(self.sources.silent)

    async def _stats(self) -> None:
        interval = self.cfg.logging.stats_interval
        last_sent = 0.0
        while True:
            await asyncio.sleep(interval)
            sent = self.metrics.messages_sent._value.get()
            log.info(
                "stats",
                extra={
                    "connections": len(self.sessions),
                    "subscriptions": int(self.metrics.active_subscriptions._value.get()),
                    "nats_subjects": len(self.hub.topics) if self.hub else 0,
                    "sent_per_s": round((sent - last_sent) / interval, 1),
                    "nats_connected": bool(self.nc and self.nc.is_connected),
                },
            )
            last_sent = sent

    # ------------------------------------------------------------------ NATS events
    def _demand_changed(self) -> None:
        if self.announcer is not None:
            self.announcer.changed()

    async def _on_reconnect(self) -> None:
        self.metrics.nats_connected.set(1)
        if self.nc is not None and self.cfg.nats.snapshot_stream:
            await ensure_last_value_stream(self.nc, self.cfg.nats.snapshot_stream, self.subjects.all_data())
        if self.announcer is not None:
            await self.announcer.announce()

    async def _on_disconnect(self) -> None:
        self.metrics.nats_connected.set(0)
