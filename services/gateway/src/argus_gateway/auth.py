"""Token checks: static API keys and HS256 JWTs (`exp` enforced), with optional entitlements.

A JWT may carry entitlements as claims: `markets` (e.g. ["SZ","SH"]), `symbols` (fnmatch patterns,
e.g. ["600*.SH"]) and `data_types`. Absent claims mean no restriction.
"""

from __future__ import annotations

import base64
import binascii
import fnmatch
import hashlib
import hmac
import time
from collections.abc import Sequence

import msgspec
from argus_protocol import market_of


class AuthError(Exception):
    pass


class Grant(msgspec.Struct, frozen=True):
    subject: str
    expires_at: int | None = None  # epoch seconds
    markets: frozenset[str] | None = None
    symbols: tuple[str, ...] | None = None
    data_types: frozenset[str] | None = None

    def allows(self, data_type: str, symbol: str) -> bool:
        if self.data_types is not None and data_type not in self.data_types:
            return False
        if self.markets is not None and market_of(symbol) not in self.markets:
            return False
        return self.symbols is None or any(fnmatch.fnmatchcase(symbol, p) for p in self.symbols)


OPEN = Grant(subject="anonymous")


class _Claims(msgspec.Struct):
    sub: str = "jwt"
    exp: int | float | None = None
    nbf: int | float | None = None
    markets: list[str] | None = None
    symbols: list[str] | None = None
    data_types: list[str] | None = None


class _Header(msgspec.Struct):
    alg: str
    typ: str | None = None


def _b64(segment: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (binascii.Error, ValueError):
        raise AuthError("malformed token") from None


class Authenticator:
    def __init__(self, api_keys: Sequence[str], jwt_secret: str, clock=time.time) -> None:  # type: ignore[no-untyped-def]
        self._keys = {k.encode() for k in api_keys if k}
        self._secret = jwt_secret.encode()
        self._clock = clock

    def check(self, token: str) -> Grant:
        """A Grant for a good token; AuthError with a client-safe reason otherwise."""
        if not token:
            raise AuthError("missing token")
        raw = token.encode()
        for key in self._keys:
            if hmac.compare_digest(raw, key):
                return Grant(subject="api-key")
        if token.count(".") == 2 and self._secret:
            return self._check_jwt(token)
        raise AuthError("invalid token")

    def _check_jwt(self, token: str) -> Grant:
        head_b64, body_b64, sig_b64 = token.split(".")
        try:
            header = msgspec.json.decode(_b64(head_b64), type=_Header)
            claims = msgspec.json.decode(_b64(body_b64), type=_Claims)
        except msgspec.MsgspecError:
            raise AuthError("malformed token") from None
        if header.alg != "HS256":
            raise AuthError(f"unsupported token algorithm {header.alg}")
        expected = hmac.new(self._secret, f"{head_b64}.{body_b64}".encode(), hashlib.sha256).digest()
        if not hmac.compare_digest(expected, _b64(sig_b64)):
            raise AuthError("bad token signature")
        now = self._clock()
        if claims.exp is not None and now >= claims.exp:
            raise AuthError("token expired")
        if claims.nbf is not None and now < claims.nbf:
            raise AuthError("token not yet valid")
        return Grant(
            subject=claims.sub,
            expires_at=int(claims.exp) if claims.exp is not None else None,
            markets=frozenset(claims.markets) if claims.markets is not None else None,
            symbols=tuple(claims.symbols) if claims.symbols is not None else None,
            data_types=frozenset(claims.data_types) if claims.data_types is not None else None,
        )


def make_jwt(claims: dict[str, object], secret: str) -> str:
    """Mint an HS256 token (for operators' tooling and tests)."""

    def enc(obj: object) -> str:
        return base64.urlsafe_b64encode(msgspec.json.encode(obj)).rstrip(b"=").decode()

    head = enc({"alg": "HS256", "typ": "JWT"})
    body = enc(claims)
    sig = hmac.new(secret.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{base64.urlsafe_b64encode(sig).rstrip(b'=').decode()}"
