"""One client: the WebSocket handshake, authentication, the read loop and command dispatch.

The outbound side is the connection's `Session` (session.py); this module owns what comes in and
when the connection ends. Every reply goes through the session, so it is bounded and ordered with
the data like everything else.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING, Any

import msgspec
from aiohttp import WSMsgType, web
from argus_protocol import MSGPACK, CloseCode, ErrorCode, decode_client, iso_now, now_us
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
    Welcome,
)

from .auth import OPEN, AuthError, Grant
from .commands import request_items
from .frames import PING
from .options import delivery_options
from .ratelimit import TokenBucket
from .session import Session

if TYPE_CHECKING:
    from .server import Gateway

log = logging.getLogger("argus.gateway")

MSGPACK_SUBPROTOCOL = "argus.v1.msgpack"
JSON_SUBPROTOCOL = "argus.v1.json"

# What a client can send that is not a valid message: each is INVALID_MESSAGE, never a crash.
DECODE_ERRORS = (msgspec.MsgspecError, RecursionError, ValueError, TypeError, OverflowError)


def _decode_problem(e: BaseException) -> str:
    if isinstance(e, RecursionError):
        return "not a valid envelope: nested too deeply"
    return f"not a valid envelope: {e}"[:300]


class Connection:
    __slots__ = ("bucket", "close_reason", "expiry", "gw", "heard", "ping_at", "request", "session", "ws")

    def __init__(self, gw: Gateway, request: web.Request, ws: web.WebSocketResponse, session: Session) -> None:
        self.gw = gw
        self.request = request
        self.ws = ws
        self.session = session
        self.expiry: asyncio.TimerHandle | None = None
        self.close_reason = ""  # why the gateway closed it, when it did (e.g. "slow consumer")
        self.heard = time.monotonic()  # the last frame of any kind from the client
        self.ping_at = 0.0  # when the last PING went out
        srv = gw.cfg.server
        self.bucket = TokenBucket(srv.max_messages_per_second, srv.rate_limit_burst)

    # ------------------------------------------------------------------ lifecycle
    @classmethod
    async def serve(cls, gw: Gateway, request: web.Request) -> web.StreamResponse:
        """aiohttp handler: refuse early, upgrade, then run the connection until it ends."""
        cfg = gw.cfg
        srv = cfg.server
        origin = request.headers.get("Origin")
        allowed = cfg.security.allowed_origins
        if origin and "*" not in allowed and origin not in allowed:
            gw.metrics.errors.labels(ErrorCode.FORBIDDEN).inc()
            log.info("origin refused", extra={"origin": origin, "remote": request.remote})
            return web.Response(status=403, text="origin not allowed\n")
        if gw.draining:
            return web.Response(status=503, text="draining\n", headers={"Retry-After": "1"})
        address = gw.peers.client_address(request.remote or "", request.headers.get("X-Forwarded-For"))
        encoding = MSGPACK if request.query.get("encoding") == MSGPACK else "json"
        ws = web.WebSocketResponse(
            protocols=(MSGPACK_SUBPROTOCOL, JSON_SUBPROTOCOL),
            max_msg_size=srv.max_frame_bytes,
            compress=srv.permessage_deflate,
            heartbeat=None,  # one sweep for every connection (check_alive), not a timer per connection
            autoping=False,  # the read loop answers pings and hears pongs
            timeout=2.0,
        )
        await ws.prepare(request)
        if ws.ws_protocol == MSGPACK_SUBPROTOCOL:
            encoding = MSGPACK
        options, option_errors = delivery_options(request.query)
        hub = gw.hub
        assert hub is not None
        session = Session(
            gw.next_session_id(),
            request.transport,
            encoding,
            outbox_bytes=srv.outbox_bytes,
            high_water=srv.write_buffer_high,
            slow_close=srv.slow_consumer == "close",
            on_dirty=hub.mark_dirty,
            on_slow=gw.on_slow,
            gap_frame=hub.gap_frame,
            remote=address,
            batch=options.batch,
            conflate_ms=options.conflate_ms,
            deflate_bits=int(ws.compress),  # window bits the client allows us, 0 when not negotiated
        )
        conn = cls(gw, request, ws, session)
        if len(gw.sessions) >= srv.max_connections:
            conn.error(ErrorCode.UNAVAILABLE, f"connection limit of {srv.max_connections} reached; try again later")
            session.write_now()
            gw.metrics.disconnects.labels("connection_limit").inc()
            await ws.close(code=CloseCode.TRY_AGAIN_LATER, message=b"connection limit")
            return ws
        if not gw.peers.admit(address):
            limit = srv.max_connections_per_ip
            conn.error(ErrorCode.UNAVAILABLE, f"limit of {limit} connections per address reached; try again later")
            session.write_now()
            gw.metrics.disconnects.labels("address_limit").inc()
            await ws.close(code=CloseCode.TRY_AGAIN_LATER, message=b"connection limit per address")
            return ws
        try:
            await conn.run(option_errors)
        finally:
            gw.peers.release(address)
        return ws

    async def run(self, option_errors: list[str]) -> None:
        gw, session = self.gw, self.session
        gw.register(self)
        reason = "client closed"
        try:
            grant = await self._authenticate()
            if grant is None:
                reason = "auth failed"
                return
            session.grant = grant
            for problem in option_errors:  # after WELCOME, which states the options in force
                self.error(ErrorCode.INVALID_MESSAGE, problem)
            log.info(
                "connected",
                extra={
                    "session": session.id,
                    "remote": session.remote,
                    "encoding": session.encoding,
                    "subject": grant.subject,
                },
            )
            reason = await self._read_loop()
            reason = self.close_reason or reason
        except Exception:
            log.exception("session failed", extra={"session": session.id})
            reason = "internal error"
            self.error(ErrorCode.INTERNAL, "internal error")
            await self.close(CloseCode.INTERNAL, "internal error")
        finally:
            if self.expiry is not None:
                self.expiry.cancel()
            gw.forget(self)
            log.info(
                "disconnected",
                extra={
                    "session": session.id,
                    "remote": session.remote,
                    "reason": reason,
                    "close_code": self.ws.close_code,
                },
            )
            gw.metrics.disconnects.labels(reason).inc()

    async def close(self, code: int, reason: str) -> None:
        session = self.session
        session.write_now()
        session.closed = True
        ws = self.ws
        if not ws.closed:
            with contextlib.suppress(Exception):
                # No drain: a client that stopped reading would hold us forever; the socket
                # still sends what is buffered, then the close frame, as the client reads.
                await ws.close(code=code, message=reason.encode()[:120], drain=False)

    def check_alive(self, now: float, interval: float) -> None:
        """The gateway's ping sweep, every `interval / 2`: silent for `interval`, the client gets
        a PING; nothing heard since a PING of an earlier sweep, the connection is closed."""
        if self.ping_at and self.heard < self.ping_at:
            if self.close_reason or self.session.closed:
                return
            self.close_reason = "ping timeout"
            self.gw.spawn(self.close(CloseCode.POLICY, f"no pong within {interval / 2:g} s"))
        elif now - self.heard >= interval:
            self.ping_at = now
            self.session.push_frame(PING)

    # ------------------------------------------------------------------ replies
    def error(self, code: str, message: str, req_id: str | int | None = None) -> None:
        self.gw.metrics.errors.labels(str(code)).inc()
        # Bounded by the inbound rate limit, so a misbehaving client cannot flood the log.
        log.info(
            "client error",
            extra={
                "session": self.session.id,
                "remote": self.session.remote,
                "code": str(code),
                "detail": message[:200],
            },
        )
        self.session.send(Envelope("ERROR", Error(code=str(code), message=message, id=req_id), iso_now(), req_id))

    def _welcome(self, auth_required: bool) -> None:
        srv = self.gw.cfg.server
        s = self.session
        s.send(
            Envelope(
                "WELCOME",
                Welcome(
                    session_id=s.id,
                    protocol_version=PROTOCOL_VERSION,
                    heartbeat_interval=srv.heartbeat_interval,
                    encoding=s.encoding,
                    limits=Limits(
                        max_subscriptions=srv.max_subscriptions_per_client,
                        max_message_bytes=srv.max_message_bytes,
                        max_messages_per_second=srv.max_messages_per_second,
                        outbox_bytes=srv.outbox_bytes,
                        max_items_per_request=srv.max_items_per_request,
                    ),
                    auth_required=auth_required,
                    options={
                        "slow_consumer": srv.slow_consumer,
                        "batch": s.batch,
                        "conflate_ms": s.conflate_ms,
                        "compression": "permessage-deflate" if s.deflate_bits else "none",
                        "max_history": srv.max_history,
                    },
                ),
                iso_now(),
            )
        )

    # ------------------------------------------------------------------ authentication
    async def _authenticate(self) -> Grant | None:
        gw = self.gw
        sec = gw.cfg.security
        if not sec.enable_auth:
            self._welcome(False)
            return OPEN
        headers = self.request.headers
        header = headers.get("Authorization", "")
        token = header[7:].strip() if header[:7].lower() == "bearer " else self.request.query.get("token", "")
        if token:
            try:
                grant = await gw.auth.check(token)
            except AuthError as e:
                await self._refuse(str(e))
                return None
            self._welcome(True)
            self._arm_expiry(grant)
            return grant
        if gw.awaiting_auth >= sec.max_unauthenticated:
            gw.metrics.refused.labels("unauthenticated").inc()
            self.error(ErrorCode.UNAVAILABLE, "too many connections are waiting to authenticate; try again later")
            await self.close(CloseCode.TRY_AGAIN_LATER, "too many unauthenticated")
            return None
        self._welcome(True)
        # No token on the handshake: the first message must be AUTH, within auth_timeout.
        gw.awaiting_auth += 1
        try:
            msg = await self.ws.receive(timeout=sec.auth_timeout)
        except TimeoutError:
            await self._refuse(f"no AUTH within {sec.auth_timeout:g}s")
            return None
        finally:
            gw.awaiting_auth -= 1
        if msg.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
            return None
        if len(msg.data) > gw.cfg.server.max_message_bytes:
            await self._refuse("first message must be AUTH with a token")
            return None
        try:
            env = decode_client(msg.data, MSGPACK if msg.type == WSMsgType.BINARY else "json")
            if env.type != "AUTH":
                raise AuthError("first message must be AUTH")
            req = msgspec.convert(env.data, Auth)
            grant = await gw.auth.check(req.token)
        except AuthError as e:
            await self._refuse(str(e))
            return None
        except DECODE_ERRORS:
            await self._refuse("first message must be AUTH with a token")
            return None
        self._arm_expiry(grant)
        self.session.send(
            Envelope(
                "AUTHENTICATED", Authenticated(subject=grant.subject, expires_at=grant.expires_at), iso_now(), env.id
            )
        )
        return grant

    async def _refuse(self, why: str) -> None:
        self.error(ErrorCode.UNAUTHORIZED, why)
        await self.close(CloseCode.POLICY, "unauthorized")

    def _arm_expiry(self, grant: Grant) -> None:
        """The session ends when its newest token does (`exp` plus the configured leeway)."""
        if self.expiry is not None:
            self.expiry.cancel()
            self.expiry = None
        if grant.expires_at is None:
            return
        delay = max(0.0, grant.expires_at + self.gw.auth.leeway - time.time())
        self.expiry = asyncio.get_running_loop().call_later(delay, self._expire, grant)

    def _expire(self, grant: Grant) -> None:
        self.expiry = None
        if not self.session.closed and self.session.grant is grant:
            self.error(ErrorCode.UNAUTHORIZED, "token expired")
            self.gw.spawn(self.close(CloseCode.POLICY, "token expired"))

    # ------------------------------------------------------------------ reading
    async def _read_loop(self) -> str:
        gw, ws = self.gw, self.ws
        srv = gw.cfg.server
        received = gw.metrics.messages_received
        # An oversized message costs as much as the largest request (it is refused unread, but its
        # bytes were read); every other message one token, a request more per stream it names.
        oversize_cost = 1 + srv.max_items_per_request // srv.rate_limit_items_per_token
        while True:  # receive(), not `async for`: one coroutine frame less held per connection
            msg = await ws.receive()
            self.heard = time.monotonic()
            if msg.type == WSMsgType.PING:
                await ws.pong(msg.data)
                continue
            if msg.type == WSMsgType.PONG:
                continue
            if msg.type == WSMsgType.TEXT:
                text: str = msg.data
                data: str | bytes = text
                size = len(text) if len(text) * 4 <= srv.max_message_bytes else len(text.encode())
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
                if not self.bucket.take(oversize_cost):
                    if await self._rate_limited():
                        return "rate limited"
                    continue
                self.error(ErrorCode.MESSAGE_TOO_LARGE, f"message of {size} bytes exceeds {srv.max_message_bytes}")
                continue
            if not self.bucket.take():
                if await self._rate_limited():
                    return "rate limited"
                continue
            if await self._dispatch(data, encoding):
                return "rate limited"
        return (
            "client closed"
            if ws.close_code in (None, CloseCode.NORMAL, CloseCode.GOING_AWAY)
            else f"closed {ws.close_code}"
        )

    async def _rate_limited(self) -> bool:
        """A message refused for its cost: RATE_LIMITED now and then; True when this closed the connection."""
        srv = self.gw.cfg.server
        strikes = self.bucket.strike()
        if strikes >= srv.rate_limit_strikes:
            self.error(ErrorCode.RATE_LIMITED, "message rate limit repeatedly exceeded; closing")
            await self.close(CloseCode.POLICY, "rate limit")
            return True
        if strikes == 1 or strikes % 10 == 0:
            self.error(ErrorCode.RATE_LIMITED, f"more than {srv.max_messages_per_second:g} messages/s; message dropped")
        return False

    async def _dispatch(self, data: str | bytes, encoding: str) -> bool:
        """Decode and run one message; True when it closed the connection (rate limit)."""
        try:
            env = decode_client(data, encoding)
        except DECODE_ERRORS as e:
            self.error(ErrorCode.INVALID_MESSAGE, _decode_problem(e))
            return False
        kind = env.type
        if kind not in KNOWN_CLIENT_TYPES:
            self.error(ErrorCode.UNKNOWN_TYPE, f"unknown message type {kind[:40]!r}", env.id)
            return False
        req: Any = None
        if kind in CLIENT_TYPES:
            try:
                req = msgspec.convert({} if env.data is None else env.data, CLIENT_TYPES[kind])
            except DECODE_ERRORS as e:
                problem = "nested too deeply" if isinstance(e, RecursionError) else str(e)
                self.error(ErrorCode.INVALID_MESSAGE, f"bad {kind}: {problem}"[:300], env.id)
                return False
        commands = self.gw.commands
        assert commands is not None
        session = self.session
        if kind in ("SUBSCRIBE", "UNSUBSCRIBE"):
            srv = self.gw.cfg.server
            items = request_items(req)
            limit = srv.max_items_per_request
            extra = min(items, limit) // srv.rate_limit_items_per_token
            if extra and not self.bucket.take(extra):
                return await self._rate_limited()
            if items > limit:
                self.error(
                    ErrorCode.INVALID_MESSAGE,
                    f"{kind} names {items} streams or entries; at most {limit} per request",
                    env.id,
                )
                return False
        if kind == "SUBSCRIBE":
            commands.subscribe(session, req, env)
        elif kind == "UNSUBSCRIBE":
            commands.unsubscribe(session, req, env)
        elif kind == "SUBSCRIPTIONS":
            commands.subscriptions(session, env)
        elif kind == "HEARTBEAT":
            session.send(
                Envelope("HEARTBEAT", ServerHeartbeat(timestamp=iso_now(), server_time_us=now_us()), iso_now(), env.id)
            )
        elif kind == "AUTH":
            await self._reauth(req, env)
        return False

    async def _reauth(self, req: Auth, env: ClientEnvelope) -> None:
        """A new token mid-session: its grant replaces the old one for every held stream, and its
        expiry is the session's."""
        gw = self.gw
        try:
            grant = await gw.auth.check(req.token) if gw.cfg.security.enable_auth else OPEN
        except AuthError as e:
            await self._refuse(str(e))
            return
        if self.session.closed:
            return
        self._arm_expiry(grant)
        self.session.send(
            Envelope(
                "AUTHENTICATED", Authenticated(subject=grant.subject, expires_at=grant.expires_at), iso_now(), env.id
            )
        )
        assert gw.commands is not None
        gw.commands.regrant(self.session, grant, env.id)
