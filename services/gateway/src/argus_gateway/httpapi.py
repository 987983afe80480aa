"""The HTTP API on the gateway's port: bars, a day's 分时, trades, snapshots of many symbols, trading
calendars and the OpenAPI document (`/v1/...`), with the WebSocket's auth, entitlements, error codes
and a rate limit per client IP.

What JetStream retains is served from there (archive.py); what it does not reach is asked of the
symbol's source over NATS (deephistory.py) and joined below the retained part, so the newest bar
over HTTP is the newest bar a subscriber's replay starts from.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import date, datetime, timedelta, tzinfo
from typing import TYPE_CHECKING, Any, NoReturn
from urllib.parse import urlencode

from aiohttp import web
from argus_calendar import Calendar, UnknownMarket
from argus_protocol import (
    ADJUSTMENTS,
    DATA_TYPES,
    PERIODS,
    ErrorCode,
    Event,
    HistoryRequest,
    InvalidSymbol,
    Stream,
    event_time,
    market_of,
    parse_symbol,
    parse_when,
    zone_of,
)
from argus_protocol.messages import Rejected
from argus_service.retained import DirectGet, StoreError
from nats.aio.client import Client
from prometheus_client import CollectorRegistry, Counter, Histogram

from . import httpbody as body
from .archive import Archive
from .auth import OPEN, AuthError, Grant
from .deephistory import DeepHistory, NoAnswer
from .openapi import document
from .ratelimit import TokenBucket

if TYPE_CHECKING:
    from .server import Gateway

log = logging.getLogger("argus.http")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
SNAPSHOT_FETCHES = 16  # streams asked of sources at once for one snapshot
QUOTES_PER_ASK = 200  # symbols per quote-snapshot request to a source
_SECOND = timedelta(seconds=1)


class Refused(Exception):
    """Answer the request with this ERROR (and HTTP status)."""

    def __init__(self, code: str, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


def _refuse(code: str, message: str, status: int | None = None) -> NoReturn:
    raise Refused(code, message, status)


class Params:
    """A request's query string, checked: unknown keys and bad values are refused with a reason."""

    def __init__(self, query: Mapping[str, str], allowed: Iterable[str]) -> None:
        self.q = query
        extra = sorted(set(query) - set(allowed) - {"token"})
        if extra:
            _refuse(ErrorCode.INVALID_MESSAGE, f"unknown parameter {extra[0]!r}; expected {', '.join(sorted(allowed))}")

    def text(self, name: str, default: str = "") -> str:
        return self.q.get(name, default).strip()

    def symbol(self) -> str:
        sym = self.text("symbol")
        if not sym:
            _refuse(ErrorCode.INVALID_MESSAGE, "symbol is required (CODE.MARKET, e.g. 000001.SZ)")
        try:
            parse_symbol(sym)
        except InvalidSymbol as e:
            _refuse(ErrorCode.INVALID_SYMBOL, str(e))
        return sym

    def choice(self, name: str, options: Iterable[str], default: str, code: str = ErrorCode.INVALID_MESSAGE) -> str:
        value = self.text(name, default)
        opts = tuple(options)
        if value not in opts:
            _refuse(code, f"{name} must be one of {', '.join(opts)}, not {value[:20]!r}")
        return value

    def whole(self, name: str, default: int, most: int) -> int:
        raw = self.text(name)
        if not raw:
            return min(default, most)
        try:
            n = int(raw)
        except ValueError:
            _refuse(ErrorCode.INVALID_MESSAGE, f"{name} must be a whole number, not {raw[:20]!r}")
        if not 1 <= n <= most:
            _refuse(ErrorCode.INVALID_MESSAGE, f"{name} must be within 1..{most} per call, got {n}")
        return n

    def when(self, name: str, tz: tzinfo, *, end: bool = False) -> datetime | None:
        raw = self.text(name)
        if not raw:
            return None
        try:
            return parse_when(raw, tz, end=end)
        except ValueError:
            _refuse(ErrorCode.INVALID_MESSAGE, f"{name} must be an ISO-8601 date or datetime, not {raw[:40]!r}")

    def day(self, name: str) -> date | None:
        raw = self.text(name)
        if not raw:
            return None
        try:
            return date.fromisoformat(raw)
        except ValueError:
            _refuse(ErrorCode.INVALID_MESSAGE, f"{name} must be a date YYYY-MM-DD, not {raw[:20]!r}")

    def items(self, name: str) -> list[str]:
        return list(dict.fromkeys(x.strip() for x in self.text(name).split(",") if x.strip()))


