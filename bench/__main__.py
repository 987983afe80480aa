"""`make bench [SCENARIO=name]`: run the scenarios, print a table, write JSON to bench/results/."""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

from . import loadgen
from .ablate import ABLATIONS
from .procstat import cpu_seconds, rss_kb
from .scenarios import KNEE_RATES, SCENARIOS, Scenario
from .stack import Stack, gateway_counter

RESULTS = Path(__file__).parent / "results"


def plans_for(s: Scenario) -> list[list[str]]:
    universe = [f"{i:06d}.SZ" for i in range(1, s.universe + 1)]
    if s.hot:
        return [universe[: s.symbols_per_client] for _ in range(s.clients)]
    return [
        [universe[(c * s.symbols_per_client + j) % s.universe] for j in range(s.symbols_per_client)]
        for c in range(s.clients)
    ]


def percentile(sorted_us: list[int], q: float) -> float | None:
    if not sorted_us:
        return None
    return round(sorted_us[min(len(sorted_us) - 1, int(q * len(sorted_us)))] / 1000.0, 2)


def run(
    s: Scenario,
    duration: float | None = None,
    sample_every: int | None = None,
    gateway_env: dict[str, str] | None = None,
    ablate: str | None = None,
) -> dict[str, Any]:
    duration = duration or s.duration
    two_cores = (os.cpu_count() or 1) >= 2
    stack = Stack(
        s.rate,
        s.universe,
        s.clients,
        0 if two_cores else None,
        deflate=s.deflate,
        gateway_env=gateway_env,
        ablate=ablate,
    )
    stack.start()
    try:
        pid = stack.gateway.pid
        base_rss = rss_kb(pid)
        parent, child = mp.Pipe()
        if sample_every is None:
            sample_every = max(1, int(s.offered // 2000))  # ~2000 latency samples per second
        proc = mp.Process(
            target=loadgen.main,
            args=(
                f"ws://127.0.0.1:{stack.ws_port}/" + (f"?{s.query}" if s.query else ""),
                plans_for(s),
                3.0,
                duration,
                sample_every,
                1 if two_cores else None,
                child,
                s.deflate,
            ),
        )
        proc.start()
        if not parent.poll(600) or parent.recv() != "counting":
            raise RuntimeError("load generator did not start counting")
        writes0 = gateway_counter(stack.metrics_port, "websocket_writes_total")
        cpu0, t0 = cpu_seconds(pid), time.monotonic()
        rss_loaded = rss_kb(pid)
        if not parent.poll(duration + 120):
            raise RuntimeError("load generator gave no result")
        cpu1, t1 = cpu_seconds(pid), time.monotonic()
        writes1 = gateway_counter(stack.metrics_port, "websocket_writes_total")
        result = parent.recv()
        proc.join(30)
        peak_rss = rss_kb(pid, "VmHWM")
    finally:
        stack.stop()
    lat = sorted(result["latencies_us"])
    delivered = result["messages"] / result["elapsed"]
    return {
        "scenario": s.name,
        "options": s.query + (" deflate" if s.deflate else ""),
        "gateway_env": gateway_env or {},
        "ablation": ablate,
        "client": result.get("client"),
        "clients": s.clients,
        "connected": result["connected"],
        "symbols_per_client": s.symbols_per_client,
        "universe": s.universe,
        "rate": s.rate,
        "offered_per_s": round(s.offered),
        "delivered_per_s": round(delivered),
        "delivered_pct": round(100 * delivered / s.offered, 2),
        "p50_ms": percentile(lat, 0.5),
        "p99_ms": percentile(lat, 0.99),
        "p999_ms": percentile(lat, 0.999),
        "latency_samples": len(lat),
        "seq_holes": result["holes"] if sample_every == 1 else None,
        "gateway_cpu_pct": round(100 * (cpu1 - cpu0) / (t1 - t0), 1),
        "gateway_writes_per_s": round((writes1 - writes0) / (t1 - t0)),
        "cpu_us_per_message": round(1e6 * (cpu1 - cpu0) / max(1, result["messages"]), 2),
        "gateway_peak_rss_mb": round(peak_rss / 1024, 1),
        "rss_per_connection_kb": round((rss_loaded - base_rss) / max(1, result["connected"]), 1),
        "duration_s": round(result["elapsed"], 1),
    }


def knee(duration: float, gateway_env: dict[str, str] | None = None) -> dict[str, Any]:
    """Raise the seed scenario's rate until p99 > 100 ms or delivery < 99 %."""
    base = SCENARIOS["seed"]
    steps = []
    for rate in KNEE_RATES:
        r = run(
            Scenario("knee", base.clients, base.symbols_per_client, base.universe, rate), duration, None, gateway_env
        )
        steps.append(r)
        print(row(r), flush=True)
        if (r["p99_ms"] or 0) > 100 or r["delivered_pct"] < 99:
            return {"scenario": "knee", "knee_rate": rate, "knee_offered_per_s": r["offered_per_s"], "steps": steps}
    return {"scenario": "knee", "knee_rate": None, "note": f"no knee up to rate {KNEE_RATES[-1]}", "steps": steps}


HEADER = "| scenario | clients | offered/s | delivered/s | delivered | p50 ms | p99 ms | p99.9 ms | gateway CPU | CPU µs/msg | writes/s | peak RSS | RSS/conn |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|"


def row(r: dict[str, Any]) -> str:
    return (
        f"| {r['scenario']} (rate {r['rate']:g}){' ' + r['ablation'] if r.get('ablation') else ''} | {r['connected']}/{r['clients']} | {r['offered_per_s']:,} | {r['delivered_per_s']:,} | "
        f"{r['delivered_pct']}% | {r['p50_ms']} | {r['p99_ms']} | {r['p999_ms']} | {r['gateway_cpu_pct']}% | "
        f"{r['cpu_us_per_message']} | {r['gateway_writes_per_s']:,} | "
        f"{r['gateway_peak_rss_mb']} MB | {r['rss_per_connection_kb']} KB |"
    )


def machine() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def main() -> int:
    p = argparse.ArgumentParser(prog="make bench", description=__doc__)
    p.add_argument("--scenario", choices=[*SCENARIOS, "knee"], help="run one scenario (default: all)")
    p.add_argument("--duration", type=float, help="seconds of measurement per scenario (default 30; knee steps 10)")
    p.add_argument(
        "--gateway-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="environment for the gateway, to measure a setting (e.g. WEBSOCKET_FLUSH_INTERVAL_MS=2)",
    )
    p.add_argument("--ablate", choices=sorted(ABLATIONS), help="run the gateway with one technique undone")
    args = p.parse_args()
    gw_env = dict(item.split("=", 1) for item in args.gateway_env)
    names = [args.scenario] if args.scenario else [*SCENARIOS, "knee"]
    RESULTS.mkdir(exist_ok=True)
    info = machine()
    print(f"machine: {info['cpus']} CPUs, {info['cpu_model']}, Python {info['python']}\n")
    print(HEADER, flush=True)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    for name in names:
        if name == "knee":
            result = knee(args.duration or 10.0, gw_env)
        else:
            result = run(SCENARIOS[name], args.duration, None, gw_env, args.ablate)
        if name != "knee":
            print(row(result), flush=True)
        else:
            print(f"knee: {result.get('knee_rate') or result.get('note')}", flush=True)
        (RESULTS / f"{name}-{stamp}.json").write_text(json.dumps({"machine": info, **result}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
