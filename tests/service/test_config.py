"""Config precedence (flags > env > file > defaults) and one-line errors naming the key."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from argus_service.config import ConfigError, build_config

BIN = Path(sys.executable).parent


def write(tmp_path: Path, text: str) -> str:
    p = tmp_path / "cfg.yaml"
    p.write_text(text)
    return str(p)


def test_defaults_match_the_original_ports() -> None:
    cfg = build_config(None, {}, {})
    assert cfg.server.port == 8765 and cfg.metrics.port == 9090
    assert cfg.datasource.source_type == "mock" and cfg.security.enable_auth is False


def test_flags_beat_env_beat_file_beat_defaults(tmp_path: Path) -> None:
    path = write(
        tmp_path, "server:\n  port: 7001\n  host: 10.0.0.1\n  max_connections: 5\nlogging:\n  level: WARNING\n"
    )
    cfg = build_config(path, {}, {})
    assert (cfg.server.port, cfg.server.host, cfg.server.max_connections) == (7001, "10.0.0.1", 5)
    cfg = build_config(path, {"WEBSOCKET_PORT": "7002", "LOG_LEVEL": "DEBUG", "ENABLE_AUTH": "true"}, {})
    assert cfg.server.port == 7002 and cfg.logging.level == "DEBUG" and cfg.security.enable_auth is True
    assert cfg.server.host == "10.0.0.1"  # untouched by env
    cfg = build_config(path, {"WEBSOCKET_PORT": "7002"}, {"server.port": 7003})
    assert cfg.server.port == 7003


def test_original_env_names_all_work() -> None:
    env = {
        "WEBSOCKET_HOST": "127.0.0.2",
        "WEBSOCKET_PORT": "9999",
        "DATASOURCE_TYPE": "tdx",
        "LOG_LEVEL": "ERROR",
        "ENABLE_AUTH": "1",
        "NATS_URL": "nats://10.1.1.1:4222",
    }
    cfg = build_config(None, env, {})
    assert cfg.server.host == "127.0.0.2" and cfg.server.port == 9999
    assert cfg.datasource.source_type == "tdx" and cfg.logging.level == "ERROR"
    assert cfg.security.enable_auth is True and cfg.nats.url == "nats://10.1.1.1:4222"


@pytest.mark.parametrize(
    ("text", "env", "needle"),
    [
        ("server:\n  port: eighty\n", {}, "server.port"),
        ("server:\n  port: 70000\n", {}, "server.port"),
        ("server:\n  prot: 1\n", {}, "prot"),
        ("logging:\n  level: LOUD\n", {}, "logging.level"),
        ("server: [1, 2\n", {}, "invalid YAML"),
        ("- just\n- a list\n", {}, "mapping"),
        ("", {"WEBSOCKET_PORT": "abc"}, "server.port"),
        ("", {"NATS_URL": "http://x"}, "nats.url"),
        ("server:\n  max_connections: 0\n", {}, "server.max_connections"),
    ],
)
def test_bad_config_names_the_key(tmp_path: Path, text: str, env: dict[str, str], needle: str) -> None:
    with pytest.raises(ConfigError) as e:
        build_config(write(tmp_path, text), env, {})
    msg = str(e.value)
    assert needle in msg and "\n" not in msg


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        build_config(str(tmp_path / "nope.yaml"), {}, {})


@pytest.mark.parametrize("argv", [["--config", "MISSING"], ["--port", "notaport"]])
def test_gateway_exits_2_with_one_line_and_no_traceback(tmp_path: Path, argv: list[str]) -> None:
    if argv[1] == "MISSING":
        argv = ["--config", write(tmp_path, "server:\n  port: [oops]\n")]
    r = subprocess.run([str(BIN / "argus-gateway"), *argv], capture_output=True, text=True, timeout=30)
    assert r.returncode == 2
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert "Traceback" not in r.stderr
    assert any("port" in line for line in lines)
    if argv[0] == "--config":
        assert len(lines) == 1 and "server.port" in lines[0]


def test_shipped_config_file_is_valid() -> None:
    root = Path(__file__).resolve().parents[2]
    cfg = build_config(str(root / "config" / "websocket_config.yaml"), {}, {})
    assert cfg.server.port == 8765 and cfg.nats.url.startswith("nats://")


def test_tracing_is_off_by_default_and_otlp_needs_its_exporter() -> None:
    import importlib.util

    from argus_service.config import TracingConfig
    from argus_service.tracing import setup_tracing
    from opentelemetry import trace

    assert isinstance(setup_tracing("x", TracingConfig()).tracer, trace.NoOpTracer)
    cfg = build_config(None, {"OTEL_ENABLED": "true"}, {})
    assert cfg.tracing.enabled is True
    try:
        have_otlp = importlib.util.find_spec("opentelemetry.exporter.otlp") is not None
    except ModuleNotFoundError:
        have_otlp = False
    if not have_otlp:
        with pytest.raises(ConfigError, match=r"tracing\.exporter"):
            setup_tracing("x", cfg.tracing)
    with pytest.raises(ConfigError, match=r"tracing\.sample_ratio"):
        build_config(None, {}, {"tracing.sample_ratio": 2})
