"""One client after its upgrade: authentication, reading its frames, command dispatch, the close.

A `Connection` is the socket's asyncio protocol: frames are read in `data_received` as they come
(wsreader.py), with no task or coroutine per connection. The outbound side is the connection's
`Session` (session.py); every reply goes through it, so it is bounded and ordered with the data.
An awaited step (a token check) pauses reading until it is done, so messages stay in order.
"""

from __future__ import annotations

import asyncio
import logging
import struct
import time
from typing import TYPE_CHECKING, Any

import msgspec
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
from .upgrade import Head, choose_protocol, negotiate_deflate, switching
from .wsreader import BINARY, CLOSE, PONG, TEXT, Fault, FrameReader
from .wsreader import PING as PING_OP

if TYPE_CHECKING:
    from .server import Gateway

log = logging.getLogger("argus.gateway")

MSGPACK_SUBPROTOCOL = "argus.v1.msgpack"
JSON_SUBPROTOCOL = "argus.v1.json"
CLOSE_TIMEOUT = 2.0  # seconds a client has to answer our close frame before the socket is closed

# What a client can send that is not a valid message: each is INVALID_MESSAGE, never a crash.
DECODE_ERRORS = (msgspec.MsgspecError, RecursionError, ValueError, TypeError, OverflowError)
# Close codes a client may send (RFC 6455 §7.4): anything else in a close frame is a protocol error.
_CLIENT_CODES = frozenset((1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011))


def _decode_problem(e: BaseException) -> str:
    if isinstance(e, RecursionError):
        return "not a valid envelope: nested too deeply"
    return f"not a valid envelope: {e}"[:300]


def close_frame(code: int, reason: str) -> bytes:
    body = struct.pack("!H", code) + reason.encode()[:120]
    return bytes((0x88, len(body))) + body


def _pong(payload: bytes) -> bytes:
    return bytes((0x8A, len(payload))) + payload


