"""The Security section's keys: defaults, and one-line errors naming the key (issue 10)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from argus_service.config import ConfigError, build_config

BIN = Path(sys.executable).parent


def test_security_defaults() -> None:
    cfg = build_config(None, {}, {})
    srv, sec = cfg.server, cfg.security
    assert (srv.max_items_per_request, srv.rate_limit_items_per_token, srv.max_rejections_listed) == (1000, 50, 20)
    assert (srv.max_gateway_streams, srv.handshake_timeout, srv.max_connections_per_ip) == (100000, 10.0, 0)
    assert srv.trusted_proxies == [] and sec.max_unauthenticated == 1000
    assert sec.jwt_algorithms == ["HS256", "RS256", "ES256"] and sec.jwt_leeway == 10.0
    assert (sec.jwt_jwks_cache, sec.jwt_jwks_timeout, sec.jwt_jwks_refetch_interval) == (300.0, 3.0, 10.0)


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("server:\n  trusted_proxies: [10.0.0.0/33]\n", "server.trusted_proxies"),
        ("server:\n  trusted_proxies: [proxy.local]\n", "server.trusted_proxies"),
        ("server:\n  max_connections_per_ip: -1\n", "server.max_connections_per_ip"),
        ("server:\n  max_items_per_request: 0\n", "server.max_items_per_request"),
        ("server:\n  handshake_timeout: 0\n", "server.handshake_timeout"),
        ("server:\n  rate_limit_items_per_token: 0\n", "server.rate_limit_items_per_token"),
        ("security:\n  max_unauthenticated: 0\n", "security.max_unauthenticated"),
        ("security:\n  jwt_algorithms: [none]\n", "security.jwt_algorithms"),
        ("security:\n  jwt_jwks_url: ftp://keys\n", "security.jwt_jwks_url"),
        ("security:\n  jwt_leeway: -1\n", "security.jwt_leeway"),
        ("security:\n  jwt_public_key: /no/such/key.pem\n", "security.jwt_public_key"),
        (
            "security:\n  jwt_public_key: '-----BEGIN PUBLIC KEY-----'\n  jwt_jwks_url: http://127.0.0.1/jwks\n",
            "security.jwt_jwks_url",
        ),
    ],
)
def test_bad_security_config_names_the_key(tmp_path: Path, text: str, needle: str) -> None:
    path = tmp_path / "cfg.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as e:
        build_config(str(path), {}, {})
    assert needle in str(e.value) and "\n" not in str(e.value)


def test_gateway_with_an_unusable_public_key_exits_2_in_one_line(tmp_path: Path) -> None:
    key = tmp_path / "key.pem"
    key.write_text("-----BEGIN PUBLIC KEY-----\nnot a key\n-----END PUBLIC KEY-----\n")
    r = subprocess.run(
        [str(BIN / "argus-gateway"), "--port", "0"],
        capture_output=True,
        text=True,
        timeout=30,
        env={"PATH": str(BIN), "ARGUS_JWT_PUBLIC_KEY": str(key)},
    )
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert len(lines) == 1 and "security.jwt_public_key" in lines[0]
