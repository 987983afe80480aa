"""A fake TDX quote server on 127.0.0.1 that speaks the real wire protocol to the real pytdx.

The market it serves is plain data (`FakeMarket`) a test may change while clients poll; the
server's failure modes (refused login, empty bodies, dying mid-stream) are switches on it.
"""

from __future__ import annotations

import socket
import socketserver
import struct
import threading
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

import tdxwire as w

LOGIN_BODY = bytes(range(1, 18))  # setup answers: pytdx keeps but never reads them


@dataclass
class FakeQuote:
    price: float
    last_close: float
    open: float
    high: float
    low: float
    vol: int  # lots
    cur_vol: int
    amount: float
    bids: list[float]
    bid_vols: list[int]
    asks: list[float]
    ask_vols: list[int]
    servertime: int  # raw; 0 or 100 means suspended
    decimals: int = 2  # quote prices are sent ×100, or ×1000 for 3-decimal instruments


@dataclass
class FakeBar:
    end: datetime  # TDX labels bars by their end
    open: float
    close: float
    high: float
    low: float
    vol: float  # lots
    amount: float


@dataclass
class FakeTrade:
    hhmm: str
    price: float
    vol: int
    num: int
    side: int  # 0 buy, 1 sell, 2 neutral


@dataclass
class FakeXdxr:
    """One 除权除息 record (get_xdxr_info category 1): per 10 shares."""

    day: str  # ex-date YYYY-MM-DD
    cash: float = 0.0  # 分红
    rights_price: float = 0.0  # 配股价
    bonus: float = 0.0  # 送转股
    rights: float = 0.0  # 配股


