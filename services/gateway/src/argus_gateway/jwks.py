"""Signing keys from a JWKS URL: fetched over aiohttp with a timeout, cached, refetched on rotation.

Keys are cached for `cache_seconds`. A token naming a `kid` the cache lacks (the issuer rotated)
refetches at once, but at most once per `refetch_interval`, so tokens with invented `kid`s cannot
turn the gateway into a load generator against the identity provider. A failed fetch keeps the keys
already known; concurrent look-ups share one fetch.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import aiohttp
import jwt

log = logging.getLogger("argus.auth")

MAX_JWKS_BYTES = 1 << 20  # a key set is a few KB; anything near this is not one


class KeyUnavailable(Exception):
    """No key for the token: a client-safe reason."""


class JwksKeys:
    def __init__(
        self,
        url: str,
        *,
        cache_seconds: float,
        timeout: float,
        refetch_interval: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url
        self.cache_seconds = cache_seconds
        self.timeout = timeout
        self.refetch_interval = refetch_interval
        self._clock = clock
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at: float | None = None  # last successful fetch
        self._tried_at: float | None = None  # last attempt, successful or not
        self._fetching: asyncio.Task[None] | None = None
        self._http: aiohttp.ClientSession | None = None
        self.fetches = 0  # attempts made (for logs and tests)

    async def key(self, kid: str | None) -> jwt.PyJWK:
        now = self._clock()
        if self._fetched_at is None or now - self._fetched_at >= self.cache_seconds:
            await self._refresh(rate_limited=self._tried_at is not None)
        found = self._find(kid)
        if found is None and kid is not None:
            await self._refresh(rate_limited=True)  # a new kid: the issuer may have rotated
            found = self._find(kid)
        if found is None:
            if not self._keys:
                raise KeyUnavailable("signing keys unavailable")
            raise KeyUnavailable("token signed with an unknown key" if kid is not None else "token names no key (kid)")
        return found

    def _find(self, kid: str | None) -> jwt.PyJWK | None:
        if kid is None:
            return next(iter(self._keys.values())) if len(self._keys) == 1 else None
        return self._keys.get(kid)

    async def _refresh(self, *, rate_limited: bool) -> None:
        if self._fetching is None or self._fetching.done():
            tried = self._tried_at
            if rate_limited and tried is not None and self._clock() - tried < self.refetch_interval:
                return
            self._tried_at = self._clock()
            self._fetching = asyncio.create_task(self._fetch())
        task = self._fetching
        try:
            await asyncio.shield(task)
        finally:
            if task.done() and self._fetching is task:
                self._fetching = None

    async def _fetch(self) -> None:
        self.fetches += 1
        if self._http is None:
            self._http = aiohttp.ClientSession()
        try:
            async with self._http.get(self.url, timeout=aiohttp.ClientTimeout(total=self.timeout)) as resp:
                if resp.status != 200:
                    raise ValueError(f"HTTP {resp.status}")
                body = await resp.content.read(MAX_JWKS_BYTES + 1)
                if len(body) > MAX_JWKS_BYTES:
                    raise ValueError("JWKS larger than 1 MiB")
            keys = jwt.PyJWKSet.from_json(body.decode()).keys
        except Exception as e:  # noqa: BLE001 - keep the keys known so far
            log.warning("jwks fetch failed", extra={"url": self.url, "error": repr(e)[:300], "keys": len(self._keys)})
            return
        self._keys = {k.key_id: k for k in keys if k.key_id}
        if not self._keys and keys:
            self._keys = {"": keys[0]}  # one key without a kid: tokens without a kid use it
        self._fetched_at = self._clock()
        log.info("jwks fetched", extra={"url": self.url, "keys": sorted(self._keys)})

    async def close(self) -> None:
        if self._fetching is not None:
            self._fetching.cancel()
        if self._http is not None:
            await self._http.close()