def _iso(t: datetime) -> str:
    return t.isoformat(timespec="seconds")


class HttpApi:
    def __init__(self, gw: Gateway, registry: CollectorRegistry) -> None:
        self.gw = gw
        self.cfg = gw.cfg.http
        self.requests = Counter(
            "gateway_http_requests_total",
            "HTTP API requests, by endpoint and status",
            ["endpoint", "status"],
            registry=registry,
        )
        self.seconds = Histogram(
            "gateway_http_request_seconds", "HTTP API answer time", ["endpoint"], registry=registry
        )
        self.asked = Counter(
            "gateway_http_source_requests_total",
            "History requests the HTTP API sent to sources, by outcome",
            ["outcome"],
            registry=registry,
        )
        self.archive: Archive | None = None
        self.deep: DeepHistory | None = None
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()

    async def start(self, nc: Client, store: DirectGet) -> None:
        self.archive = Archive(store, self.gw.subjects, self.gw.cfg.retention)
        self.deep = DeepHistory(nc, self.gw.subjects, self.gw.sources, self.gw.cfg.history)
        await self.deep.start()

    async def close(self) -> None:
        if self.deep is not None:
            await self.deep.close()

    def routes(self) -> list[tuple[str, Handler]]:
        return [
            ("/v1/bars", self._endpoint("bars", self.bars)),
            ("/v1/ticks", self._endpoint("ticks", self.ticks)),
            ("/v1/trades", self._endpoint("trades", self.trades)),
            ("/v1/snapshot", self._endpoint("snapshot", self.snapshot)),
            ("/v1/calendar", self._endpoint("calendar", self.calendar)),
            ("/v1/openapi.json", self._endpoint("openapi", self.openapi, auth=False)),
        ]

    def register(self, router: web.UrlDispatcher) -> None:
        if not self.cfg.enabled:
            return
        for path, handler in self.routes():
            router.add_get(path, handler)

    # what every endpoint does first -----------------------------------------------------------
    def _endpoint(self, name: str, fn: Callable[[web.Request, Grant], Awaitable[Any]], auth: bool = True) -> Handler:
        async def handle(request: web.Request) -> web.StreamResponse:
            started = time.perf_counter()
            code = ""
            try:
                resp = await self._guarded(request, fn, auth)
            except Refused as r:
                code = str(r.code)
                resp = body.error(request, r.code, r.message, r.status, self._extra_headers(r.code))
            except Exception:
                log.exception("http request failed", extra={"endpoint": name, "query": request.query_string[:200]})
                code = ErrorCode.INTERNAL
                resp = body.error(request, code, "internal error")
            self.requests.labels(name, str(resp.status)).inc()
            self.seconds.labels(name).observe(time.perf_counter() - started)
            if code:
                self.gw.metrics.errors.labels(code).inc()  # the WebSocket's error counter, by the same codes
            return resp

        return handle

    @staticmethod
    def _extra_headers(code: str) -> dict[str, str] | None:
        if code == ErrorCode.RATE_LIMITED:
            return {"Retry-After": "1"}
        if code == ErrorCode.UNAUTHORIZED:
            return {"WWW-Authenticate": 'Bearer realm="argus"'}
        return None

    async def _guarded(
        self, request: web.Request, fn: Callable[[web.Request, Grant], Awaitable[Any]], auth: bool
    ) -> web.StreamResponse:
        gw = self.gw
        origin = request.headers.get("Origin")
        allowed = gw.cfg.security.allowed_origins
        if origin and "*" not in allowed and origin not in allowed:
            _refuse(ErrorCode.FORBIDDEN, "origin not allowed")
        if gw.draining:
            _refuse(ErrorCode.UNAVAILABLE, "gateway draining; try another")
        if not self._take(request.remote or ""):
            _refuse(ErrorCode.RATE_LIMITED, f"more than {self.cfg.requests_per_second:g} requests/s from this client")
        grant = await self._grant(request) if auth else OPEN
        result = await fn(request, grant)
        return result if isinstance(result, web.StreamResponse) else body.reply(request, result)

    def _take(self, ip: str) -> bool:
        bucket = self._buckets.get(ip)
        if bucket is None:
            bucket = self._buckets[ip] = TokenBucket(self.cfg.requests_per_second, self.cfg.burst)
            while len(self._buckets) > self.cfg.max_clients:
                self._buckets.popitem(last=False)  # the least recently seen client
        else:
            self._buckets.move_to_end(ip)
        return bucket.take()

    async def _grant(self, request: web.Request) -> Grant:
        if not self.gw.cfg.security.enable_auth:
            return OPEN
        header = request.headers.get("Authorization", "")
        token = header[7:].strip() if header[:7].lower() == "bearer " else request.query.get("token", "")
        try:
            return await self.gw.auth.check(token)
        except AuthError as e:
            _refuse(ErrorCode.UNAUTHORIZED, str(e))

    @staticmethod
    def _entitled(grant: Grant, data_type: str, symbol: str) -> None:
        if not grant.allows(data_type, symbol):
            _refuse(ErrorCode.FORBIDDEN, f"not entitled to {data_type} of {symbol}")

    async def _view(self, stream: Stream) -> tuple[list[Event], str | None]:
        assert self.archive is not None
        try:
            return await self.archive.view(stream), None
        except StoreError as e:
            log.warning("retention unreadable for http", extra={"stream": stream.key, "error": str(e)})
            return [], f"retention unavailable: {e}"

    async def _ask(self, req: HistoryRequest, deadline: float) -> tuple[Any, str | None]:
        """(the source's answer or None, why not)."""
        assert self.deep is not None
        try:
            answer = await self.deep.ask(req, max(0.1, deadline - time.monotonic()))
        except NoAnswer as e:
            self.asked.labels("unavailable").inc()
            return None, e.reason
        self.asked.labels("answered").inc()
        return answer, None

    # endpoints --------------------------------------------------------------------------------
    async def bars(self, request: web.Request, grant: Grant) -> Any:
        deadline = time.monotonic() + self.cfg.timeout
        p = Params(request.query, ("symbol", "period", "limit", "start", "end", "adjust"))
        symbol = p.symbol()
        period = p.choice("period", PERIODS, "1d", ErrorCode.UNSUPPORTED_DATA_TYPE)
        limit = p.whole("limit", 500, self.cfg.max_bars)
        adjust = p.choice("adjust", ADJUSTMENTS, "none")
        tz = zone_of(symbol)
        start, end = p.when("start", tz), p.when("end", tz, end=True)
        if start is not None and end is not None and start > end:
            _refuse(ErrorCode.INVALID_MESSAGE, "start is after end")
        self._entitled(grant, "kline", symbol)
        chosen: list[Event] = []
        sources: list[str] = []
        reason = None
        more = False
        covered = False
        if adjust == "none":  # retention holds bars as traded; adjusted ones only the source has
            view, reason = await self._view(Stream("kline", symbol, period))
            inside = [e for e in view if _within(e, start, end)]
            chosen = inside[-limit:]
            if chosen:
                sources.append("retention")
            more = len(inside) > len(chosen) or len(chosen) >= limit
            covered = len(chosen) >= limit or bool(start is not None and view and event_time(view[0]) <= start)
        adjust_source = ""
        applied = adjust
        if not covered:
            older_end = event_time(chosen[0]) - _SECOND if chosen else end
            req = HistoryRequest(
                kind="kline",
                symbols=[symbol],
                period=period,
                start=_iso(start) if start else "",
                end=_iso(older_end) if older_end else "",
                limit=limit - len(chosen),
                adjust=adjust,  # type: ignore[arg-type]
            )
            answer, why = await self._ask(req, deadline)
            if answer is None:
                if not chosen:
                    _refuse(ErrorCode.UNAVAILABLE, f"no bars for {symbol} {period}: {why}")
                reason = f"older bars not available: {why}"
            else:
                oldest = event_time(chosen[0]) if chosen else None
                older = [e for e in answer.events if oldest is None or event_time(e) < oldest]
                older = older[-(limit - len(chosen)) :] if limit > len(chosen) else []
                chosen = older + chosen
                sources.insert(0, answer.source)
                more = answer.more
                applied, adjust_source = answer.adjust, answer.adjust_source
                reason = None
        bars = [e.kline for e in chosen]  # type: ignore[union-attr]
        nxt = None
        if more and bars:
            q = {"symbol": symbol, "period": period, "limit": str(limit), "adjust": adjust}
            if start is not None:
                q["start"] = p.text("start")
            q["end"] = _iso(datetime.fromisoformat(bars[0].open_time) - _SECOND)
            nxt = f"/v1/bars?{urlencode(q)}"
        return body.Bars(
            symbol=symbol,
            period=period,
            adjust=applied,
            adjust_source=adjust_source,
            sources=sources,
            count=len(bars),
            more=more,
            complete=reason is None or covered,
            bars=bars,
            next=nxt,
            reason=reason,
        )

    async def ticks(self, request: web.Request, grant: Grant) -> Any:
        deadline = time.monotonic() + self.cfg.timeout
        p = Params(request.query, ("symbol", "date"))
        symbol = p.symbol()
        asked_day = p.day("date")
        self._entitled(grant, "tick", symbol)
        view, reason = await self._view(Stream("tick", symbol))
        day = asked_day.isoformat() if asked_day else (view[-1].tick.time[:10] if view else None)  # type: ignore[union-attr]
        mine = [e for e in view if e.tick.time[:10] == day]  # type: ignore[union-attr]
        sources = ["retention"] if mine else []
        covered = bool(mine) and (
            any(e.tick.time[:10] < (day or "") for e in view)  # type: ignore[union-attr]
            or _session_starts_by(symbol, mine[0])
        )
        if not covered:
            answer, why = await self._ask(HistoryRequest(kind="tick", symbols=[symbol], day=day or ""), deadline)
            if answer is None:
                if not mine:
                    _refuse(ErrorCode.UNAVAILABLE, f"no 分时 for {symbol}{' on ' + day if day else ''}: {why}")
                reason = f"the day's earlier minutes are not available: {why}"
            else:
                first = event_time(mine[0]) if mine else None
                theirs = [e for e in answer.events if first is None or event_time(e) < first]
                if day is None and theirs:
                    day = theirs[-1].tick.time[:10]  # type: ignore[union-attr]
                mine = [e for e in theirs if e.tick.time[:10] == day] + mine  # type: ignore[union-attr]
                sources.insert(0, answer.source)
                reason = None
        ticks = [e.tick for e in mine]  # type: ignore[union-attr]
        return body.Ticks(
            symbol=symbol,
            date=day,
            sources=sources,
            count=len(ticks),
            complete=reason is None,
            ticks=ticks,
            reason=reason,
        )

    async def trades(self, request: web.Request, grant: Grant) -> Any:
        deadline = time.monotonic() + self.cfg.timeout
        p = Params(request.query, ("symbol", "limit"))
        symbol = p.symbol()
        limit = p.whole("limit", 100, self.cfg.max_trades)
        self._entitled(grant, "trade", symbol)
        view, reason = await self._view(Stream("trade", symbol))
        chosen = view[-limit:]
        sources = ["retention"] if chosen else []
        more = len(view) > len(chosen) or len(chosen) >= limit
        if len(chosen) < limit:
            oldest = event_time(chosen[0]) if chosen else None
            answer, why = await self._ask(
                HistoryRequest(kind="trade", symbols=[symbol], end=_iso(oldest) if oldest else "", limit=limit),
                deadline,
            )
            if answer is None:
                if not chosen:
                    _refuse(ErrorCode.UNAVAILABLE, f"no trades for {symbol}: {why}")
                reason = f"older trades not available: {why}"
            else:
                held = {e.trade.trade_id for e in chosen}  # type: ignore[union-attr]
                older = [
                    e
                    for e in answer.events
                    if e.trade.trade_id not in held and (oldest is None or event_time(e) <= oldest)  # type: ignore[union-attr]
                ]
                chosen = older[-(limit - len(chosen)) :] + chosen
                sources.insert(0, answer.source)
                more = answer.more
                reason = None
        trades = [e.trade for e in chosen]  # type: ignore[union-attr]
        return body.Trades(
            symbol=symbol,
            sources=sources,
            count=len(trades),
            more=more,
            complete=reason is None,
            trades=trades,
            reason=reason,
        )

    async def snapshot(self, request: web.Request, grant: Grant) -> Any:
        deadline = time.monotonic() + self.cfg.timeout
        p = Params(request.query, ("symbols", "types", "periods"))
        symbols = p.items("symbols")
        if not symbols:
            _refuse(ErrorCode.INVALID_MESSAGE, "symbols is required: a comma-separated list")
        if len(symbols) > self.cfg.max_symbols:
            _refuse(ErrorCode.INVALID_MESSAGE, f"at most {self.cfg.max_symbols} symbols per call, got {len(symbols)}")
        types = p.items("types") or ["quote"]
        for t in types:
            if t not in DATA_TYPES:
                _refuse(ErrorCode.UNSUPPORTED_DATA_TYPE, f"unknown type {t[:20]!r}; one of {', '.join(DATA_TYPES)}")
        periods = p.items("periods") or ["1m"]
        for per in periods:
            if per not in PERIODS:
                _refuse(ErrorCode.UNSUPPORTED_DATA_TYPE, f"unknown period {per[:20]!r}; one of {', '.join(PERIODS)}")
        rejected: list[Rejected] = []
        streams: list[Stream] = []
        for sym in symbols:
            try:
                parse_symbol(sym)
            except InvalidSymbol as e:
                rejected.append(Rejected(ErrorCode.INVALID_SYMBOL, str(e)[:200], symbol=sym[:64]))
                continue
            for t in types:
                for per in periods if t == "kline" else ("",):
                    s = Stream(t, sym, per)
                    if grant.allows(t, sym):
                        streams.append(s)
                    else:
                        rejected.append(
                            Rejected(
                                ErrorCode.FORBIDDEN,
                                f"not entitled to {s.key}",
                                symbol=sym,
                                data_type=t,
                                period=per or None,
                            )
                        )
        if not streams:
            code = rejected[0].code if rejected else ErrorCode.INVALID_MESSAGE
            _refuse(code, "; ".join(r.message for r in rejected[:5]) or "nothing to look up")
        assert self.archive is not None
        note = None
        try:
            found = await self.archive.newest(streams)
        except StoreError as e:
            found, note = {}, f"retention unavailable: {e}"
        missing = [s for s in streams if s not in found]
        why: dict[Stream, str] = {}
        if missing:
            got, why = await self._fill(missing, deadline)
            found.update(got)
        out: dict[str, dict[str, Event]] = {}
        for s in streams:
            ev = found.get(s)
            if ev is not None:
                out.setdefault(s.symbol, {})[f"kline:{s.period}" if s.period else s.type] = ev
        lost = [
            body.Missing(s.symbol, s.type, why.get(s) or note or "nothing known", s.period or None)
            for s in streams
            if s not in found
        ]
        return body.Snapshot(count=sum(len(v) for v in out.values()), snapshots=out, missing=lost, rejected=rejected)

    async def _fill(self, missing: list[Stream], deadline: float) -> tuple[dict[Stream, Event], dict[Stream, str]]:
        """Ask the sources for streams retention has nothing of, all at once, within the deadline."""
        got: dict[Stream, Event] = {}
        why: dict[Stream, str] = {}
        slots = asyncio.Semaphore(SNAPSHOT_FETCHES)
        quotes = [s for s in missing if s.type == "quote"]
        by_market: dict[str, list[str]] = {}
        for s in quotes:
            by_market.setdefault(market_of(s.symbol), []).append(s.symbol)

        async def quote_batch(batch: list[str]) -> None:
            async with slots:
                answer, reason = await self._ask(HistoryRequest(kind="quote", symbols=batch), deadline)
            have: dict[str, Event] = {}
            for e in answer.events if answer is not None else []:
                have[e.symbol] = e
            for sym in batch:
                s = Stream("quote", sym)
                if sym in have:
                    got[s] = have[sym]
                else:
                    why[s] = reason or "the source has no quote for it"

        async def one(s: Stream) -> None:
            async with slots:
                req = HistoryRequest(kind=s.type, symbols=[s.symbol], period=s.period, limit=1)  # type: ignore[arg-type]
                answer, reason = await self._ask(req, deadline)
            if answer is not None and answer.events:
                got[s] = answer.events[-1]
            else:
                why[s] = reason or "the source has none"

        jobs = [
            quote_batch(b[i : i + QUOTES_PER_ASK]) for b in by_market.values() for i in range(0, len(b), QUOTES_PER_ASK)
        ]
        jobs += [one(s) for s in missing if s.type != "quote"]
        tasks = [asyncio.ensure_future(j) for j in jobs]
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=max(0.1, deadline - time.monotonic()))
            for t in pending:
                t.cancel()
        for s in missing:
            if s not in got and s not in why:
                why[s] = f"no answer within {self.cfg.timeout:g}s"
        return got, why

    async def calendar(self, request: web.Request, grant: Grant) -> Any:
        p = Params(request.query, ("market", "start", "end"))
        market = p.text("market").upper()
        if not market:
            _refuse(ErrorCode.INVALID_MESSAGE, "market is required (SH, SZ, BJ, HK, US)")
        try:
            cal = Calendar.for_market(market)
        except UnknownMarket as e:
            _refuse(ErrorCode.INVALID_MESSAGE, str(e))
        now = datetime.now(cal.tz)
        start = p.day("start") or now.date()
        end = p.day("end") or start
        if end < start:
            _refuse(ErrorCode.INVALID_MESSAGE, "start is after end")
        span = (end - start).days + 1
        if span > self.cfg.max_calendar_days:
            _refuse(ErrorCode.INVALID_MESSAGE, f"at most {self.cfg.max_calendar_days} days per call, got {span}")
        days = []
        for i in range(span):
            d = start + timedelta(days=i)
            td = cal.day(d)
            days.append(
                body.Day(
                    date=d.isoformat(),
                    trading=td is not None,
                    known=cal.knows(d),
                    sessions=[body.Session(x.phase, _iso(x.start), _iso(x.end)) for x in td.periods] if td else [],
                    hours=[[_iso(a), _iso(b)] for a, b in td.hours] if td else [],
                )
            )
        return body.CalendarBody(
            market=market,
            exchange=cal.exchange,
            timezone=str(cal.tz),
            start=start.isoformat(),
            end=end.isoformat(),
            known_until=cal.last_known.isoformat(),
            now=body.Now(
                time=_iso(now),
                phase=cal.phase(now),
                trading_day=cal.trading_day_at(now).isoformat(),
                open_today=cal.is_trading_day(now.date()),
            ),
            trading_days=[x.date for x in days if x.trading],
            days=days,
        )

    async def openapi(self, request: web.Request, grant: Grant) -> Any:
        return web.json_response(document(self.cfg), content_type="application/json")


def _within(e: Event, start: datetime | None, end: datetime | None) -> bool:
    t = event_time(e)
    return (start is None or t >= start) and (end is None or t <= end)


def _session_starts_by(symbol: str, first: Event) -> bool:
    """The retained minutes of a day start at (or before) its first session minute."""
    try:
        cal = Calendar.for_market(market_of(symbol))
    except UnknownMarket:
        return False
    t = event_time(first)
    hours = cal.trading_hours(t.astimezone(cal.tz).date())
    return bool(hours) and t <= hours[0][0]
