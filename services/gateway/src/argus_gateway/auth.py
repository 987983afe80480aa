"""Token checks: static API keys, and JWTs verified by PyJWT (HS256 with a secret; RS256/ES256 with a
static public key or keys from a JWKS URL), with `exp`/`nbf` checked under a small leeway and
`aud`/`iss` when configured.

A JWT may carry entitlements as claims: `markets` (e.g. ["SZ","SH"]), `symbols` (fnmatch patterns,
e.g. ["600*.SH"]) and `data_types`. Absent claims mean no restriction.
"""

from __future__ import annotations

import fnmatch
import hmac
import logging
from pathlib import Path
from typing import Any

import jwt
import msgspec
from argus_protocol import market_of
from argus_service.config import SecurityConfig
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from .jwks import JwksKeys, KeyUnavailable

log = logging.getLogger("argus.auth")

MAX_EXP = 2**40  # epoch seconds far past any real token, well inside 64-bit integers
MIN_HMAC_BYTES = 32  # RFC 7518 §3.2: an HS256 key at least as long as the hash


class AuthError(Exception):
    pass


class Grant(msgspec.Struct, frozen=True):
    subject: str
    expires_at: int | None = None  # epoch seconds (the token's `exp`)
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
    markets: list[str] | None = None
    symbols: list[str] | None = None
    data_types: list[str] | None = None


_JWT_ERRORS: tuple[tuple[type[Exception], str], ...] = (
    (jwt.ExpiredSignatureError, "token expired"),
    (jwt.ImmatureSignatureError, "token not yet valid"),
    (jwt.InvalidAudienceError, "token audience not accepted"),
    (jwt.InvalidIssuerError, "token issuer not accepted"),
    (jwt.MissingRequiredClaimError, "token lacks a required claim"),
    (jwt.InvalidSignatureError, "bad token signature"),
    (jwt.DecodeError, "malformed token"),
)


def load_public_key(value: str) -> str:
    """The PEM text of `security.jwt_public_key` (given inline or as a path); ValueError if unusable."""
    text = value if value.lstrip().startswith("-----BEGIN") else Path(value).read_text()
    try:
        load_pem_public_key(text.encode())
    except (ValueError, TypeError) as e:
        raise ValueError(f"security.jwt_public_key: not a PEM public key ({e})") from None
    return text


class Authenticator:
    def __init__(self, sec: SecurityConfig, jwks: JwksKeys | None = None) -> None:
        self._keys = {k.encode() for k in sec.api_keys if k}
        self._secret = sec.jwt_secret.encode()
        self._public = load_public_key(sec.jwt_public_key) if sec.jwt_public_key else ""
        self._jwks = jwks
        if self._jwks is None and sec.jwt_jwks_url:
            self._jwks = JwksKeys(
                sec.jwt_jwks_url,
                cache_seconds=sec.jwt_jwks_cache,
                timeout=sec.jwt_jwks_timeout,
                refetch_interval=sec.jwt_jwks_refetch_interval,
            )
        self.algorithms = frozenset(sec.jwt_algorithms)
        self.leeway = sec.jwt_leeway
        self.audience = sec.jwt_audience or None
        self.issuer = sec.jwt_issuer or None
        if self._secret and len(self._secret) < MIN_HMAC_BYTES:
            log.warning("security.jwt_secret is shorter than 32 bytes; HS256 tokens are easier to forge")

    @property
    def verifies_jwt(self) -> bool:
        return bool(self._secret or self._public or self._jwks)

    async def check(self, token: str) -> Grant:
        """A Grant for a good token; AuthError with a client-safe reason otherwise."""
        if not token:
            raise AuthError("missing token")
        raw = token.encode()
        for key in self._keys:
            if hmac.compare_digest(raw, key):
                return Grant(subject="api-key")
        if token.count(".") == 2 and self.verifies_jwt:
            return await self._check_jwt(token)
        raise AuthError("invalid token")

    async def _check_jwt(self, token: str) -> Grant:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise AuthError("malformed token") from None
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self.algorithms:
            raise AuthError(f"unsupported token algorithm {str(alg)[:16]}")
        key: Any
        if alg.startswith("HS"):  # each family has its own key: a public key is never an HMAC secret
            key = self._secret
        elif self._jwks is not None:
            kid = header.get("kid")
            try:
                key = await self._jwks.key(kid if isinstance(kid, str) else None)
            except KeyUnavailable as e:
                raise AuthError(str(e)) from None
        else:
            key = self._public
        if not key:
            raise AuthError(f"unsupported token algorithm {alg}")
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[alg],
                leeway=self.leeway,
                audience=self.audience,
                issuer=self.issuer,
            )
            parsed = msgspec.convert(claims, _Claims)
        except msgspec.ValidationError as e:
            raise AuthError(f"malformed token claims: {e}"[:200]) from None
        except (jwt.PyJWTError, ValueError, TypeError, OverflowError) as e:  # a key of the wrong kind, too
            raise AuthError(next((why for kind, why in _JWT_ERRORS if isinstance(e, kind)), "invalid token")) from None
        return Grant(
            subject=parsed.sub,
            expires_at=min(int(parsed.exp), MAX_EXP) if parsed.exp is not None else None,
            markets=frozenset(parsed.markets) if parsed.markets is not None else None,
            symbols=tuple(parsed.symbols) if parsed.symbols is not None else None,
            data_types=frozenset(parsed.data_types) if parsed.data_types is not None else None,
        )

    async def start(self) -> None:
        """Fetch the JWKS before the first client needs it (a failure is logged and retried on use)."""
        if self._jwks is not None:
            try:
                await self._jwks.key(None)
            except KeyUnavailable:
                pass

    async def close(self) -> None:
        if self._jwks is not None:
            await self._jwks.close()
