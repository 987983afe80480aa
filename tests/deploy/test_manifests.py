"""Both overlays render with the real kubectl, validate against the Kubernetes schemas, and keep the posture."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import kubernetes_validate
import pytest
from argus_service.config import build_config
from manifests import K8S, OVERLAYS, ROOT, containers, named, of_kind, pod_spec, render, rendered, workloads

K8S_VERSION = "1.30.0"  # the oldest Kubernetes the manifests promise to work on (README)


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("version", [K8S_VERSION, kubernetes_validate.latest_version()])
def test_overlay_renders_and_every_resource_validates_strictly(overlay: str, version: str) -> None:
    docs = rendered(overlay)
    assert len(docs) >= 15
    for doc in docs:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as e:
            raise AssertionError(
                f"{overlay}: {doc['kind']}/{doc['metadata']['name']} ({version}): {e.message}"
            ) from None


def test_the_ingress_component_validates_too() -> None:
    docs = rendered("prod")
    (ingress,) = of_kind(docs, "Ingress")
    annotations = ingress["metadata"]["annotations"]
    # WebSocket idle timeouts far beyond the 30 s heartbeat: quiet clients are not cut
    assert int(annotations["nginx.ingress.kubernetes.io/proxy-read-timeout"]) >= 3600
    assert int(annotations["nginx.ingress.kubernetes.io/proxy-send-timeout"]) >= 3600
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend["name"] == "gateway" and backend["port"]["name"] == "ws"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_images_come_from_kustomize_images_with_a_pinned_tag(overlay: str) -> None:
    for w in workloads(rendered(overlay)):
        for c in containers(w):
            image = c["image"]
            name, _, tag = image.rpartition(":")
            assert name and tag and tag != "latest" and "/" not in tag, f"{overlay}: {image} has no pinned tag"
    text = "".join(p.read_text() for p in (K8S / "base").rglob("*.yaml")) + "".join(
        p.read_text() for p in (K8S / "components").rglob("*.yaml")
    )
    assert ":latest" not in text
    assert not re.search(r"image: \S+:\S+", text), "tags belong in the overlays' images:, not in base"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_container_is_locked_down_and_sized(overlay: str) -> None:
    for w in workloads(rendered(overlay)):
        spec = pod_spec(w)
        psc = spec["securityContext"]
        assert psc["runAsNonRoot"] is True and isinstance(psc["runAsUser"], int) and psc["runAsUser"] >= 1000
        assert psc["seccompProfile"]["type"] == "RuntimeDefault"
        assert spec["automountServiceAccountToken"] is False
        for c in containers(w):
            sc = c["securityContext"]
            where = f"{overlay}: {w['metadata']['name']}/{c['name']}"
            assert sc["readOnlyRootFilesystem"] is True, where
            assert sc["allowPrivilegeEscalation"] is False and sc["capabilities"]["drop"] == ["ALL"], where
            res = c["resources"]
            assert {"cpu", "memory"} <= set(res["requests"]) and {"cpu", "memory"} <= set(res["limits"]), where
            mounts = {m["mountPath"] for m in c.get("volumeMounts", [])}
            if c["name"] != "nats":
                assert "/tmp" in mounts, f"{where}: a read-only root needs a writable /tmp"
                env = {e["name"]: e for e in c.get("env", [])}
                assert "LOG_FILE" not in env or env["LOG_FILE"].get("value") == ""


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_secrets_are_referenced_by_secret_key_ref_and_dev_resolves_them(overlay: str) -> None:
    docs = rendered(overlay)
    refs = {
        (e["valueFrom"]["secretKeyRef"]["name"], e["valueFrom"]["secretKeyRef"]["key"])
        for w in workloads(docs)
        for c in containers(w)
        for e in c.get("env", [])
        if "secretKeyRef" in e.get("valueFrom", {})
    }
    keys = {k for _, k in refs}
    assert {"nats-gateway-password", "nats-ingestor-password", "api-keys", "jwt-secret"} <= keys
    secrets = of_kind(docs, "Secret")
    if overlay == "dev":
        (secret,) = secrets
        assert {(secret["metadata"]["name"], k) for k in keys} == refs and keys <= set(secret["data"])
    else:
        assert secrets == [], "prod's Secret is created by the operator, never committed"
        readme = (ROOT / "README.md").read_text()
        command = readme[readme.index("kubectl create secret generic argus-secrets") :].split("\n\n")[0]
        assert set(re.findall(r"--from-literal=([\w-]+)=", command)) == keys, "the README's command creates every key"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_nats_routes_follow_replicas_and_probes_match_the_nats_chart(overlay: str) -> None:
    docs = rendered(overlay)
    sts = named(docs, "StatefulSet", "nats")
    (c,) = containers(sts)
    env = {e["name"]: e for e in c["env"]}
    assert env["NATS_REPLICAS"]["value"] == str(sts["spec"]["replicas"])
    assert sts["spec"]["replicas"] == (1 if overlay == "dev" else 3)
    assert c["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert c["readinessProbe"]["httpGet"]["path"] == "/healthz?js-server-only=true"
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz?js-enabled-only=true"
    assert c["startupProbe"]["failureThreshold"] * c["startupProbe"]["periodSeconds"] >= 600  # JetStream recovery
    assert c["lifecycle"]["preStop"]["exec"]["command"] == ["nats-server", "-sl=ldm=/var/run/nats/nats.pid"]
    assert pod_spec(sts)["terminationGracePeriodSeconds"] > 40  # lame duck 30 s + grace 10 s
    spread = pod_spec(sts)["topologySpreadConstraints"]
    assert any(
        s["topologyKey"] == "kubernetes.io/hostname" and s["whenUnsatisfiable"] == "DoNotSchedule" for s in spread
    )
    pdb = named(docs, "PodDisruptionBudget", "nats")
    assert pdb["spec"]["maxUnavailable"] == 1
    conf = named(docs, "ConfigMap", "nats-config")["data"]
    assert "lame_duck_duration" in conf["nats.conf"] and "pid_file: /var/run/nats/nats.pid" in conf["nats.conf"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_gateways_spread_drain_and_autoscale(overlay: str) -> None:
    docs = rendered(overlay)
    gw = named(docs, "Deployment", "gateway")
    assert "replicas" not in gw["spec"], "the HPA owns the replica count"
    spread = pod_spec(gw)["topologySpreadConstraints"]
    assert {s["topologyKey"] for s in spread} == {"kubernetes.io/hostname", "topology.kubernetes.io/zone"}
    assert named(docs, "PodDisruptionBudget", "gateway")["spec"] == {
        "maxUnavailable": 1,
        "selector": {"matchLabels": {"app.kubernetes.io/name": "argus-gateway"}},
    }
    hpa = named(docs, "HorizontalPodAutoscaler", "gateway")["spec"]
    assert hpa["behavior"]["scaleDown"]["stabilizationWindowSeconds"] >= 300
    kinds = {m["type"]: m for m in hpa["metrics"]}
    assert kinds["Resource"]["resource"]["name"] == "cpu"
    if overlay == "prod":
        assert hpa["minReplicas"] == 4
        assert kinds["Pods"]["pods"]["metric"]["name"] == "websocket_active_connections"
    else:
        assert hpa["minReplicas"] == 1
    drain = re.search(
        r"drain_seconds: (\d+)", named(docs, "ConfigMap", "argus-config")["data"]["websocket_config.yaml"]
    )
    assert drain and pod_spec(gw)["terminationGracePeriodSeconds"] > int(drain.group(1)) + 5


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_network_policy_denies_by_default_and_opens_nats_to_argus_pods_only(overlay: str) -> None:
    docs = rendered(overlay)
    policies = {p["metadata"]["name"]: p["spec"] for p in of_kind(docs, "NetworkPolicy")}
    assert policies["default-deny-ingress"] == {"podSelector": {}, "policyTypes": ["Ingress"]}
    nats_rules = policies["nats-clients"]["ingress"]
    client_rule = next(r for r in nats_rules if r["ports"] == [{"port": 4222, "protocol": "TCP"}])
    (source,) = client_rule["from"]
    assert source["podSelector"]["matchExpressions"][0]["values"] == ["gateway", "ingestor"]
    labels = {w["metadata"]["name"]: w["spec"]["template"]["metadata"]["labels"] for w in workloads(docs)}
    for name, lab in labels.items():
        component = lab["app.kubernetes.io/component"]
        assert component in ("gateway", "ingestor", "nats"), name


def test_every_ingestor_with_a_container_image_has_a_deployment() -> None:
    deployed = {d["metadata"]["name"] for o in OVERLAYS for d in of_kind(rendered(o), "Deployment")}
    images = set(re.findall(r"--target (ingestor-\w+)", (ROOT / "deploy" / "docker" / "Dockerfile").read_text()))
    assert images == {"ingestor-mock", "ingestor-tdx", "ingestor-yahoo"}
    assert images <= deployed
    assert "ingestor-qmt" not in deployed and "QMT" in (K8S / "README.md").read_text()  # runs outside, documented


def test_retention_and_lease_settings_per_environment() -> None:
    want = {"dev": ("memory", "1"), "prod": ("file", "3")}
    for overlay, (storage, replicas) in want.items():
        env = named(rendered(overlay), "ConfigMap", "argus-env")["data"]
        assert env["ARGUS_RETENTION_STORAGE"] == storage and env["ARGUS_RETENTION_REPLICAS"] == replicas
        assert env["ARGUS_LEASE_REPLICAS"] == replicas


def test_a_config_edit_rolls_every_pod_that_reads_it(tmp_path: Path) -> None:
    copy = tmp_path / "k8s"
    shutil.copytree(K8S, copy)
    before = {d["metadata"]["name"]: d["spec"]["template"] for d in workloads(render(copy / "overlays" / "dev"))}
    cfg = copy / "base" / "config" / "websocket_config.yaml"
    cfg.write_text(cfg.read_text().replace("max_connections: 10000", "max_connections: 9000"))
    after = {d["metadata"]["name"]: d["spec"]["template"] for d in workloads(render(copy / "overlays" / "dev"))}
    for name in ("gateway", "ingestor-mock"):
        assert before[name] != after[name], f"{name}'s pod template must change with the config"
    assert before["nats"] == after["nats"], "NATS does not read the suite's config"
    conf = copy / "base" / "nats" / "nats.conf"
    conf.write_text(conf.read_text().replace("max_payload: 1MB", "max_payload: 2MB"))
    again = {d["metadata"]["name"]: d["spec"]["template"] for d in workloads(render(copy / "overlays" / "dev"))}
    assert again["nats"] != after["nats"], "a NATS config edit rolls the NATS pods"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_ingestor_runs_a_standby_that_a_drain_cannot_take_with_the_leader(overlay: str) -> None:
    docs = rendered(overlay)
    ingestors = [w for w in of_kind(docs, "Deployment") if w["metadata"]["name"].startswith("ingestor-")]
    assert ingestors
    budgets = {
        b["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"]: b for b in of_kind(docs, "PodDisruptionBudget")
    }
    for d in ingestors:
        assert d["spec"]["replicas"] == 2, f"{overlay}: {d['metadata']['name']}: leader and standby"
        label = d["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"]
        assert budgets[label]["spec"]["minAvailable"] == 1, f"{overlay}: a drain keeps one {label} pod"
        spread = pod_spec(d)["topologySpreadConstraints"][0]
        assert spread["topologyKey"] == "kubernetes.io/hostname" and spread["labelSelector"]["matchLabels"] == {
            "app.kubernetes.io/name": label
        }


def test_prod_fails_a_shares_over_from_qmt_to_tdx_to_yahoo_and_the_setting_loads() -> None:
    env = named(rendered("prod"), "ConfigMap", "argus-env")["data"]
    cfg = build_config(None, env, {})  # what every pod's config loader makes of argus-env
    assert cfg.failover.markets == {"SH,SZ,BJ": ["qmt", "tdx", "yahoo"]}
    assert cfg.failover.recover_after == 60
    assert "ARGUS_FAILOVER" not in named(rendered("dev"), "ConfigMap", "argus-env")["data"], "dev: one source"