class Connection(asyncio.Protocol):
    __slots__ = (
        "address",
        "bucket",
        "close_code",
        "close_reason",
        "closing",
        "expiry",
        "gw",
        "heard",
        "option_errors",
        "paused",
        "peer",
        "phase",
        "ping_at",
        "reader",
        "session",
        "timer",
        "transport",
    )

    def __init__(
        self, gw: Gateway, transport: asyncio.Transport, session: Session, reader: FrameReader, peer: str, address: str
    ) -> None:
        self.gw = gw
        self.transport = transport
        self.session = session
        self.reader = reader
        self.peer = peer  # the TCP peer as PeerLimits counts it ("" when it does not)
        self.address = address  # the client's address (X-Forwarded-For from a trusted proxy)
        self.expiry: asyncio.TimerHandle | None = None
        self.timer: asyncio.TimerHandle | None = None  # the AUTH deadline, then the close deadline
        self.close_reason = ""  # why the connection ended, once something decided it
        self.close_code: int | None = None  # the close frame's code, whichever side sent it first
        self.closing = False  # our close frame is out: only the client's close is read now
        self.paused = False  # an awaited step is running: frames wait in the reader
        self.phase = "open"  # "auth" while the first message must be AUTH
        self.option_errors: list[str] = []  # told after WELCOME when the first message is AUTH
        self.heard = time.monotonic()  # the last frame of any kind from the client
        self.ping_at = 0.0  # when the last PING went out
        srv = gw.cfg.server
        self.bucket = TokenBucket(srv.max_messages_per_second, srv.rate_limit_burst)

    # ------------------------------------------------------------------ lifecycle
    @classmethod
    def open(cls, gw: Gateway, transport: asyncio.Transport, head: Head, accept: str, peer: str, rest: bytes) -> None:
        """Answer 101 and take the socket over (the caller refused what must be refused)."""
        srv = gw.cfg.server
        protocol = choose_protocol(head, (MSGPACK_SUBPROTOCOL, JSON_SUBPROTOCOL))
        bits, extensions = negotiate_deflate(head) if srv.permessage_deflate else (0, "")
        transport.write(switching(accept, protocol, extensions))
        encoding = MSGPACK if protocol == MSGPACK_SUBPROTOCOL or head.query.get("encoding") == MSGPACK else "json"
        peername = transport.get_extra_info("peername")
        remote = str(peername[0]) if isinstance(peername, tuple) and peername else ""
        address = gw.peers.client_address(remote, head.headers.get("x-forwarded-for"))
        options, option_errors = delivery_options(head.query)
        hub = gw.hub
        assert hub is not None
        session = Session(
            gw.next_session_id(),
            transport,
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
            deflate_bits=bits,  # window bits the client allows us, 0 when not negotiated
        )
        conn = cls(gw, transport, session, FrameReader(srv.max_frame_bytes, bool(bits)), peer, "")
        transport.set_protocol(conn)
        if len(gw.sessions) >= srv.max_connections:
            conn.error(ErrorCode.UNAVAILABLE, f"connection limit of {srv.max_connections} reached; try again later")
            conn.close_reason = "connection_limit"
            conn.close(CloseCode.TRY_AGAIN_LATER, "connection limit")
            return
        if not gw.peers.admit(address):
            limit = srv.max_connections_per_ip
            conn.error(ErrorCode.UNAVAILABLE, f"limit of {limit} connections per address reached; try again later")
            conn.close_reason = "address_limit"
            conn.close(CloseCode.TRY_AGAIN_LATER, "connection limit per address")
            return
        conn.address = address
        gw.register(conn)
        conn.reader.feed(rest)
        conn._authenticate(head, option_errors)

    def connection_lost(self, exc: BaseException | None) -> None:
        for handle in (self.timer, self.expiry):
            if handle is not None:
                handle.cancel()
        self.timer = self.expiry = None
        session, gw = self.session, self.gw
        session.closed = True
        if self.phase == "auth":
            gw.awaiting_auth -= 1
            self.phase = "open"
        gw.peers.closed(self.peer)
        if self.address:
            gw.peers.release(self.address)
        code = self.close_code
        reason = self.close_reason or ("client closed" if code in (None, 1000, 1001) else f"closed {code}")
        if gw.forget(self):
            log.info(
                "disconnected",
                extra={"session": session.id, "remote": session.remote, "reason": reason, "close_code": code},
            )
        gw.metrics.disconnects.labels(reason).inc()
        self.reader.buf = bytearray()

    def close(self, code: int, reason: str) -> None:
        """Send what is queued, then the close frame; the socket closes when the client answers it
        or after CLOSE_TIMEOUT. No drain: a client that stopped reading would hold us forever, and
        the socket still sends what is buffered, then the close frame, as the client reads."""
        session = self.session
        if not session.closed:
            session.write_now()
            session.closed = True
        if self.closing:
            return
        self.closing = True
        if self.close_code is None:
            self.close_code = code
        t = self.transport
        if t.is_closing():
            return
        t.write(close_frame(code, reason))
        if self.timer is not None:
            self.timer.cancel()
        self.timer = asyncio.get_running_loop().call_later(CLOSE_TIMEOUT, t.close)

    def check_alive(self, now: float, interval: float) -> None:
        """The gateway's ping sweep, every `interval / 2`: silent for `interval`, the client gets
        a PING; nothing heard since a PING of an earlier sweep, the connection is closed."""
        if self.ping_at and self.heard < self.ping_at:
            if self.close_reason or self.session.closed:
                return
            self.close_reason = "ping timeout"
            self.close(CloseCode.POLICY, f"no pong within {interval / 2:g} s")
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
    def _authenticate(self, head: Head, option_errors: list[str]) -> None:
        gw = self.gw
        sec = gw.cfg.security
        if not sec.enable_auth:
            self._welcome(False)
            self._connected(OPEN, option_errors)
            self._read()
            return
        header = head.headers.get("authorization", "")
        token = header[7:].strip() if header[:7].lower() == "bearer " else head.query.get("token", "")
        if token:
            self._await(self._check_first(token, option_errors))
            return
        if gw.awaiting_auth >= sec.max_unauthenticated:
            gw.metrics.refused.labels("unauthenticated").inc()
            self.error(ErrorCode.UNAVAILABLE, "too many connections are waiting to authenticate; try again later")
            self.close_reason = "auth failed"
            self.close(CloseCode.TRY_AGAIN_LATER, "too many unauthenticated")
            return
        self._welcome(True)
        # No token on the handshake: the first message must be AUTH, within auth_timeout.
        gw.awaiting_auth += 1
        self.phase = "auth"
        self.timer = asyncio.get_running_loop().call_later(
            sec.auth_timeout, self._refuse, f"no AUTH within {sec.auth_timeout:g}s"
        )
        self.option_errors = option_errors
        self._read()

    async def _check_first(self, token: str, option_errors: list[str]) -> None:
        try:
            grant = await self.gw.auth.check(token)
        except AuthError as e:
            self._refuse(str(e))
            return
        self._welcome(True)
        self._connected(grant, option_errors)

    def _first_message(self, payload: bytes, opcode: int) -> None:
        """While `phase` is "auth": the message must be AUTH with a token."""
        gw = self.gw
        gw.awaiting_auth -= 1
        self.phase = "open"
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if len(payload) > gw.cfg.server.max_message_bytes:
            self._refuse("first message must be AUTH with a token")
            return
        try:
            env = decode_client(payload, MSGPACK if opcode == BINARY else "json")
            if env.type != "AUTH":
                raise AuthError("first message must be AUTH")
            req = msgspec.convert(env.data, Auth)
        except AuthError as e:
            self._refuse(str(e))
            return
        except DECODE_ERRORS:
            self._refuse("first message must be AUTH with a token")
            return
        self._await(self._check_auth_message(req, env))

    async def _check_auth_message(self, req: Auth, env: ClientEnvelope) -> None:
        try:
            grant = await self.gw.auth.check(req.token)
        except AuthError as e:
            self._refuse(str(e))
            return
        self._authenticated(grant, env.id)
        self._connected(grant, self.option_errors)
        self.option_errors = []

    def _connected(self, grant: Grant, option_errors: list[str]) -> None:
        session = self.session
        session.grant = grant
        self._arm_expiry(grant)
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

    def _authenticated(self, grant: Grant, req_id: str | int | None) -> None:
        self.session.send(
            Envelope(
                "AUTHENTICATED", Authenticated(subject=grant.subject, expires_at=grant.expires_at), iso_now(), req_id
            )
        )

    def _refuse(self, why: str) -> None:
        if self.phase == "auth":  # the AUTH deadline passed
            self.gw.awaiting_auth -= 1
            self.phase = "open"
            self.timer = None
        self.error(ErrorCode.UNAUTHORIZED, why)
        self.close_reason = self.close_reason or "auth failed"
        self.close(CloseCode.POLICY, "unauthorized")

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
            self.close(CloseCode.POLICY, "token expired")

    def _await(self, step: Any) -> None:
        """Run an awaited step with reading paused, then read on: what the client sent meanwhile
        waits in the reader (and the kernel), so messages are handled in the order they came."""
        self.paused = True
        self.transport.pause_reading()
        self.gw.spawn(self._then_read(step))

    async def _then_read(self, step: Any) -> None:
        try:
            await step
        except Exception:
            log.exception("session failed", extra={"session": self.session.id})
            self._internal_error()
        self.paused = False
        if not self.transport.is_closing():
            self.transport.resume_reading()
            self._read()

    # ------------------------------------------------------------------ reading
    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        if not self.paused:
            self._read()

    def _read(self) -> None:
        reader = self.reader
        while not self.paused:
            try:
                frame = reader.next()
            except Fault as f:
                self._fault(f)
                return
            if frame is None:
                return
            self.heard = time.monotonic()
            opcode, payload = frame
            if opcode == PING_OP:
                if not self.closing:
                    self.transport.write(_pong(payload))
            elif opcode == CLOSE:
                self._closed_by_client(payload)
                return
            elif opcode != PONG and not self.closing:
                try:
                    self._message(opcode, payload)
                except Fault as f:
                    self._fault(f)
                    return
                except Exception:
                    log.exception("session failed", extra={"session": self.session.id})
                    self._internal_error()
                    return

    def _fault(self, f: Fault) -> None:
        self.close_reason = self.close_reason or f"protocol error: {f.why}"[:120]
        self.close(f.code, f.why[:120])
        self.reader.buf = bytearray()  # nothing after a broken frame can be read

    def _internal_error(self) -> None:
        self.close_reason = "internal error"
        self.error(ErrorCode.INTERNAL, "internal error")
        self.close(CloseCode.INTERNAL, "internal error")

    def _closed_by_client(self, payload: bytes) -> None:
        """The client's close frame: answered with its code unless we closed first, then the socket closes."""
        code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else None
        valid = len(payload) != 1 and (code is None or code in _CLIENT_CODES or 3000 <= code <= 4999)
        if valid:
            try:
                payload[2:].decode()
            except UnicodeDecodeError:
                valid = False
        if self.close_code is None:
            self.close_code = code if valid else CloseCode.PROTOCOL_ERROR
        if not self.closing:
            self.closing = True
            self.session.closed = True
            answer = (code or CloseCode.NORMAL) if valid else CloseCode.PROTOCOL_ERROR
            self.transport.write(close_frame(answer, "" if valid else "malformed close frame"))
        self.transport.close()

    def _message(self, opcode: int, payload: bytes) -> None:
        if self.phase == "auth":
            self._first_message(payload, opcode)
            return
        gw = self.gw
        srv = gw.cfg.server
        gw.metrics.messages_received.inc()
        size = len(payload)
        if size > srv.max_message_bytes:
            # An oversized message costs as much as the largest request (it is refused unread, but
            # its bytes were read); every other message one token, a request more per stream it names.
            if not self.bucket.take(1 + srv.max_items_per_request // srv.rate_limit_items_per_token):
                self._rate_limited()
                return
            self.error(ErrorCode.MESSAGE_TOO_LARGE, f"message of {size} bytes exceeds {srv.max_message_bytes}")
            return
        data: str | bytes = payload
        if opcode == TEXT:
            try:
                data = payload.decode()
            except UnicodeDecodeError:
                raise Fault(CloseCode.INVALID_DATA, "text message is not UTF-8") from None
        if not self.bucket.take():
            self._rate_limited()
            return
        self._dispatch(data, "json" if opcode == TEXT else MSGPACK)

    def _rate_limited(self) -> None:
        """A message refused for its cost: RATE_LIMITED now and then, closed after repeated strikes."""
        srv = self.gw.cfg.server
        strikes = self.bucket.strike()
        if strikes >= srv.rate_limit_strikes:
            self.error(ErrorCode.RATE_LIMITED, "message rate limit repeatedly exceeded; closing")
            self.close_reason = "rate limited"
            self.close(CloseCode.POLICY, "rate limit")
            return
        if strikes == 1 or strikes % 10 == 0:
            self.error(ErrorCode.RATE_LIMITED, f"more than {srv.max_messages_per_second:g} messages/s; message dropped")

    def _dispatch(self, data: str | bytes, encoding: str) -> None:
        """Decode and run one message."""
        try:
            env = decode_client(data, encoding)
        except DECODE_ERRORS as e:
            self.error(ErrorCode.INVALID_MESSAGE, _decode_problem(e))
            return
        kind = env.type
        if kind not in KNOWN_CLIENT_TYPES:
            self.error(ErrorCode.UNKNOWN_TYPE, f"unknown message type {kind[:40]!r}", env.id)
            return
        req: Any = None
        if kind in CLIENT_TYPES:
            try:
                req = msgspec.convert({} if env.data is None else env.data, CLIENT_TYPES[kind])
            except DECODE_ERRORS as e:
                problem = "nested too deeply" if isinstance(e, RecursionError) else str(e)
                self.error(ErrorCode.INVALID_MESSAGE, f"bad {kind}: {problem}"[:300], env.id)
                return
        commands = self.gw.commands
        assert commands is not None
        session = self.session
        if kind in ("SUBSCRIBE", "UNSUBSCRIBE"):
            srv = self.gw.cfg.server
            items = request_items(req)
            limit = srv.max_items_per_request
            extra = min(items, limit) // srv.rate_limit_items_per_token
            if extra and not self.bucket.take(extra):
                self._rate_limited()
                return
            if items > limit:
                self.error(
                    ErrorCode.INVALID_MESSAGE,
                    f"{kind} names {items} streams or entries; at most {limit} per request",
                    env.id,
                )
                return
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
            self._await(self._reauth(req, env))

    async def _reauth(self, req: Auth, env: ClientEnvelope) -> None:
        """A new token mid-session: its grant replaces the old one for every held stream, and its
        expiry is the session's."""
        gw = self.gw
        try:
            grant = await gw.auth.check(req.token) if gw.cfg.security.enable_auth else OPEN
        except AuthError as e:
            self._refuse(str(e))
            return
        if self.session.closed:
            return
        self._arm_expiry(grant)
        self._authenticated(grant, env.id)
        assert gw.commands is not None
        gw.commands.regrant(self.session, grant, env.id)
