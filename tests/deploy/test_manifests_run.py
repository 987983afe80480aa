"""Every container of both rendered overlays, started locally as the manifests say, against their NATS.

NATS runs from the rendered StatefulSet (its entrypoint, config, users and Secret), one process per
replica; gateway and ingestors from the rendered Deployments. Upstreams are the fakes the TDX and
Yahoo tests use; cluster names and ports map to 127.0.0.1 (see localpods.py).
"""

from __future__ import annotations

import asyncio
import json
import secrets
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nats
import pytest
from localpods import LocalPod, nats_route_wrapper, wait_http
from manifests import ROOT, named, of_kind, rendered
from natsserver import free_port
from wsclient import Client

sys.path.insert(0, str(ROOT / "tests" / "tdx"))
sys.path.insert(0, str(ROOT / "tests" / "yahoo"))

from fake_chart import FakeChartServer
from fake_streamer import FakeStreamer
from fake_tdx import FakeTdxServer
from fixtures_tdx import standard_market
from yahoo_fixtures import all_charts

STARTUP = 30.0  # seconds a container gets to pass its probes (each probe's own budget is larger)


class Cluster:
    """The pods of one overlay, started in order, stopped in reverse."""

    def __init__(self, overlay: str, root: Path) -> None:
        self.docs = rendered(overlay)
        self.root = root
        self.pods: list[LocalPod] = []
        self.secrets = {k: secrets.token_hex(12) for k in self.secret_keys()}
        self.nats_ports: list[dict[str, int]] = []

    def secret_keys(self) -> set[str]:
        """Every key a secretKeyRef names, wherever it sits in the rendered resources."""
        keys: set[str] = set()

        def walk(node: Any) -> None:
            if isinstance(node, dict):
                if "secretKeyRef" in node:
                    keys.add(node["secretKeyRef"]["key"])
                for v in node.values():
                    walk(v)
            elif isinstance(node, list):
                for v in node:
                    walk(v)

        walk(list(self.docs))
        return keys

    def start_nats(self) -> None:
        sts = named(self.docs, "StatefulSet", "nats")
        replicas = sts["spec"]["replicas"]
        self.nats_ports = [
            {"client": free_port(), "cluster": free_port(), "monitor": free_port()} for _ in range(replicas)
        ]
        routes = {f"nats-{i}.nats-headless:6222": f"127.0.0.1:{p['cluster']}" for i, p in enumerate(self.nats_ports)}
        wrapper = nats_route_wrapper(self.root / "nats-bin", routes)
        for i, ports in enumerate(self.nats_ports):
            net = {
                "port: 4222": f"listen: 127.0.0.1:{ports['client']}",
                "http_port: 8222": f"http: 127.0.0.1:{ports['monitor']}",
                "port: 6222": f"listen: 127.0.0.1:{ports['cluster']}",
            }
            pod = LocalPod(
                self.docs, sts, self.root, pod_name=f"nats-{i}", secrets=self.secrets, net=net, path_dirs=[wrapper]
            )
            self.pods.append(pod.start())
        for pod, ports in zip(self.pods, self.nats_ports, strict=True):
            self.pass_probes(pod, {8222: ports["monitor"]})

    @property
    def nats_url(self) -> str:
        return ",".join(f"nats://127.0.0.1:{p['client']}" for p in self.nats_ports)

    def start(
        self, deployment: str, extra_env: dict[str, str] | None = None, net: dict[str, str] | None = None
    ) -> tuple[LocalPod, int, int]:
        """Returns (pod, websocket port, metrics port) once its probes pass."""
        ws, metrics = free_port(), free_port()
        mapping = {
            "nats://nats:4222": self.nats_url,
            "host: 0.0.0.0": "host: 127.0.0.1",
            "port: 8765": f"port: {ws}",
            "metrics:\n  port: 9090": f"metrics:\n  host: 127.0.0.1\n  port: {metrics}",
            **(net or {}),
        }
        pod = LocalPod(
            self.docs,
            named(self.docs, "Deployment", deployment),
            self.root,
            pod_name=f"{deployment}-local",
            secrets=self.secrets,
            net=mapping,
            extra_env=extra_env,
        )
        self.pods.append(pod.start())
        self.pass_probes(pod, {9090: metrics})
        return pod, ws, metrics

    def pass_probes(self, pod: LocalPod, ports: dict[int, int]) -> None:
        probes = pod.probe_paths()
        assert {"startupProbe", "readinessProbe", "livenessProbe"} <= set(probes), f"{pod.pod_name}: {probes}"
        for kind in ("startupProbe", "livenessProbe", "readinessProbe"):
            path, port = probes[kind]
            wait_http(ports[port], path, STARTUP, pod)

    def stop(self) -> dict[str, int | None]:
        return {pod.pod_name: pod.stop() for pod in reversed(self.pods)}


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Any]:
    made: list[Cluster] = []

    def make(overlay: str) -> Cluster:
        made.append(Cluster(overlay, tmp_path / overlay))
        return made[-1]

    yield make
    for c in made:
        c.stop()


