"""The alert rules and the Grafana dashboard: valid PromQL over metrics the services really export."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

import promql_parser
import pytest
import yaml
from manifests import ROOT
from stack import start_gateway, start_ingestor

OBS = ROOT / "deploy" / "observability"
RULES = OBS / "prometheus-rules.yaml"
DASHBOARD = OBS / "grafana-dashboard.json"
WANTED_ALERTS = {  # the list: sources down, NATS disconnected, gaps, latency p99, slow consumers, announce failures
    "ArgusSourceDown",
    "ArgusGatewayNatsDisconnected",
    "ArgusIngestorNatsDisconnected",
    "ArgusUpstreamGaps",
    "ArgusLatencyP99High",
    "ArgusSlowConsumers",
    "ArgusDemandAnnouncementsFailing",
}


def rule_exprs() -> dict[str, str]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return {r["alert"]: r["expr"] for g in groups for r in g["rules"]}


def dashboard_exprs() -> list[str]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [t["expr"] for p in panels for t in p.get("targets", [])]


def promtool() -> str | None:
    for candidate in (os.environ.get("PROMTOOL"), str(ROOT / ".run" / "prometheus" / "usr" / "bin" / "promtool")):
        if candidate and Path(candidate).exists():
            return candidate
    return shutil.which("promtool")


def test_every_wanted_alert_exists_with_severity_and_text() -> None:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    rules = {r["alert"]: r for g in groups for r in g["rules"]}
    assert WANTED_ALERTS <= set(rules)
    for name, rule in rules.items():
        assert rule["labels"]["severity"] in ("critical", "warning", "info"), name
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], name


@pytest.mark.parametrize("expr", [*rule_exprs().values(), *dashboard_exprs()])
def test_every_expression_is_valid_promql(expr: str) -> None:
    try:
        promql_parser.parse(expr)
    except Exception as e:  # noqa: BLE001 - the parser's own error text is the message
        raise AssertionError(f"{expr!r}: {e}") from None


def test_rules_pass_promtool_check_and_their_unit_tests() -> None:
    tool = promtool()
    if tool is None:
        pytest.skip("NOT CHECKED: promtool not found (make test unpacks it from Debian's prometheus package)")
    check = subprocess.run([tool, "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr
    unit = subprocess.run(
        [tool, "test", "rules", "prometheus-rules.test.yaml"], cwd=OBS, capture_output=True, text=True, timeout=60
    )
    assert unit.returncode == 0, unit.stdout + unit.stderr


def test_dashboard_is_importable_json() -> None:
    dash = json.loads(DASHBOARD.read_text())
    assert dash["uid"] and dash["title"] and dash["schemaVersion"] >= 36
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    assert {v["name"] for v in dash["templating"]["list"]} == {"datasource"}
    for p in dash["panels"]:
        if p["type"] != "row":
            assert p["datasource"]["uid"] == "${datasource}" and p["targets"], p["title"]


def exported_names(text: str) -> set[str]:
    names = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            name, kind = line.split()[2:4]
            names.add(name)
            if kind == "histogram":
                names |= {f"{name}_bucket", f"{name}_sum", f"{name}_count"}
    return names


def scrape(port: int) -> str:
    deadline = time.monotonic() + 15
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
                return r.read().decode()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_every_metric_named_is_one_a_service_exports(nats_url: str, tmp_path: Path) -> None:
    gw, _, gw_metrics = start_gateway(nats_url, tmp_path)
    ing, ing_metrics = start_ingestor("mock", nats_url, tmp_path, "--universe", "1", env={"ARGUS_LEASE_TTL": "2"})
    try:
        exported = exported_names(scrape(gw_metrics)) | exported_names(scrape(ing_metrics))
    finally:
        ing.stop()
        gw.stop()
    referenced = set()
    for expr in [*rule_exprs().values(), *dashboard_exprs()]:
        referenced |= set(re.findall(r"\b((?:websocket|gateway|ingestor)_[a-z_]+)\b", expr))
    missing = referenced - exported
    assert not missing, f"rules or dashboard use metrics no service exports: {sorted(missing)}"
