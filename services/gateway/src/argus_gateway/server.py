"""The gateway process: NATS, the hub, the HTTP listener, and what concerns every connection at once
(source STATUS, heartbeats, drain). Each client is a `Connection` (connection.py)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import ssl
import time
from collections.abc import Coroutine
from typing import Any

from aiohttp import web
from argus_protocol import CloseCode, ErrorCode, SourceStatus, Subjects, encode, iso_now, now_us
from argus_protocol.messages import Envelope, ServerHeartbeat, Status
from argus_service.config import Config
from argus_service.jetstream import ensure_streams
from argus_service.natsconn import connect_nats, let_go
from argus_service.retained import DirectGet
from argus_service.tasks import Background
from nats.aio.client import Client
from prometheus_client import CollectorRegistry

from .announce import DemandAnnouncer
from .auth import Authenticator
from .board import add_board_routes
from .commands import Commands
from .connection import CLOSE_TIMEOUT, Connection
from .fanout import Hub
from .frames import ws_frame
from .httpapi import HttpApi
from .listener import Opening
from .metrics import GatewayMetrics
from .peers import PeerLimits
from .recall import Recall
from .replay import Replayer
from .session import Session
from .sources import SourceTracker, status_envelope
from .topic import Topic

log = logging.getLogger("argus.gateway")


async def _upgrade_required(request: web.Request) -> web.Response:
    return web.Response(
        status=426, text="this is the WebSocket endpoint: ask for an upgrade\n", headers={"Upgrade": "websocket"}
    )


def default_gateway_id() -> str:
    host = "".join(c if c.isalnum() or c in "-_" else "-" for c in socket.gethostname())[:40] or "gw"
    return f"{host}-{os.getpid()}-{secrets.token_hex(3)}"


class Gateway:
    def __init__(self, cfg: Config, registry: CollectorRegistry) -> None:
        self.cfg = cfg
        self.metrics = GatewayMetrics(registry)
        self.subjects = Subjects(cfg.nats.subject_prefix)
        self.gateway_id = cfg.server.gateway_id or default_gateway_id()
        self.auth = Authenticator(cfg.security)
        self.peers = PeerLimits(cfg.server.max_connections_per_ip, cfg.server.trusted_proxies, self.metrics)
        self.awaiting_auth = 0  # sessions waiting for their AUTH message
        self.sources = SourceTracker(quiet=3 * cfg.datasource.status_interval)
        self.sessions: dict[Session, Connection] = {}
        self.draining = False
        self.nc: Client | None = None
        self.hub: Hub | None = None
        self.commands: Commands | None = None
        self.announcer: DemandAnnouncer | None = None
        self._store: DirectGet | None = None
        self._nats_lost_at: float | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._runner: web.AppRunner | None = None
        self._listener: asyncio.Server | None = None
        self.port = 0
        self._n = 0
        self._background = Background()
        self.http = HttpApi(self, registry)  # HTTP API (httpapi.py)

    # ------------------------------------------------------------------ lifecycle
    async def start(self, stop: asyncio.Event | None = None) -> None:
        cfg = self.cfg
        self.nc = await connect_nats(
            cfg.nats,
            f"argus-gateway-{self.gateway_id}",
            on_reconnect=self._on_reconnect,
            on_disconnect=self._on_disconnect,
            stop=stop,
        )
        self.metrics.nats_connected.set(1)
        await ensure_streams(self.nc, cfg.retention, self.subjects)
        retention = cfg.retention
        self.hub = hub = Hub(
            self.nc,
            self.subjects,
            self.metrics,
            on_demand_change=self._demand_changed,
            limits={kind: retention.limits(kind)[0] for kind in ("tick", "kline", "trade")},
            flush_interval=cfg.server.flush_interval_ms / 1000.0,
            flush_budget=cfg.server.flush_budget_ms / 1000.0,
            max_gather=cfg.server.max_gather_ms / 1000.0,
            max_event_age=cfg.server.max_event_age_ms / 1000.0,
        )
        self._store = DirectGet(self.nc, timeout=retention.fetch_timeout)
        await self._store.start()
        replayer: Replayer | None = None

        def loaded(topic: Topic) -> None:
            assert replayer is not None
            replayer.loaded(topic)

        recall = Recall(self._store, self.subjects, retention, self.metrics, loaded)
        replayer = Replayer(
            recall, self.metrics, hub.clock.now, hub.gap_frame, lambda t: hub.topics.get(t.subject) is t
        )
        hub.pump = replayer.pump
        self.commands = Commands(
            hub,
            replayer,
            self.sources,
            max_subscriptions=cfg.server.max_subscriptions_per_client,
            max_history=cfg.server.max_history,
            error=lambda s, code, message, req_id: self.sessions[s].error(code, message, req_id),
            max_rejections_listed=cfg.server.max_rejections_listed,
            max_gateway_streams=cfg.server.max_gateway_streams,
        )
        self.announcer = DemandAnnouncer(
            self.nc,
            self.subjects,
            self.gateway_id,
            cfg.nats.demand_refresh,
            cfg.nats.demand_ttl,
            hub.streams,
            self.metrics,
        )
        self.spawn(self.auth.start())  # JWKS fetched ahead of the first token
        await self.announcer.start()
        await self.nc.subscribe(self.subjects.status_all(), cb=self._on_status)
        self._tasks = [
            asyncio.create_task(self._heartbeats(), name="heartbeats"),
            asyncio.create_task(self._ping_sweep(), name="pings"),
            asyncio.create_task(self._watch_sources(), name="watch-sources"),
            asyncio.create_task(self._stats(), name="stats"),
        ]
        await self._listen()

    async def _listen(self) -> None:
        cfg = self.cfg

        app = web.Application()
        # Upgrades to these are answered by the listener (listener.py); a plain GET is told so.
        app.router.add_get("/", _upgrade_required)
        app.router.add_get("/ws", _upgrade_required)
        add_board_routes(app)  # the quote board's static files (board/)
        # --- HTTP API: /v1/bars, /v1/ticks, /v1/trades, /v1/snapshot, /v1/calendar, /v1/openapi.json (httpapi.py)
        assert self.nc is not None and self._store is not None
        await self.http.start(self.nc, self._store)
        self.http.register(app.router)
        # --- end HTTP API
        # -- listener limits (README "Security"): the listener closes a socket whose first request
        # is not complete within handshake_timeout, and aiohttp's keep-alive timer (the same value)
        # an idle one after it; every accepted connection is counted per peer address before a
        # byte is read.
        self._runner = web.AppRunner(
            app,
            access_log=None,
            handle_signals=False,
            shutdown_timeout=1.0,
            keepalive_timeout=cfg.server.handshake_timeout,
        )
        await self._runner.setup()
        assert self._runner.server is not None
        self.peers.attach(self._runner.server)
        # -- end of listener limits
        ssl_ctx = None
        if cfg.security.tls_cert:
            ssl_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ssl_ctx.load_cert_chain(cfg.security.tls_cert, cfg.security.tls_key or None)
        http = self._runner.server
        self._listener = await asyncio.get_running_loop().create_server(
            lambda: Opening(self, http), cfg.server.host, cfg.server.port, ssl=ssl_ctx, backlog=4096
        )
        sockets = self._listener.sockets
        self.port = sockets[0].getsockname()[1] if sockets else cfg.server.port
        log.info(
            "gateway listening",
            extra={
                "host": cfg.server.host,
                "port": self.port,
                "tls": bool(ssl_ctx),
                "gateway_id": self.gateway_id,
                "nats": cfg.nats.url,
            },
        )

    def ready(self) -> tuple[bool, str]:
        if self.draining:
            return False, "draining"
        if self.nc is None:
            return False, "nats not connected"
        if not self.nc.is_connected:
            away = time.monotonic() - (self._nats_lost_at or time.monotonic())
            if away > self.cfg.server.nats_grace:
                return False, f"nats not connected for {away:.0f}s"
            return True, f"degraded: nats reconnecting for {away:.1f}s"  # a blip keeps the Service
        if self.sources.nothing_heard(time.monotonic()):
            return True, "degraded: no source heard on NATS"
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
            self._broadcast(status, only_subscribed=False)
            deadline = time.monotonic() + self.cfg.server.drain_seconds
            while self.sessions and time.monotonic() < deadline:  # noqa: ASYNC110 - polls two conditions
                await asyncio.sleep(0.05)
            for c in list(self.sessions.values()):
                c.close(CloseCode.RESTART, "service restart")
            deadline = time.monotonic() + CLOSE_TIMEOUT + 0.5  # each closes as its client answers
            while self.sessions and time.monotonic() < deadline:  # noqa: ASYNC110 - polls two conditions
                await asyncio.sleep(0.05)

    async def stop(self) -> None:
        if self.announcer is not None:
            with contextlib.suppress(Exception):
                await self.announcer.withdraw()
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        if self._listener is not None:
            self._listener.close()
        for conn in list(self.sessions.values()):
            conn.transport.abort()  # whatever drain left open: exit now, not when clients answer
        if self._runner is not None:
            await self._runner.cleanup()
        await self.http.close()  # HTTP API
        if self.hub is not None:
            await self.hub.close()
        if self._store is not None:
            await self._store.close()
        await self.auth.close()
        if self.nc is not None:
            await let_go(self.nc)
        log.info("gateway stopped")

    # ------------------------------------------------------------------ connections
    def next_session_id(self) -> str:
        self._n += 1
        return f"{self.gateway_id}-{self._n}"

    def register(self, conn: Connection) -> None:
        self.sessions[conn.session] = conn
        self.metrics.connections_total.inc()
        self.metrics.active_connections.set(len(self.sessions))

    def forget(self, conn: Connection) -> bool:
        """Drop a connection that ended; False when it was never registered (refused at its limit)."""
        if self.sessions.pop(conn.session, None) is None:
            return False
        if self.hub is not None:
            self.hub.detach(conn.session)
        self.metrics.active_connections.set(len(self.sessions))
        return True

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        self._background.spawn(coro)

    def on_slow(self, session: Session) -> None:
        if session.closed:
            return
        conn = self.sessions.get(session)
        log.warning("slow consumer closed", extra={"session": session.id, "remote": session.remote})
        # Queued frames would only delay the close; the ERROR says they were not delivered.
        session.discard_pending()
        if conn is None:
            session.closed = True
            return
        conn.close_reason = "slow consumer"
        conn.error(ErrorCode.SLOW_CONSUMER, f"outbox exceeded {session.outbox_bytes} bytes; closing")
        session.write_now()
        session.closed = True  # nothing more queues for it
        conn.close(CloseCode.SLOW_CONSUMER, "slow consumer")

    # ------------------------------------------------------------------ status and heartbeats
    async def _on_status(self, msg: Any) -> None:
        st = self.sources.receive(msg.data)
        if st is not None:
            self._broadcast_status(st)

    def _broadcast_status(self, st: SourceStatus) -> None:
        log.info(
            "source status", extra={"source": st.source, "state": st.state, "symbol": st.symbol, "reason": st.reason}
        )
        env = status_envelope(st)
        if st.symbol:
            for s in self.sessions:
                if st.symbol in s.symbols:
                    s.send(env)
        else:
            self._broadcast(env.data, only_subscribed=True)

    def _broadcast(self, data: Any, *, only_subscribed: bool, kind: str = "STATUS") -> None:
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
            self._broadcast(
                ServerHeartbeat(timestamp=iso_now(), server_time_us=now_us()), only_subscribed=False, kind="HEARTBEAT"
            )

    async def _ping_sweep(self) -> None:
        """Dead peers, found by one sweep over every connection instead of aiohttp's timers per
        connection (~0.9 KB each): a PING after an interval of silence, closed half an interval on."""
        interval = self.cfg.server.heartbeat_interval
        while True:
            await asyncio.sleep(interval / 2)
            now = time.monotonic()
            for conn in list(self.sessions.values()):
                conn.check_alive(now, interval)

    async def _watch_sources(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            now = time.monotonic()
            if self.nc is not None and self.nc.is_connected:  # with NATS away, silence is ours, not theirs
                for st in self.sources.check_silence():
                    self._broadcast_status(st)
            if self.sources.nothing_heard(now) and any(s.streams for s in self.sessions):
                own = self.sources.set_own("down", self.sources.silence_reason(now, self.subjects.prefix))
                if own is not None:
                    self._broadcast_status(own)
            elif self.sources.heard_any and self._nats_lost_at is None:
                own = self.sources.set_own("live", "a source is heard again")
                if own is not None:
                    self._broadcast_status(own)
            self.metrics.sources_down.set(self.sources.silent + (1 if self.sources.nothing_heard(now) else 0))

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
        self._nats_lost_at = None
        self.sources.heard_now(time.monotonic())  # sources get their heartbeat intervals afresh
        own = self.sources.set_own("live", "NATS connection restored")
        if own is not None:
            self._broadcast_status(own)
        if self.nc is not None:
            await ensure_streams(self.nc, self.cfg.retention, self.subjects)
        if self.announcer is not None:
            await self.announcer.announce()

    async def _on_disconnect(self) -> None:
        self.metrics.nats_connected.set(0)
        if self._nats_lost_at is None:
            self._nats_lost_at = time.monotonic()
        own = self.sources.set_own("stale", "gateway lost its NATS connection: data may be late or missing")
        if own is not None:
            self._broadcast_status(own)
