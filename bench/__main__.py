"""`make bench [SCENARIO=name]`: run the scenarios, print a table, write JSON to bench/results/."""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from . import columnfloor, connfloor, loadgen, quotefloor, sendfloor
from .ablate import ABLATIONS
from .procstat import rss_kb
from .scenarios import KNEE_RATES, SCENARIOS, Scenario
from .stack import YARDSTICK, Stack, Yardstick, gateway_counter

RESULTS = Path(__file__).parent / "results"


def cores() -> tuple[int | None, int | None]:
    """(the service's core, the load generator's core): 0 and 1, or no pinning on a one-CPU machine."""
    return (0, 1) if (os.cpu_count() or 1) >= 2 else (None, None)


def symbols_for(s: Scenario) -> list[list[str]]:
    universe = [f"{i:06d}.SZ" for i in range(1, s.universe + 1)]
    if s.hot:
        return [universe[: s.symbols_per_client] for _ in range(s.clients)]
    return [
        [universe[(c * s.symbols_per_client + j) % s.universe] for j in range(s.symbols_per_client)]
        for c in range(s.clients)
    ]


def waits_for(s: Scenario) -> tuple[int, int]:
    """(snapshots, REPLAYEDs) a client gets for its SUBSCRIBEs when every stream has data."""
    snapshots = replayed = 0
    for r in s.requests:
        types = r.get("data_types", ["quote"])
        if r.get("history"):
            replayed += 1
            snapshots += s.symbols_per_client if "quote" in types else 0  # a replayed quote is its snapshot
        elif s.snapshot:
            snapshots += s.symbols_per_client * sum(len(r.get("periods", ["1m"])) if t == "kline" else 1 for t in types)
    return snapshots, replayed


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
    yardstick: bool = False,
    profile: Path | None = None,
    mock_env: dict[str, str] | None = None,
) -> dict[str, Any]:
    duration = duration or s.duration
    stack_core, load_core = cores()
    stack = (Yardstick if yardstick else Stack)(
        s.rate,
        s.universe,
        s.clients,
        stack_core,
        deflate=s.deflate,
        gateway_env=gateway_env,
        mock_env={**s.mock_env, **(mock_env or {})},
        ablate=ablate,
    )
    stack.start()
    try:
        pid = stack.gateway.pid
        base_rss = rss_kb(pid)
        parent, child = mp.Pipe()
        if sample_every is None:
            sample_every = max(1, int(s.offered // 2000))  # ~2000 latency samples per second
        plans = [s.subscribes(syms) for syms in symbols_for(s)]
        proc = mp.Process(
            target=loadgen.main,
            args=(
                f"ws://127.0.0.1:{stack.ws_port}/" + (f"?{s.query}" if s.query else ""),
                plans,
                waits_for(s),
                s.burst,
                5.0 if s.burst else 3.0,  # a wave is measured from 5 s after its last SUBSCRIBE
                duration,
                sample_every,
                load_core,
                child,
                s.deflate,
            ),
        )
        proc.start()
        signal = parent.recv() if parent.poll(600) else None
        rss_connected = base_rss
        spies: list[subprocess.Popen[bytes]] = []
        if signal == "connected":  # a burst: everyone is connected, the wave of SUBSCRIBEs follows
            rss_connected = rss_kb(pid)
            if profile is not None:  # a burst's profile covers its wave too
                spies = _profile(stack.named, profile, s.name, duration + 10)
            signal = parent.recv() if parent.poll(600) else None
        if signal != "counting":
            raise RuntimeError("load generator did not start counting")
        writes0 = gateway_counter(stack.metrics_port, "websocket_writes_total")
        store0 = gateway_counter(stack.metrics_port, "gateway_store_calls_total")
        events0 = gateway_counter(stack.mock_metrics_port, "ingestor_events_published_total")
        cpus0, t0 = stack.cpu_seconds(), time.monotonic()
        if profile is not None and not spies:
            spies = _profile(stack.named, profile, s.name, duration)
        rss_loaded = rss_kb(pid)
        if not parent.poll(duration + 120):
            raise RuntimeError("load generator gave no result")
        cpus1, t1 = stack.cpu_seconds(), time.monotonic()
        writes1 = gateway_counter(stack.metrics_port, "websocket_writes_total")
        events = gateway_counter(stack.mock_metrics_port, "ingestor_events_published_total") - events0
        store_calls = gateway_counter(stack.metrics_port, "gateway_store_calls_total")
        store_streams = gateway_counter(stack.metrics_port, "gateway_store_requests_total")
        result = parent.recv()
        proc.join(30)
        for spy in spies:
            spy.wait(60)
        peak_rss = rss_kb(pid, "VmHWM")
    finally:
        stack.stop()
    lat = sorted(result["latencies_us"])
    delivered = result["messages"] / result["elapsed"]
    ready = result["ready_s"]
    cpu_pct = {name: round(100 * (cpus1[name] - cpus0[name]) / (t1 - t0), 1) for name in cpus0}
    gw_cpu = cpus1["gateway"] - cpus0["gateway"]
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
        "gateway_cpu_pct": cpu_pct["gateway"],
        "cpu_pct": cpu_pct,  # every process of the stack, over the measuring window
        "gateway_writes_per_s": round((writes1 - writes0) / (t1 - t0)),
        "cpu_us_per_message": round(1e6 * gw_cpu / max(1, result["messages"]), 2),
        "mock_events_per_s": round(events / (t1 - t0)),
        "mock_cpu_us_per_event": round(1e6 * (cpus1["mock"] - cpus0["mock"]) / events, 1) if events else None,
        "bytes_per_message": round(result.get("bytes", 0) / max(1, result["messages"])) or None,
        "gateway_peak_rss_mb": round(peak_rss / 1024, 1),
        "rss_per_connection_kb": round((rss_loaded - base_rss) / max(1, result["connected"]), 1),
        "rss_connected_mb": round(rss_connected / 1024, 1),
        "duration_s": round(result["elapsed"], 1),
        "subscribe_wave_s": round(result["subscribe_s"], 3),
        "ready_clients": len(ready),
        "ready_waiting": result["waiting"],
        "ready_p50_s": _quantile(ready, 0.5),
        "ready_p99_s": _quantile(ready, 0.99),
        "ready_max_s": round(ready[-1], 3) if ready else None,
        "ready_within_3s_pct": round(100 * sum(1 for r in ready if r <= 3.0) / max(1, result["connected"]), 2),
        "store_streams": store_streams,
        "store_calls": store_calls,
        "store_calls_in_window": store_calls - store0,
    }


def _profile(pids: dict[str, int], into: Path, scenario: str, seconds: float) -> list[subprocess.Popen[bytes]]:
    """py-spy (on the load generator's core) on the gateway and the mock over the measuring window."""
    into.mkdir(parents=True, exist_ok=True)
    spy = str(Path(sys.executable).parent / "py-spy")
    load_core = cores()[1]
    out = []
    for name in ("gateway", "mock"):
        argv = [spy, "record", "-p", str(pids[name]), "-d", str(int(seconds)), "-r", "200", "--nonblocking"]
        argv += ["-f", "raw", "-o", str(into / f"{scenario}-{name}.txt")]
        out.append(
            subprocess.Popen(
                argv,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                preexec_fn=(lambda: os.sched_setaffinity(0, {load_core})) if load_core is not None else None,
            )
        )
    return out


def top_frames(raw: Path, n: int = 12) -> list[tuple[float, float, str]]:
    """(self %, inclusive %, frame) of the busiest frames of a py-spy raw (collapsed stacks) file."""
    own: dict[str, int] = {}
    incl: dict[str, int] = {}
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = stack.split(";")
        total += int(count)
        own[frames[-1]] = own.get(frames[-1], 0) + int(count)
        for f in set(frames):
            incl[f] = incl.get(f, 0) + int(count)
    ranked = sorted(own, key=lambda f: -own[f])[:n]
    return [(round(100 * own[f] / max(1, total), 1), round(100 * incl[f] / max(1, total), 1), f) for f in ranked]


COMPARED = ("seed", "heavy", "hot", "wide")  # run beside the yardstick under the same load
YARDSTICK_KEYS = (
    "delivered_pct", "p50_ms", "p99_ms", "gateway_cpu_pct", "cpu_us_per_message", "send_floor_us_per_message",
    "bytes_per_message", "gateway_writes_per_s"
)  # fmt: skip


def with_floor(r: dict[str, Any], us_per_send: float) -> dict[str, Any]:
    """The CPU per delivered message its writes alone cost at the host's floor (sendfloor.py); None
    for the yardstick, which counts no writes."""
    writes = r["gateway_writes_per_s"]
    r["send_floor_us_per_message"] = round(writes * us_per_send / max(1, r["delivered_per_s"]), 2) if writes else None
    return r


def _quantile(sorted_s: list[float], q: float) -> float | None:
    return round(sorted_s[min(len(sorted_s) - 1, int(q * len(sorted_s)))], 3) if sorted_s else None


def knee(duration: float, gateway_env: dict[str, str] | None = None, us_per_send: float = 0.0) -> dict[str, Any]:
    """Raise the seed scenario's rate until p99 > 100 ms or delivery < 99 %."""
    base = SCENARIOS["seed"]
    steps = []
    for rate in KNEE_RATES:
        r = run(
            Scenario("knee", base.clients, base.symbols_per_client, base.universe, rate), duration, None, gateway_env
        )
        steps.append(with_floor(r, us_per_send))
        print(row(r), flush=True)
        if (r["p99_ms"] or 0) > 100 or r["delivered_pct"] < 99:
            return {"scenario": "knee", "knee_rate": rate, "knee_offered_per_s": r["offered_per_s"], "steps": steps}
    return {"scenario": "knee", "knee_rate": None, "note": f"no knee up to rate {KNEE_RATES[-1]}", "steps": steps}


HEADER = "| scenario | clients | offered/s | delivered/s | delivered | p50 ms | p99 ms | p99.9 ms | CPU gateway / mock / nats | CPU µs/msg | of it, sends' floor | mock µs/event | B/msg | writes/s | peak RSS | RSS/conn | subscribed → ready p99 / max s |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"


def row(r: dict[str, Any]) -> str:
    cpu = r.get("cpu_pct", {})
    return (
        f"| {r['scenario']} (rate {r['rate']:g}){' ' + r['ablation'] if r.get('ablation') else ''} | {r['connected']}/{r['clients']} | {r['offered_per_s']:,} | {r['delivered_per_s']:,} | "
        f"{r['delivered_pct']}% | {r['p50_ms']} | {r['p99_ms']} | {r['p999_ms']} | "
        f"{cpu.get('gateway')}% / {cpu.get('mock')}% / {cpu.get('nats')}% | "
        f"{r['cpu_us_per_message']} | {r.get('send_floor_us_per_message')} | {r.get('mock_cpu_us_per_event')} | {r.get('bytes_per_message')} | {r['gateway_writes_per_s']:,} | "
        f"{r['gateway_peak_rss_mb']} MB | {r['rss_per_connection_kb']} KB | "
        f"{r['ready_p99_s']} / {r['ready_max_s']} ({r['ready_within_3s_pct']}% ≤ 3 s) |"
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
    p.add_argument(
        "--mock-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="environment for the mock, over the scenario's (e.g. MOCK_STEPS=50)",
    )
    p.add_argument("--ablate", choices=sorted(ABLATIONS), help="run the gateway with one technique undone")
    p.add_argument("--profile", type=Path, metavar="DIR", help="py-spy the gateway and the mock into DIR (svg, raw)")
    p.add_argument(
        "--no-yardstick", action="store_true", help="skip the yardstick runs beside seed, heavy, hot and wide"
    )
    args = p.parse_args()
    gw_env = dict(item.split("=", 1) for item in args.gateway_env)
    mock_env = dict(item.split("=", 1) for item in args.mock_env)
    names = [args.scenario] if args.scenario else [*SCENARIOS, "knee"]
    RESULTS.mkdir(exist_ok=True)
    info = machine()
    print(f"machine: {info['cpus']} CPUs, {info['cpu_model']}, Python {info['python']}\n")
    stack_core, load_core = cores()
    floor = sendfloor.measure(send_core=stack_core, read_core=load_core)
    info["send_floor"] = floor
    print(
        f"send floor: {floor['us_per_send']} µs of CPU per send() ({floor['sockets']:,} loopback sockets, "
        f"{floor['size']:,} B, {floor['sends_per_s']:,}/s, a reader on the other core; bench/sendfloor.py)\n"
    )
    quotes = info["quote_floor"] = quotefloor.measure(core=stack_core)
    print(
        f"quote floor: {quotes['us_per_quote_back_to_back']} µs of CPU per quote back to back, "
        f"{quotes['us_per_quote_paced']} at {quotes['steps_per_s']} steps a second of {quotes['per_step']} "
        "(a QuoteEvent built from ready numbers, encoded, added to a PUB batch, nothing else; bench/quotefloor.py)\n"
    )
    columns = info["column_floor"] = columnfloor.measure(core=stack_core)
    print(
        f"column floor: {columns['us_per_quote_back_to_back']} µs back to back, {columns['us_per_quote_paced']} "
        "paced (the runner's block path: a step's quotes as one QuoteBlock, a seq each, the PUBs written as "
        "numpy records with no object per quote; bench/columnfloor.py)\n"
    )
    if {"wide", "stampede"} & set(names):  # what a socket costs before Argus holds anything for it
        many = SCENARIOS["wide"].clients
        held = info["connection_floor"] = [
            connfloor.measure(mode, many, core=stack_core, client_core=load_core) for mode in ("aiohttp", "protocol")
        ]
        print(
            f"connection floor: {held[0]['kb_per_connection']} KB of RSS per open aiohttp WebSocket, "
            f"{held[1]['kb_per_connection']} KB per bare asyncio protocol ({many:,} sockets, a frame a second "
            "each, nothing else; bench/connfloor.py)\n"
        )
    us_per_send = floor["us_per_send"]
    print(HEADER, flush=True)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    for name in names:
        if name == "knee":
            result = knee(args.duration or 10.0, gw_env, us_per_send)
        else:
            result = run(
                SCENARIOS[name], args.duration, None, gw_env, args.ablate, profile=args.profile, mock_env=mock_env
            )
            with_floor(result, us_per_send)
            if name in COMPARED and not args.no_yardstick and YARDSTICK.exists():
                print(row(result), flush=True)
                ys = with_floor(run(SCENARIOS[name], args.duration, None, None, None, yardstick=True), us_per_send)
                ys["scenario"] = f"{name} yardstick"
                result["yardstick"] = {k: ys[k] for k in YARDSTICK_KEYS}
                result["cpu_per_message_vs_yardstick"] = round(
                    result["cpu_us_per_message"] / max(0.01, ys["cpu_us_per_message"]), 2
                )
                result = {**result, "_row": row(ys)}
        if name != "knee":
            if "_row" in result:
                print(result.pop("_row"), flush=True)
            else:
                print(row(result), flush=True)
        else:
            print(f"knee: {result.get('knee_rate') or result.get('note')}", flush=True)
        if args.profile is not None and name != "knee":
            for proc_name in ("gateway", "mock"):
                raw = args.profile / f"{name}-{proc_name}.txt"
                if raw.exists():
                    print(f"\n{name}: {proc_name}, busiest frames (self % / incl. %):")
                    for own, incl, frame in top_frames(raw):
                        print(f"  {own:5.1f} {incl:5.1f}  {frame}")
        (RESULTS / f"{name}-{stamp}.json").write_text(json.dumps({"machine": info, **result}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
