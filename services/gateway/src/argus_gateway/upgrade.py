"""The WebSocket opening handshake (RFC 6455 §4.2, RFC 7692 §5): a request head read and answered.

The gateway answers upgrades itself so that an open socket holds only Argus's own small objects,
not an HTTP request, its handler task and aiohttp's WebSocket queues (about 12 KB a connection).
Every request that is not a WebSocket upgrade of the client endpoint goes to aiohttp unread.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from urllib.parse import parse_qsl, urlsplit

WS_PATHS = ("/", "/ws")
MAX_HEAD = 16384  # request line and headers of an upgrade; aiohttp allows 8190 per line
MAX_HEADERS = 100
_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_REASONS = {
    400: "Bad Request",
    403: "Forbidden",
    426: "Upgrade Required",
    431: "Request Header Fields Too Large",
    503: "Service Unavailable",
}


class Refusal(Exception):
    """An upgrade answered with an HTTP error instead of 101."""

    def __init__(self, status: int, text: str, headers: tuple[tuple[str, str], ...] = ()) -> None:
        super().__init__(text)
        self.status = status
        self.text = text
        self.headers = headers

    def response(self) -> bytes:
        body = self.text.encode() + b"\n"
        lines = [f"HTTP/1.1 {self.status} {_REASONS.get(self.status, 'Error')}"]
        lines += [f"{k}: {v}" for k, v in self.headers]
        lines += ["Content-Type: text/plain; charset=utf-8", f"Content-Length: {len(body)}", "Connection: close"]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class Head:
    """An upgrade request's line and headers; header names lower-cased, repeated ones joined by ", "."""

    __slots__ = ("headers", "path", "query")

    def __init__(self, path: str, query: dict[str, str], headers: dict[str, str]) -> None:
        self.path = path
        self.query = query
        self.headers = headers


def wants_upgrade(line: bytes) -> bool:
    """Whether a request line may be a WebSocket upgrade of the client endpoint (else: aiohttp's)."""
    parts = line.split(b" ")
    if len(parts) != 3 or parts[0] != b"GET":
        return False
    return parts[1].partition(b"?")[0].decode("latin-1") in WS_PATHS


def parse_head(data: bytes) -> Head:
    """The head up to (not including) its blank line; `Refusal` 400 when it is not well formed."""
    try:
        text = data.decode("latin-1")
    except UnicodeDecodeError:  # pragma: no cover - latin-1 decodes any byte
        raise Refusal(400, "request head is not text") from None
    line, *fields = text.split("\r\n")
    target = line.split(" ")
    if len(target) != 3 or target[2] != "HTTP/1.1":
        raise Refusal(400, "a WebSocket upgrade is a GET over HTTP/1.1")
    if len(fields) > MAX_HEADERS:
        raise Refusal(431, f"more than {MAX_HEADERS} header fields")
    headers: dict[str, str] = {}
    for field in fields:
        name, colon, value = field.partition(":")
        if not colon or not name or name != name.strip() or " " in name or "\t" in name:
            raise Refusal(400, "malformed header field")
        key = name.lower()
        value = value.strip(" \t")
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    url = urlsplit(target[1])
    query: dict[str, str] = {}
    for k, v in parse_qsl(url.query, keep_blank_values=True):
        query.setdefault(k, v)  # the first of a repeated parameter, as aiohttp's request.query.get
    return Head(url.path, query, headers)


def _tokens(value: str) -> list[str]:
    return [t.strip().lower() for t in value.split(",") if t.strip()]


def is_upgrade(head: Head) -> bool:
    return "websocket" in _tokens(head.headers.get("upgrade", ""))


def accept_key(head: Head) -> str:
    """Sec-WebSocket-Accept for the request's key; `Refusal` when the request is no valid upgrade."""
    h = head.headers
    if "upgrade" not in _tokens(h.get("connection", "")):
        raise Refusal(400, "Connection: Upgrade is missing")
    if h.get("sec-websocket-version", "").strip() != "13":
        raise Refusal(426, "only WebSocket version 13 is spoken", (("Sec-WebSocket-Version", "13"),))
    key = h.get("sec-websocket-key", "").strip()
    try:
        if len(base64.b64decode(key, validate=True)) != 16:
            raise ValueError
    except (binascii.Error, ValueError):
        raise Refusal(400, "Sec-WebSocket-Key is not 16 bytes in base64") from None
    return base64.b64encode(hashlib.sha1(key.encode() + _GUID).digest()).decode()


def choose_protocol(head: Head, offered: tuple[str, ...]) -> str:
    """The first of the client's subprotocols that the server speaks, or "" (the header omitted)."""
    for p in (t.strip() for t in head.headers.get("sec-websocket-protocol", "").split(",")):
        if p in offered:
            return p
    return ""


def negotiate_deflate(head: Head) -> tuple[int, str]:
    """(window bits the server may use, the Sec-WebSocket-Extensions answer) for the first
    acceptable permessage-deflate offer; (0, "") when there is none.

    The answer always asks for client_no_context_takeover: every client message then inflates on
    its own, and no connection keeps an inflater between messages."""
    for offer in head.headers.get("sec-websocket-extensions", "").split(","):
        name, *params = (p.strip() for p in offer.split(";"))
        if name.lower() != "permessage-deflate":
            continue
        bits, no_takeover, ok, seen = 15, False, True, set()
        for param in params:
            key, _, value = param.partition("=")
            key, value = key.strip().lower(), value.strip().strip('"')
            if key in seen:
                ok = False
            seen.add(key)
            if key == "server_max_window_bits":
                ok = ok and value.isdigit() and 9 <= int(value) <= 15  # zlib has no raw window of 8
                bits = int(value) if ok else bits
            elif key == "server_no_context_takeover":
                no_takeover = not value
                ok = ok and no_takeover
            elif key == "client_max_window_bits":
                ok = ok and (not value or (value.isdigit() and 8 <= int(value) <= 15))
            elif key != "client_no_context_takeover" or value:
                ok = False
        if not ok:
            continue
        answer = ["permessage-deflate", "client_no_context_takeover"]
        if no_takeover:
            answer.append("server_no_context_takeover")
        if bits < 15:
            answer.append(f"server_max_window_bits={bits}")
        return bits, "; ".join(answer)
    return 0, ""


def switching(accept: str, protocol: str, extensions: str) -> bytes:
    lines = [
        "HTTP/1.1 101 Switching Protocols",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Accept: {accept}",
    ]
    if protocol:
        lines.append(f"Sec-WebSocket-Protocol: {protocol}")
    if extensions:
        lines.append(f"Sec-WebSocket-Extensions: {extensions}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
