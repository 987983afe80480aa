"""A real 3-node JetStream cluster of nats-server processes, for chaos tests.

Each node has its own client, route and monitoring port (all free ports on 127.0.0.1), its own
store directory and a unique `server_name`; the routes name every node, so a node restarted on its
own ports and store rejoins the cluster. A node can be killed with SIGKILL (nothing flushed, no
goodbye to its peers), started again, and the whole cluster stopped and started. `wait_ready`
returns once JetStream has a meta leader and every running node says it is current (`/healthz`).
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from natsserver import free_port, wait_port

CLUSTER_NAME = "argus-chaos"


class NatsNode:
    """One nats-server of the cluster: fixed ports and store for its whole life, so it can return."""

    def __init__(self, binary: str, index: int, root: Path) -> None:
        self.binary = binary
        self.name = f"n{index}"
        self.port = free_port()
        self.cluster_port = free_port()
        self.http_port = free_port()
        self.store = root / self.name
        self.store.mkdir(parents=True, exist_ok=True)
        self.conf_path = root / f"{self.name}.conf"
        self.log_path = root / f"{self.name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def write_conf(self, peers: list[NatsNode]) -> None:
        routes = ", ".join(f'"nats-route://127.0.0.1:{p.cluster_port}"' for p in peers if p is not self)
        self.conf_path.write_text(
            f"server_name: {self.name}\n"
            f"listen: 127.0.0.1:{self.port}\n"
            f"http: 127.0.0.1:{self.http_port}\n"
            "jetstream {\n"
            f'  store_dir: "{self.store}"\n'
            "  max_memory_store: 2GB\n"  # reservations: the four retention streams reserve 1.1 GiB
            "  max_file_store: 8GB\n"
            "}\n"
            "cluster {\n"
            f"  name: {CLUSTER_NAME}\n"
            f"  listen: 127.0.0.1:{self.cluster_port}\n"
            f"  routes: [{routes}]\n"
            "}\n"
        )

    def start(self) -> None:
        log = open(self.log_path, "ab")  # appended across restarts: one story per node
        try:
            self.proc = subprocess.Popen([self.binary, "-c", str(self.conf_path)], stdout=log, stderr=log)
        finally:
            log.close()  # the child holds its own descriptor
        wait_port(self.port, 10)

    def kill(self) -> None:
        """SIGKILL: the node vanishes mid-write, as on a lost machine."""
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
            self.proc = None

    def monitor(self, path: str) -> tuple[int, Any]:
        """(HTTP status, parsed JSON) of a monitoring endpoint; (0, None) when nothing answers."""
        url = f"http://127.0.0.1:{self.http_port}{path}"
        try:
            with urllib.request.urlopen(url, timeout=1.0) as r:
                return r.status, json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            body = e.read()
            try:
                return e.code, json.loads(body or b"null")
            except ValueError:
                return e.code, None
        except (OSError, ValueError):
            return 0, None


class NatsCluster:
    """Three (by default) nats-servers routed to each other; `urls` is what services are given."""

    def __init__(self, binary: str, size: int = 3) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="argus-cluster-"))
        self.nodes = [NatsNode(binary, i, self.root) for i in range(size)]
        for node in self.nodes:
            node.write_conf(self.nodes)

    @property
    def urls(self) -> str:
        """Every node's client URL, comma-separated (the form `--nats-url` and NATS_URL accept)."""
        return ",".join(n.url for n in self.nodes)

    def start(self, timeout: float = 30.0) -> None:
        for node in self.nodes:
            node.start()
        self.wait_ready(timeout)

    def kill(self, index: int) -> None:
        self.nodes[index].kill()

    def start_node(self, index: int) -> None:
        """Start a killed node again on its own ports and store (it rejoins and catches up)."""
        self.nodes[index].start()

    def kill_all(self) -> None:
        for node in self.nodes:
            node.kill()

    def start_all(self) -> None:
        for node in self.nodes:
            if not node.running:
                node.start()

    def _jsz(self) -> dict[str, dict[str, Any]]:
        """Each running node's /jsz (with its streams), by node name; a node that does not answer is left out."""
        out = {}
        for node in self.nodes:
            if node.running:
                status, jsz = node.monitor("/jsz?streams=true&config=true")
                if status == 200 and jsz:
                    out[node.name] = jsz
        return out

    def meta_leader(self) -> str:
        """The JetStream meta leader as the running nodes see it ("" while they disagree or have none)."""
        views = self._jsz()
        seen = {(v.get("meta_cluster") or {}).get("leader", "") for v in views.values()}
        return seen.pop() if len(seen) == 1 and len(views) == sum(n.running for n in self.nodes) else ""

    def problems(self) -> list[str]:
        """What keeps the cluster from being ready (no meta leader, a stream without a leader or with a
        replica behind, a node's /healthz failing), one line each; empty when it is ready."""
        out = []
        running = {n.name for n in self.nodes if n.running}
        views = self._jsz()
        leader = self.meta_leader()
        if not leader:
            out.append("no JetStream meta leader agreed on")
        for name, view in views.items():
            if name == leader:
                behind = [
                    r["name"]
                    for r in view["meta_cluster"].get("replicas") or []
                    if r["name"] in running and not r.get("current")
                ]
                if behind:
                    out.append(f"meta: {behind} not current")
            for account in view.get("account_details") or []:
                for st in account.get("stream_detail") or []:
                    cl = st.get("cluster") or {}
                    if cl.get("leader") not in running:
                        out.append(f"stream {st['name']}: no leader ({name}'s view)")
                    elif cl.get("leader") == name:
                        behind = [
                            r["name"] for r in cl.get("replicas") or [] if r["name"] in running and not r.get("current")
                        ]
                        if behind:
                            out.append(f"stream {st['name']}: {behind} not current")
            out.extend(self._direct_get_missing(name, view))
        for node in self.nodes:
            if not node.running:
                continue
            status, body = node.monitor("/healthz")
            if status != 200:
                out.append(f"{node.name}: /healthz {status} {body}")
        return out

    def _direct_get_missing(self, name: str, view: dict[str, Any]) -> list[str]:
        """Streams with direct gets whose replica on this node does not answer them yet.

        A leader answers at once, a follower only once the server's periodic check found it current
        (about 2 s after the stream was made): kill the leader before that and gets find no responder.
        """
        node = next(n for n in self.nodes if n.name == name)
        hosted = [
            st["name"]
            for account in view.get("account_details") or []
            for st in account.get("stream_detail") or []
            if (st.get("config") or {}).get("allow_direct")
        ]
        if not hosted:
            return []
        status, body = node.monitor("/subsz?subs=1&acc=$G&limit=10000")
        subjects = (
            {sub.get("subject") for sub in ((body or {}).get("subscriptions_list") or [])} if status == 200 else set()
        )
        return [
            f"{name}: {st} answers no direct get yet" for st in hosted if f"$JS.API.DIRECT.GET.{st}" not in subjects
        ]

    def wait_ready(self, timeout: float = 30.0) -> float:
        """Block until a meta leader is elected and every running node is current; returns seconds waited."""
        start = time.monotonic()
        deadline = start + timeout
        while True:
            problems = self.problems()
            if not problems:
                return time.monotonic() - start
            if time.monotonic() > deadline:
                raise TimeoutError(f"cluster not ready after {timeout}s: {problems}\n{self.logs_tail()}")
            time.sleep(0.1)

    def logs_tail(self, chars: int = 1500) -> str:
        return "\n".join(
            f"--- {n.name} ---\n{n.log_path.read_text(errors='replace')[-chars:]}"
            for n in self.nodes
            if n.log_path.exists()
        )

    def cleanup(self) -> None:
        self.kill_all()
        shutil.rmtree(self.root, ignore_errors=True)
