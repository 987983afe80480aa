"""Packaging as a user meets it: a LICENSE, metadata, --version, and each service installable alone."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from manifests import ROOT

BIN = Path(sys.executable).parent
PACKAGES = sorted(p.parent for p in ROOT.glob("*/*/pyproject.toml") if p.parent.parent.name in ("libs", "services"))
SERVICES = sorted(p for p in PACKAGES if p.parent.name == "services")


def test_license_is_mit_and_every_package_says_so() -> None:
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")
    for pkg in PACKAGES:
        project = tomllib.loads((pkg / "pyproject.toml").read_text())["project"]
        assert project["license"] == "MIT", pkg
        assert (pkg / project["readme"]).exists() and project["version"] and project["description"], pkg
        assert project["authors"], pkg


@pytest.mark.parametrize("service", [s.name for s in SERVICES])
def test_version_flag(service: str) -> None:
    project = tomllib.loads((ROOT / "services" / service / "pyproject.toml").read_text())["project"]
    (script,) = project["scripts"]
    r = subprocess.run([str(BIN / script), "--version"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.strip() == f"{script} {project['version']}", r.stdout + r.stderr


def copy_tree(dest: Path, service: str) -> Path:
    """The libraries and one service, as a user's checkout would have them (no build leftovers)."""
    ignore = shutil.ignore_patterns("*.egg-info", "__pycache__", "build")
    shutil.copytree(ROOT / "libs", dest / "libs", ignore=ignore)
    shutil.copytree(ROOT / "services" / service, dest / "services" / service, ignore=ignore)
    return dest / "services" / service


def test_a_service_installs_alone_from_its_folder_into_a_fresh_venv(tmp_path: Path) -> None:
    folder = copy_tree(tmp_path / "src", "ingestor-mock")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    r = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check", "-r", "requirements.txt"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    v = subprocess.run(
        [str(venv / "bin" / "argus-ingestor-mock"), "--version"], capture_output=True, text=True, timeout=60
    )
    assert v.stdout.strip() == "argus-ingestor-mock 0.1.0", v.stderr


@pytest.mark.parametrize("service", [s.name for s in SERVICES])
def test_each_requirements_file_lists_exactly_the_libraries_its_package_needs(service: str) -> None:
    folder = ROOT / "services" / service
    deps = tomllib.loads((folder / "pyproject.toml").read_text())["project"]["dependencies"]
    needed = {d.removeprefix("argus-") for d in deps if d.startswith("argus-")}
    if "ingestor" in needed:  # argus-ingestor needs these two itself
        needed |= {"protocol", "service"}
    lines = [x for x in (folder / "requirements.txt").read_text().splitlines() if x and not x.startswith("#")]
    libs = {x.removeprefix("../../libs/") for x in lines if x.startswith("../../libs/")}
    assert libs == needed, f"{service}: requirements.txt lists {libs}, the package needs {needed}"
    assert all((folder / x).is_dir() for x in lines if x.startswith("../")), "paths relative to the folder"
    assert lines[-1] in (".", ".[fast]"), "the service itself, last"