async def first_data(ws_port: int, symbol: str, source: str, timeout: float = 20) -> dict[str, Any]:
    c = await Client.connect(ws_port)
    try:
        await c.subscribe([symbol], ["quote"], snapshot=False)
        return (await c.data(1, timeout=timeout, symbol=symbol, source=source))[0]
    finally:
        await c.close()


async def permissions(url: str, password: dict[str, str]) -> dict[str, Any]:
    """What NATS lets each service user do, and that it refuses anyone else."""
    found: dict[str, Any] = {}
    errors: list[str] = []

    async def on_error(e: Exception) -> None:
        errors.append(str(e))

    servers = url.split(",")
    gw = await nats.connect(servers, user="gateway", password=password["nats-gateway-password"], error_cb=on_error)
    await gw.publish("quote.000001.SZ", b"forged")  # a gateway must never publish market data
    await gw.flush()
    await asyncio.sleep(0.3)
    found["gateway_publish_data"] = errors[:]
    errors.clear()
    ing = await nats.connect(servers, user="ingestor", password=password["nats-ingestor-password"], error_cb=on_error)
    await ing.subscribe("quote.>")  # nor an ingestor read other sources' data
    await ing.flush()
    await asyncio.sleep(0.3)
    found["ingestor_subscribe_data"] = errors[:]
    try:
        anon = await nats.connect(servers, allow_reconnect=False, connect_timeout=2, max_reconnect_attempts=1)
        await anon.close()
        found["anonymous"] = "connected"
    except Exception as e:  # noqa: BLE001 - any refusal is the point
        found["anonymous"] = repr(e)
    await gw.close()
    await ing.close()
    return found


async def stream_configs(url: str, password: str) -> dict[str, tuple[int, str]]:
    """Every JetStream stream: (replicas, storage), as the services created them from argus-env."""
    nc = await nats.connect(url.split(","), user="ingestor", password=password)
    try:
        infos = await nc.jetstream().streams_info()
        return {
            i.config.name: (int(i.config.num_replicas or 1), getattr(i.config.storage, "value", i.config.storage))
            for i in infos
        }
    finally:
        await nc.close()


def test_dev_overlay_runs_one_nats_with_jetstream_and_the_mock_reaches_a_client(cluster: Any) -> None:
    c: Cluster = cluster("dev")
    c.start_nats()
    assert len(c.pods) == 1
    pid_file = c.pods[0].mounts["/var/run/nats"] / "nats.pid"
    assert pid_file.read_text().strip() == str(c.pods[0].proc.pid), "preStop's lame-duck signal finds the pid"
    gateway, ws, _ = c.start("gateway")
    mock, _, mmetrics = c.start("ingestor-mock")
    data = asyncio.run(first_data(ws, "000001.SZ", "mock"))
    assert data["quote"]["price"] > 0
    with urllib.request.urlopen(f"http://127.0.0.1:{c.nats_ports[0]['monitor']}/jsz") as r:
        jsz = json.loads(r.read())
    assert jsz["streams"] >= 2, jsz  # the retention streams and the lease bucket exist: JetStream is healthy
    with urllib.request.urlopen(f"http://127.0.0.1:{mmetrics}/metrics") as r:
        assert "ingestor_lease_held 1.0" in r.read().decode()
    streams = asyncio.run(stream_configs(c.nats_url, secrets_of(c)["nats-ingestor-password"]))
    assert set(streams.values()) == {(1, "memory")}, f"dev's argus-env: memory, 1 replica: {streams}"
    found = asyncio.run(permissions(c.nats_url, secrets_of(c)))
    assert any("permissions violation" in e.lower() for e in found["gateway_publish_data"]), found
    assert any("permissions violation" in e.lower() for e in found["ingestor_subscribe_data"]), found
    assert "Authorization" in found["anonymous"] or "authorization" in found["anonymous"].lower(), found
    for pod in (mock, gateway):
        assert "Traceback" not in pod.log(), pod.log()[-3000:]
        assert list((pod.root / "workdir").iterdir()) == [], "nothing written to the (read-only) working dir"
    codes = c.stop()
    assert codes["gateway-local"] == 0 and codes["ingestor-mock-local"] == 0, codes


