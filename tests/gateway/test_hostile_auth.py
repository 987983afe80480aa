"""Auth with PyJWT (issue 10, deliverable 4 and row 4): HS256, RS256 and ES256 with a static key or a
JWKS URL (cached, refetched on rotation, rate-limited), exp/nbf leeway, audience and issuer; re-AUTH
re-checks every held stream and the session ends with its newest token."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from aiohttp import web
from argus_gateway.auth import Authenticator, AuthError
from argus_service.config import SecurityConfig
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from eventfactory import quote, subject
from nats.aio.client import Client as NATS
from probes import log_problems
from wsclient import Client

SECRET = "a-test-secret-of-at-least-32-bytes!"
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())


def pem(key: Any) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def jwk(key: Any, kid: str, alg: str) -> dict[str, Any]:
    algo = jwt.algorithms.RSAAlgorithm if alg.startswith("RS") else jwt.algorithms.ECAlgorithm
    out: dict[str, Any] = algo.to_jwk(key.public_key(), as_dict=True)
    return {**out, "kid": kid, "alg": alg, "use": "sig"}


def token(claims: dict[str, Any], alg: str = "HS256", key: Any = SECRET, kid: str | None = None) -> str:
    return jwt.encode(claims, key, algorithm=alg, headers={"kid": kid} if kid else None)


def auth(**sec: Any) -> Authenticator:
    return Authenticator(SecurityConfig(**sec))


async def refused(a: Authenticator, tok: str) -> str:
    with pytest.raises(AuthError) as e:
        await a.check(tok)
    return str(e.value)


class Jwks:
    """A local identity provider: serves a JWKS and counts how often it was asked."""

    def __init__(self) -> None:
        self.keys: list[dict[str, Any]] = []
        self.hits = 0
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.hits += 1
        return web.json_response({"keys": self.keys})


@pytest.fixture
async def jwks_server() -> AsyncIterator[Jwks]:
    provider = Jwks()
    app = web.Application()
    app.router.add_get("/.well-known/jwks.json", provider.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    provider.url = f"http://127.0.0.1:{port}/.well-known/jwks.json"
    yield provider
    await runner.cleanup()


# ---------------------------------------------------------------- algorithms and claims


async def test_hs256_and_what_it_refuses() -> None:
    a = auth(jwt_secret=SECRET)
    grant = await a.check(token({"sub": "u1", "markets": ["SH"], "exp": int(time.time()) + 60}))
    assert grant.subject == "u1" and grant.markets == frozenset({"SH"}) and grant.expires_at
    assert await refused(a, token({"sub": "u1"}, key="another-secret-of-at-least-32-bytes")) == "bad token signature"
    assert await refused(a, jwt.encode({"sub": "u1"}, None, algorithm="none")) == "unsupported token algorithm none"
    assert await refused(a, token({"sub": "u1"}, alg="HS512", key=SECRET * 2)) == "unsupported token algorithm HS512"
    assert await refused(a, "a.b.c") == "malformed token"
    assert (await refused(a, token({"sub": "u1", "markets": "SH"}))).startswith("malformed token claims")


@pytest.mark.parametrize(("alg", "key"), [("RS256", RSA_KEY), ("ES256", EC_KEY)])
async def test_rs256_and_es256_with_a_static_public_key(tmp_path: Path, alg: str, key: Any) -> None:
    path = tmp_path / "key.pem"
    path.write_text(pem(key))
    for a in (auth(jwt_public_key=pem(key)), auth(jwt_public_key=str(path))):
        assert (await a.check(token({"sub": "u2"}, alg, key))).subject == "u2"
    other = RSA_KEY if key is EC_KEY else EC_KEY
    a = auth(jwt_public_key=pem(key))
    other_alg = "ES256" if alg == "RS256" else "RS256"
    assert await refused(a, token({"sub": "u2"}, other_alg, other)) == "invalid token"  # a key of another kind
    # the public key is never taken as an HMAC secret (algorithm confusion)
    assert await refused(a, token({"sub": "u2"}, "HS256", SECRET)) == "unsupported token algorithm HS256"


async def test_exp_and_nbf_with_a_small_leeway() -> None:
    a = auth(jwt_secret=SECRET, jwt_leeway=10)
    now = int(time.time())
    assert (await a.check(token({"sub": "u", "exp": now - 5}))).expires_at == now - 5  # within the leeway
    assert await refused(a, token({"sub": "u", "exp": now - 30})) == "token expired"
    assert (await a.check(token({"sub": "u", "nbf": now + 5}))).subject == "u"
    assert await refused(a, token({"sub": "u", "nbf": now + 60})) == "token not yet valid"
    strict = auth(jwt_secret=SECRET, jwt_leeway=0)
    assert await refused(strict, token({"sub": "u", "exp": now - 5})) == "token expired"


async def test_audience_and_issuer_when_configured() -> None:
    a = auth(jwt_secret=SECRET, jwt_audience="argus", jwt_issuer="https://id.example")
    good = {"sub": "u", "aud": "argus", "iss": "https://id.example"}
    assert (await a.check(token(good))).subject == "u"
    assert (await a.check(token({**good, "aud": ["web", "argus"]}))).subject == "u"
    assert await refused(a, token({**good, "aud": "other"})) == "token audience not accepted"
    assert await refused(a, token({**good, "iss": "https://evil.example"})) == "token issuer not accepted"
    assert await refused(a, token({"sub": "u", "iss": "https://id.example"})) == "token lacks a required claim"
    # without an audience configured, a token meant for one is not taken
    assert await refused(auth(jwt_secret=SECRET), token(good)) == "token audience not accepted"


# ---------------------------------------------------------------- JWKS


async def test_jwks_keys_are_cached_and_a_rotation_refetches_once(jwks_server: Jwks) -> None:
    jwks_server.keys = [jwk(RSA_KEY, "k1", "RS256")]
    a = auth(jwt_jwks_url=jwks_server.url, jwt_jwks_refetch_interval=1.0)
    for _ in range(5):
        assert (await a.check(token({"sub": "r"}, "RS256", RSA_KEY, kid="k1"))).subject == "r"
    assert jwks_server.hits == 1, "a known kid is served from the cache"
    await asyncio.sleep(1.1)
    # the issuer rotates: a new kid (here an EC key) appears and the old one goes
    jwks_server.keys = [jwk(EC_KEY, "k2", "ES256")]
    assert (await a.check(token({"sub": "e"}, "ES256", EC_KEY, kid="k2"))).subject == "e"
    assert jwks_server.hits == 2
    # invented kids: one refetch, then none until the interval has passed
    await asyncio.sleep(1.1)
    assert await refused(a, token({"sub": "x"}, "ES256", EC_KEY, kid="nope-1")) == "token signed with an unknown key"
    assert jwks_server.hits == 3
    for i in range(20):
        await refused(a, token({"sub": "x"}, "ES256", EC_KEY, kid=f"nope-{i + 2}"))
    assert jwks_server.hits == 3, "unknown kids must not hammer the identity provider"
    # concurrent checks that need a fetch share one
    await asyncio.sleep(1.1)
    jwks_server.keys = [jwk(EC_KEY, "k2", "ES256"), jwk(RSA_KEY, "k3", "RS256")]
    tok = token({"sub": "c"}, "RS256", RSA_KEY, kid="k3")
    grants = await asyncio.gather(*(a.check(tok) for _ in range(10)))
    assert {g.subject for g in grants} == {"c"} and jwks_server.hits == 4
    await a.close()


async def test_jwks_stale_cache_refreshes_and_a_dead_provider_keeps_the_known_keys(jwks_server: Jwks) -> None:
    jwks_server.keys = [jwk(RSA_KEY, "k1", "RS256")]
    a = auth(jwt_jwks_url=jwks_server.url, jwt_jwks_cache=0.5, jwt_jwks_refetch_interval=0.2, jwt_jwks_timeout=1.0)
    tok = token({"sub": "r"}, "RS256", RSA_KEY, kid="k1")
    await a.check(tok)
    await asyncio.sleep(0.6)
    await a.check(tok)
    assert jwks_server.hits == 2, "past jwt_jwks_cache the set is fetched again"
    jwks_server.keys = []  # broken provider: an empty set is not a key set
    await asyncio.sleep(0.6)
    assert (await a.check(tok)).subject == "r"
    await a.close()


async def test_a_jwks_url_that_does_not_answer_is_unauthorized_not_a_hang() -> None:
    a = auth(jwt_jwks_url="http://127.0.0.1:9/jwks.json", jwt_jwks_timeout=0.5)
    t0 = time.monotonic()
    assert await refused(a, token({"sub": "r"}, "RS256", RSA_KEY, kid="k1")) == "signing keys unavailable"
    assert time.monotonic() - t0 < 3
    await a.close()


async def test_a_jwks_token_through_the_gateway(gateway: Any, jwks_server: Jwks) -> None:
    jwks_server.keys = [jwk(EC_KEY, "k1", "ES256")]
    port, _ = gateway("--enable-auth", config={"security": {"jwt_jwks_url": jwks_server.url}})
    c = await Client.connect(port, headers={"Authorization": f"Bearer {token({'sub': 'ec'}, 'ES256', EC_KEY, 'k1')}"})
    assert (await c.expect("WELCOME"))["data"]["auth_required"] is True
    await c.subscribe(["600000.SH"])
    await c.close()
    bad = await Client.connect(port, headers={"Authorization": f"Bearer {token({'sub': 'x'}, 'ES256', EC_KEY, 'k9')}"})
    err = await bad.expect("ERROR")
    assert err["data"]["code"] == "UNAUTHORIZED" and err["data"]["message"] == "token signed with an unknown key"
    assert await bad.closed() == 1008
    await bad.close()


# ---------------------------------------------------------------- row 4: re-AUTH


async def test_reauth_with_a_narrower_token_drops_what_it_forbids_and_its_expiry_rules(
    gateway: Any, nc: NATS, procs: list[Any]
) -> None:
    port, _ = gateway("--enable-auth", env={"ARGUS_JWT_SECRET": SECRET}, config={"security": {"jwt_leeway": 0}})
    now = int(time.time())
    wide = token({"sub": "wide", "exp": now + 2, "markets": ["SH", "SZ"]})
    narrow = token({"sub": "narrow", "exp": now + 6, "markets": ["SH"]})
    c = await Client.connect(port, headers={"Authorization": f"Bearer {wide}"})
    await c.subscribe(["600000.SH", "000001.SZ"], ["quote"], snapshot=False)
    await c.send("AUTH", {"token": narrow}, id="re")
    assert (await c.expect("AUTHENTICATED"))["data"]["subject"] == "narrow"
    gone = await c.expect("UNSUBSCRIBED")
    assert gone["id"] == "re" and gone["data"]["removed"] == ["quote:000001.SZ"] and gone["data"]["total"] == 1
    forbidden = await c.expect("ERROR")
    assert forbidden["data"]["code"] == "FORBIDDEN" and "quote:000001.SZ" in forbidden["data"]["message"]
    # past the wide token's expiry the session lives on under the narrow one: SH flows, SZ never
    await asyncio.sleep(max(0.0, now + 2.5 - time.time()))
    c.seen.clear()
    for seq in range(1, 6):
        await nc.publish(subject("quote", "000001.SZ"), quote("000001.SZ", 10_000 + seq))
        await nc.publish(subject("quote", "600000.SH"), quote("600000.SH", 10_000 + seq))
    got = await c.data(5, symbol="600000.SH")
    assert len(got) == 5
    assert [m for m in c.seen if m["type"] == "DATA" and m["data"]["symbol"] == "000001.SZ"] == []
    # and it ends with the narrow token
    err = await c.expect("ERROR", timeout=6)
    assert err["data"]["code"] == "UNAUTHORIZED" and err["data"]["message"] == "token expired"
    assert await c.closed() == 1008
    await c.close()
    # a session that ends before its token leaves no timer behind
    short = await Client.connect(port, headers={"Authorization": f"Bearer {token({'sub': 's', 'exp': now + 8})}"})
    await short.expect("WELCOME")
    await short.close()
    await asyncio.sleep(max(0.0, now + 8.5 - time.time()))
    expired = [ln for ln in procs[-1].log().splitlines() if "token expired" in ln]
    assert len(expired) == 1, expired  # only the session above
    assert log_problems(procs[-1]) == []