@dataclass
class FakeMarket:
    quotes: dict[tuple[int, str], FakeQuote] = field(default_factory=dict)
    bars: dict[tuple[int, str, int], list[FakeBar]] = field(default_factory=dict)
    minutes: dict[tuple[int, str], list[tuple[float, int]]] = field(default_factory=dict)
    transactions: dict[tuple[int, str], list[FakeTrade]] = field(default_factory=dict)
    decimals: dict[tuple[int, str], int] = field(default_factory=dict)  # 3 for ETFs/bonds
    xdxr: dict[tuple[int, str], list[FakeXdxr]] = field(default_factory=dict)
    history_minutes: dict[tuple[int, str, int], list[tuple[float, int]]] = field(default_factory=dict)  # by YYYYMMDD
    history_transactions: dict[tuple[int, str, int], list[FakeTrade]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def dec(self, key: tuple[int, str]) -> int:
        return self.decimals.get(key, 2)

    # bodies, laid out as pytdx's parsers read them -------------------------------------------
    def quotes_body(self, stocks: list[tuple[int, str]]) -> bytes:
        out = bytearray(b"\xb1\xcb")
        rows = []
        for key in stocks:
            q = self.quotes.get(key)
            if q is not None:
                rows.append((key, q))
        out += struct.pack("<H", len(rows))
        for (market, code), q in rows:
            d = self.dec((market, code))
            p = w.raw_price(q.price, d)

            def rel(x: float, d: int = d, p: int = p) -> bytes:
                return w.varint(w.raw_price(x, d) - p)

            out += struct.pack("<B6sH", market, code.encode(), 1)
            out += w.varint(p) + rel(q.last_close) + rel(q.open) + rel(q.high) + rel(q.low)
            out += w.varint(q.servertime) + w.varint(-p) + w.varint(q.vol) + w.varint(q.cur_vol)
            out += w.float32(q.amount)
            out += w.varint(q.vol // 2) + w.varint(q.vol - q.vol // 2) + w.varint(0) + w.varint(0)
            for i in range(5):
                out += rel(q.bids[i]) + rel(q.asks[i]) + w.varint(q.bid_vols[i]) + w.varint(q.ask_vols[i])
            out += struct.pack("<H", 0) + w.varint(0) + w.varint(0) + w.varint(0) + w.varint(0)
            out += struct.pack("<hH", 12, 1)
        return bytes(out)

    def bars_body(self, category: int, market: int, code: str, start: int, count: int) -> bytes:
        series = self.bars.get((market, code, category), [])
        end = len(series) - start
        chosen = series[max(0, end - count) : max(0, end)]
        out = bytearray(struct.pack("<H", len(chosen)))
        base = 0
        for b in chosen:
            o, c, h, lo = (w.raw_price(x, 3) for x in (b.open, b.close, b.high, b.low))
            out += w.bar_datetime(category, b.end)
            out += w.varint(o - base) + w.varint(c - o) + w.varint(h - o) + w.varint(lo - o)
            out += w.float32(b.vol) + w.float32(b.amount)
            base = c
        return bytes(out)

    def minutes_body(self, market: int, code: str) -> bytes:
        return self._minutes(self.minutes.get((market, code), []), self.dec((market, code)), "<HH")

    def _minutes(self, points: list[tuple[float, int]], d: int, head: str) -> bytes:
        """分时 points as TDX sends them: a count header, then price deltas and volumes as varints."""
        out = bytearray(struct.pack(head, len(points), 0))
        last = 0
        for price, vol in points:
            p = w.raw_price(price, d)
            out += w.varint(p - last) + w.varint(0) + w.varint(vol)
            last = p
        return bytes(out)

    def xdxr_body(self, market: int, code: str) -> bytes:
        # pytdx reads each row's market and code from the body's first 7 bytes, so they lead it
        records = self.xdxr.get((market, code), [])
        out = bytearray(struct.pack("<B6s", market, code.encode()) + b"\x00\x00" + struct.pack("<H", len(records)))
        for x in records:
            y, m, d = (int(v) for v in x.day.split("-"))
            out += struct.pack("<B6sB", market, code.encode(), 0) + struct.pack("<IB", y * 10000 + m * 100 + d, 1)
            out += struct.pack("<ffff", x.cash, x.rights_price, x.bonus, x.rights)
        return bytes(out)

    def history_minutes_body(self, market: int, code: str, day: int) -> bytes:
        return self._minutes(self.history_minutes.get((market, code, day), []), self.dec((market, code)), "<HI")

    def history_transactions_body(self, market: int, code: str, start: int, count: int, day: int) -> bytes:
        rows = self.history_transactions.get((market, code, day), [])
        end = len(rows) - start
        chosen = rows[max(0, end - count) : max(0, end)]
        d = self.dec((market, code))
        out = bytearray(struct.pack("<HI", len(chosen), 0))
        last = 0
        for t in chosen:
            hh, mm = (int(x) for x in t.hhmm.split(":"))
            p = w.raw_price(t.price, d)
            out += (
                struct.pack("<H", hh * 60 + mm) + w.varint(p - last) + w.varint(t.vol) + w.varint(t.side) + w.varint(0)
            )
            last = p
        return bytes(out)

    def transactions_body(self, market: int, code: str, start: int, count: int) -> bytes:
        rows = self.transactions.get((market, code), [])
        end = len(rows) - start
        chosen = rows[max(0, end - count) : max(0, end)]
        d = self.dec((market, code))
        out = bytearray(struct.pack("<H", len(chosen)))
        last = 0
        for t in chosen:
            hh, mm = (int(x) for x in t.hhmm.split(":"))
            p = w.raw_price(t.price, d)
            out += struct.pack("<H", hh * 60 + mm) + w.varint(p - last) + w.varint(t.vol) + w.varint(t.num)
            out += w.varint(t.side) + w.varint(0)
            last = p
        return bytes(out)


class FakeTdxServer:
    """Threaded TCP server; `port` after start(). Switches: refuse_login, empty, die_after."""

    def __init__(self, market: FakeMarket) -> None:
        self.market = market
        self.refuse_login = False
        self.empty: set[str] = set()  # data commands answered with a zero-length body
        self.die_after: int | None = None  # data answers before the server dies mid-answer
        self.requests: Counter[str] = Counter()
        self.quote_batches: list[int] = []  # symbols per quote request, in order
        self.dead = False
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()
        fake = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                with fake._lock:
                    if fake.dead:
                        return
                    fake._conns.add(self.request)
                try:
                    fake._serve(self.request)
                except (OSError, ValueError):
                    pass
                finally:
                    with fake._lock:
                        fake._conns.discard(self.request)

        socketserver.ThreadingTCPServer.allow_reuse_address = True
        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name=f"fake-tdx-{self.port}", daemon=True
        )

    def start(self) -> FakeTdxServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self.kill_connections()

    def die(self) -> None:
        """Stop listening and drop every connection: the host is gone."""
        self.dead = True
        self._server.shutdown()
        self._server.server_close()
        self.kill_connections()

    def kill_connections(self) -> None:
        with self._lock:
            conns = list(self._conns)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _serve(self, sock: socket.socket) -> None:
        while True:
            head = _recv_exact(sock, w.REQUEST_HEAD)
            if head is None:
                return
            seq, _kind, length = w.parse_request_head(head)
            rest = _recv_exact(sock, length)
            if rest is None:
                return
            (command,) = struct.unpack("<H", rest[:2])
            if command not in w.DATA_COMMANDS:
                self.requests["setup"] += 1
                if self.refuse_login:
                    return  # hang up on login
                sock.sendall(w.response(seq, command, LOGIN_BODY))
                continue
            name = w.DATA_COMMANDS[command]
            with self._lock:
                self.requests[name] += 1
                served = sum(self.requests[n] for n in w.DATA_COMMANDS.values())
            if self.die_after is not None and served > self.die_after:
                reply = w.response(seq, command, self._body(command, rest))
                sock.sendall(reply[: max(1, len(reply) // 2)])  # half an answer, then gone
                threading.Thread(target=self.die, daemon=True).start()
                return
            body = b"" if name in self.empty else self._body(command, rest)
            sock.sendall(w.response(seq, command, body))

    def _body(self, command: int, req: bytes) -> bytes:
        m = self.market
        with m.lock:
            if command == w.CMD_QUOTES:
                (n,) = struct.unpack("<H", req[10:12])
                stocks = [struct.unpack("<B6s", req[12 + 7 * i : 19 + 7 * i]) for i in range(n)]
                self.quote_batches.append(n)
                return m.quotes_body([(mk, code.decode()) for mk, code in stocks])
            if command == w.CMD_BARS:
                market, code, category, _one, start, count = struct.unpack("<H6sHHHH", req[2:18])
                return m.bars_body(category, market, code.decode(), start, count)
            if command == w.CMD_MINUTES:
                market, code = struct.unpack("<H6s", req[2:10])
                return m.minutes_body(market, code.decode())
            if command == w.CMD_XDXR:
                market, code = struct.unpack("<B6s", req[4:11])
                return m.xdxr_body(market, code.decode())
            if command == w.CMD_HISTORY_MINUTES:
                day, market, code = struct.unpack("<IB6s", req[2:13])
                return m.history_minutes_body(market, code.decode(), day)
            if command == w.CMD_HISTORY_TRANSACTIONS:
                day, market, code, start, count = struct.unpack("<IH6sHH", req[2:18])
                return m.history_transactions_body(market, code.decode(), start, count, day)
            market, code, start, count = struct.unpack("<H6sHH", req[2:14])
            return m.transactions_body(market, code.decode(), start, count)


def _recv_exact(sock: socket.socket, n: int) -> bytes | None:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return bytes(buf)