def secrets_of(c: Cluster) -> dict[str, str]:
    import base64

    try:
        secret = named(c.docs, "Secret", "argus-secrets")
    except KeyError:
        return c.secrets
    return {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}


class YahooUpstream:
    """The fake Yahoo streamer and chart API on a loop of their own, for a synchronous test."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.streamer: FakeStreamer = self._run(FakeStreamer().start())
        self.chart: FakeChartServer = self._run(self._chart())
        self.pusher = asyncio.run_coroutine_threadsafe(self._market(), self.loop)

    def _run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)

    async def _chart(self) -> FakeChartServer:
        server = await FakeChartServer().start()
        server.charts = all_charts()
        return server

    async def _market(self) -> None:
        i = 0
        while True:
            i += 1
            await self.streamer.push(
                id="AAPL", price=229.5, time=1763910900000 + i * 100, market_hours=1, day_volume=1000 + i
            )
            await asyncio.sleep(0.2)

    def close(self) -> None:
        self.pusher.cancel()
        self._run(self.streamer.stop())
        self._run(self.chart.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


def test_prod_overlay_runs_a_three_node_jetstream_cluster_and_every_ingestor(cluster: Any) -> None:
    c: Cluster = cluster("prod")
    c.start_nats()
    assert len(c.pods) == 3, "prod: 3 NATS replicas"
    for ports in c.nats_ports:  # every server routes to the other two: the cluster formed
        deadline = time.monotonic() + 20
        while True:
            with urllib.request.urlopen(f"http://127.0.0.1:{ports['monitor']}/routez") as r:
                routes = json.loads(r.read())["num_routes"]
            if routes >= 2 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert routes >= 2, f"server on {ports} has {routes} routes"
    tdx = FakeTdxServer(standard_market()).start()
    yahoo = YahooUpstream()
    try:
        _, ws, _ = c.start("gateway")
        tdx_hosts = named(c.docs, "Deployment", "ingestor-tdx")["spec"]["template"]["spec"]["containers"][0]["env"]
        hosts = next(e["value"] for e in tdx_hosts if e["name"] == "TDX_HOSTS").split(",")
        _, _, tdx_metrics = c.start(
            "ingestor-tdx",
            extra_env={"TDX_SCHEDULE": "always", "TDX_INTERVAL": "0.5"},  # the fake market never closes
            net={h: f"127.0.0.1:{tdx.port}" for h in hosts},
        )
        no_way_out = {"HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9", "NO_PROXY": "127.0.0.1"}
        c.start(
            "ingestor-yahoo",
            extra_env={
                "YAHOO_WS_URL": yahoo.streamer.url,
                "YAHOO_CHART_URL": yahoo.chart.url,
                "YAHOO_SCHEDULE": "always",
                **no_way_out,
            },
        )
        data = asyncio.run(first_data(ws, "000001.SZ", "tdx"))
        assert data["quote"]["price"] == 10.5
        assert asyncio.run(first_data(ws, "AAPL.US", "yahoo"))["quote"]["price"] == 229.5

        streams = asyncio.run(stream_configs(c.nats_url, c.secrets["nats-ingestor-password"]))
        assert streams["KV_ARGUS_LEASES"] == (3, "memory"), "prod's argus-env: 3 replicas of the lease bucket"
        retention = {k: v for k, v in streams.items() if not k.startswith("KV_")}
        assert retention and set(retention.values()) == {(3, "file")}, f"prod's argus-env: file, 3 replicas: {streams}"
        found = asyncio.run(permissions(c.nats_url, c.secrets))
        assert any("permissions violation" in e.lower() for e in found["gateway_publish_data"]), found
        with urllib.request.urlopen(f"http://127.0.0.1:{tdx_metrics}/metrics") as r:
            assert "ingestor_lease_held 1.0" in r.read().decode()
        codes = c.stop()
        assert all(codes[n] == 0 for n in ("gateway-local", "ingestor-tdx-local", "ingestor-yahoo-local")), codes
    finally:
        tdx.stop()
        yahoo.close()


def test_every_rendered_workload_is_started_by_one_of_these_tests() -> None:
    started = {
        "dev": {"nats", "gateway", "ingestor-mock"},
        "prod": {"nats", "gateway", "ingestor-tdx", "ingestor-yahoo"},
    }
    for overlay, names in started.items():
        docs = rendered(overlay)
        workloads: set[str] = {
            d["metadata"]["name"] for d in [*of_kind(docs, "Deployment"), *of_kind(docs, "StatefulSet")]
        }
        assert workloads == names, f"{overlay}: a workload nobody starts locally: {workloads - names}"
