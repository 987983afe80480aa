"""`make run`'s launcher: its children die with it however it goes, and it stops promptly in any state."""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from launcher import Launcher, alive, wait_gone
from natsserver import free_port

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def launchers() -> Iterator[list[Launcher]]:
    made: list[Launcher] = []
    yield made
    for launcher in made:
        pids = launcher.children()
        launcher.kill()
        for pid in pids:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="NOT CHECKED: needs Linux /proc and prctl")


@pytest.mark.parametrize("sig", [signal.SIGHUP, signal.SIGTERM], ids=lambda s: s.name)
def test_a_closed_terminal_or_sigterm_stops_every_child(launchers: list[Launcher], sig: signal.Signals) -> None:
    launcher = Launcher({})
    launchers.append(launcher)
    launcher.banner()
    pids = launcher.children()
    assert len(pids) == 3
    launcher.p.send_signal(sig)
    assert launcher.p.wait(30) == 0
    assert wait_gone(pids, 5) == []


def test_children_die_with_a_killed_launcher(launchers: list[Launcher]) -> None:
    launcher = Launcher({})
    launchers.append(launcher)
    launcher.banner()
    pids = launcher.children()
    assert len(pids) == 3
    launcher.p.send_signal(signal.SIGKILL)
    launcher.p.wait(10)
    assert wait_gone(pids, 20) == [], "nats-server, ingestor or gateway outlived a SIGKILLed launcher"


def test_ctrl_c_with_unreachable_nats_stops_within_seconds(launchers: list[Launcher]) -> None:
    launcher = Launcher({"NATS_URL": f"nats://127.0.0.1:{free_port()}"})
    launchers.append(launcher)
    time.sleep(3.0)  # ingestor and gateway are retrying the connect; the launcher waits for the gateway port
    pids = launcher.children()
    assert len(pids) == 2, f"expected ingestor and gateway, found {pids}"
    t0 = time.monotonic()
    launcher.p.send_signal(signal.SIGINT)
    assert launcher.p.wait(30) == 0
    assert time.monotonic() - t0 < 5.0
    assert wait_gone(pids, 2) == []


def test_a_second_stack_on_the_same_nats_stands_by_instead_of_publishing_twice(launchers: list[Launcher]) -> None:
    first = Launcher({})
    launchers.append(first)
    first.banner()
    assert "NOTE" not in "".join(first.out)
    second = Launcher({"NATS_URL": f"nats://127.0.0.1:{first.ports['NATS_PORT']}"})
    launchers.append(second)
    text = second.banner()
    assert "another ingestor already publishes this source" in text and "standby" in text, text
    assert len(second.children()) == 2  # no nats-server of its own
