"""One NATS subscription per subject against one wildcard per type (issue 16's lever, measured
before it is built): what each costs the subscriber and nats-server per event, and a subscribe wave.

nats-server and the subscriber share CPU 0, a publisher on CPU 1 sends real `QuoteEvent`s for
`symbols` codes in steps (20 a second, as the mock steps heavy). The subscriber does what the
gateway's dispatch does before the fan-out (decode, the topic's seq check), routed either by
natswire's sid look-up (`subjects`: one `subscribe_now` per subject, as the gateway runs) or by
subject (`wildcard`: one `quote.>` and a dict look-up of the subject; `wildcard-half`: the same
while only half the codes are held, so the other half arrive to be dropped).

    python -m bench.wildcard [--symbols 1000] [--rate 50000] [--duration 5] [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing as mp
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from multiprocessing.connection import Connection
from typing import Any

import nats
from argus_protocol import Quote, QuoteEvent, decode_event, encode_event_into
from argus_service.natswire import PubBatch, pub_prefix, publish_pubs, subscribe_now

from .procstat import cpu_seconds, rss_kb
from .stack import BIN, free_port, wait_port

MODES = ("subjects", "wildcard", "wildcard-half")
STEPS_PER_S = 20


def _names(symbols: int) -> list[str]:
    return [f"{i:06d}.SZ" for i in range(1, symbols + 1)]


def _subscriber(url: str, mode: str, symbols: int, pipe: Connection) -> None:
    os.sched_setaffinity(0, {0})
    import uvloop

    async def main() -> None:
        nc = await nats.connect(url)
        names = _names(symbols)
        held = names[::2] if mode == "wildcard-half" else names
        last = {f"quote.{s}": [0] for s in held}  # per topic: the last seq, as Topic.last_seq
        counts = {"events": 0, "gaps": 0, "dropped": 0}

        def on_event(seq_box: list[int], raw: bytes) -> None:
            event = decode_event(raw)
            if seq_box[0] and event.seq > seq_box[0] + 1:
                counts["gaps"] += 1
            seq_box[0] = event.seq
            counts["events"] += 1

        def by_subject(msg: Any) -> None:
            box = last.get(msg.subject)
            if box is None:
                counts["dropped"] += 1  # a code this gateway does not hold: the wildcard's waste
                return
            on_event(box, msg.data)

        wall, cpu = time.perf_counter(), time.process_time()
        if mode == "subjects":
            for subject, box in last.items():
                subscribe_now(nc, subject, lambda msg, box=box: on_event(box, msg.data))
        else:
            subscribe_now(nc, "quote.>", by_subject)
        await nc.flush()  # the server has every SUB
        pipe.send((time.perf_counter() - wall, time.process_time() - cpu, rss_kb(os.getpid())))
        loop = asyncio.get_running_loop()
        while await loop.run_in_executor(None, pipe.recv) == "count":
            pipe.send(dict(counts))
        await nc.close()

    uvloop.run(main())


def _publisher(url: str, symbols: int, rate: int, pipe: Connection) -> None:
    os.sched_setaffinity(0, {1})

    async def main() -> None:
        nc = await nats.connect(url)
        names = _names(symbols)
        prefixes = [pub_prefix(f"quote.{s}") for s in names]
        book = ([10.0, 9.99, 9.98, 9.97, 9.96], [100, 200, 300, 400, 500])
        per_step = max(1, rate // STEPS_PER_S)
        scratch = bytearray()
        seqs = [0] * symbols
        k = 0
        pipe.send("ready")
        loop = asyncio.get_running_loop()
        stop = loop.run_in_executor(None, pipe.recv)
        start = time.perf_counter()
        while not stop.done():
            batch = PubBatch()
            for _ in range(per_step):
                j = k % symbols
                k += 1
                seqs[j] += 1
                quote = Quote(10.0, 9.9, 10.1, 9.8, 9.95, 1000, 1e4, "2026-12-02T10:00:00.000+08:00", *book, *book)
                encode_event_into(QuoteEvent(symbol=names[j], source="bench", seq=seqs[j], ts=0, quote=quote), scratch)
                batch.add(prefixes[j], scratch)
            publish_pubs(nc, batch)
            await asyncio.sleep(max(0.0, start + k / rate - time.perf_counter()))
        await nc.flush()
        pipe.send(k)
        await nc.close()

    asyncio.run(main())


def run_mode(nats_pid: int, url: str, mode: str, symbols: int, rate: int, duration: float) -> dict[str, Any]:
    """One subscriber in `mode` for `duration` seconds of a publisher's `rate` events a second."""
    ctx = mp.get_context("spawn")
    sub_end, sub_child = ctx.Pipe()
    pub_end, pub_child = ctx.Pipe()
    sub = ctx.Process(target=_subscriber, args=(url, mode, symbols, sub_child), daemon=True)
    sub.start()
    wave_wall, wave_cpu, rss = sub_end.recv()
    pub = ctx.Process(target=_publisher, args=(url, symbols, rate, pub_child), daemon=True)
    pub.start()
    pub_end.recv()
    time.sleep(1.0)  # both warm
    assert sub.pid is not None
    sub_end.send("count")
    first = sub_end.recv()
    before = cpu_seconds(sub.pid), cpu_seconds(nats_pid)
    time.sleep(duration)
    after = cpu_seconds(sub.pid), cpu_seconds(nats_pid)
    sub_end.send("count")
    counts = sub_end.recv()
    pub_end.send("stop")
    published = pub_end.recv()
    sub_end.send("stop")
    sub.join(10)
    pub.join(10)
    received = sum(counts[k] - first[k] for k in ("events", "dropped"))
    return {
        "mode": mode,
        "symbols": symbols,
        "subscribe_wave_ms": round(1000 * wave_wall, 1),
        "subscribe_wave_cpu_ms": round(1000 * wave_cpu, 1),
        "subscriber_rss_mb": round(rss / 1024, 1),
        "us_per_msg_subscriber": round(1e6 * (after[0] - before[0]) / received, 2),
        "us_per_msg_nats": round(1e6 * (after[1] - before[1]) / received, 2),
        "received_per_s": round(received / duration),
        "published": published,
        "events": counts["events"],
        "dropped": counts["dropped"],
        "gaps": counts["gaps"],
    }


@contextlib.contextmanager
def nats_server() -> Iterator[tuple[int, str]]:
    """A plain nats-server on CPU 0: its pid and URL."""
    port = free_port()
    nats_bin = shutil.which("nats-server", path=str(BIN)) or "nats-server"
    server = subprocess.Popen(
        ["taskset", "-c", "0", nats_bin, "-a", "127.0.0.1", "-p", str(port)], stderr=subprocess.DEVNULL
    )
    try:
        wait_port(port)
        yield server.pid, f"nats://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(10)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--symbols", type=int, default=1000)
    p.add_argument("--rate", type=int, default=50_000, help="events a second published")
    p.add_argument("--duration", type=float, default=5.0)
    p.add_argument("--rounds", type=int, default=2, help="the modes run alternately this many times")
    args = p.parse_args()
    with nats_server() as (pid, url):
        for _ in range(args.rounds):
            for mode in MODES:
                print(run_mode(pid, url, mode, args.symbols, args.rate, args.duration), flush=True)


if __name__ == "__main__":
    main()
