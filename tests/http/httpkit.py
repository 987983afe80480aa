"""HTTP API test helpers: a gateway and an ingestor on a private subject prefix, and a small client."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import itertools
import json
import os
import time
from typing import Any

import aiohttp
import msgspec

_n = itertools.count()


def private_prefix() -> str:
    """Subjects and retention streams of one test only (the mock's symbols are the same in every test)."""
    return f"h{os.getpid()}x{next(_n)}x{time.monotonic_ns() % 100000}"


def hs256(claims: dict[str, Any], secret: str) -> str:
    """An HS256 JWT, minted here so the test does not lean on the gateway's own helpers."""

    def enc(obj: Any) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    head = enc({"alg": "HS256", "typ": "JWT"})
    body = enc(claims)
    sig = hmac.new(secret.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{base64.urlsafe_b64encode(sig).rstrip(b'=').decode()}"


class Http:
    def __init__(self, port: int) -> None:
        self.base = f"http://127.0.0.1:{port}"
        self.session = aiohttp.ClientSession()

    async def close(self) -> None:
        await self.session.close()

    async def get(
        self, path: str, *, msgpack: bool = False, headers: dict[str, str] | None = None, **params: Any
    ) -> tuple[int, Any, aiohttp.ClientResponse]:
        h = dict(headers or {})
        if msgpack:
            h["Accept"] = "application/msgpack"
        async with self.session.get(self.base + path, params={k: str(v) for k, v in params.items()}, headers=h) as r:
            raw = await r.read()
            data = (
                msgspec.msgpack.decode(raw) if msgpack and r.content_type == "application/msgpack" else json.loads(raw)
            )
            return r.status, data, r

    async def ok(self, path: str, **params: Any) -> Any:
        status, data, _ = await self.get(path, **params)
        assert status == 200, (status, data)
        return data

    async def until(self, path: str, check: Any, timeout: float = 20.0, **params: Any) -> Any:
        """GET until `check(status, data)` holds (sources announce themselves by heartbeat)."""
        deadline = time.monotonic() + timeout
        while True:
            status, data, _ = await self.get(path, **params)
            if check(status, data):
                return data
            if time.monotonic() > deadline:
                raise AssertionError(f"{path} {params}: last answer {status} {str(data)[:500]}")
            await asyncio.sleep(0.3)
