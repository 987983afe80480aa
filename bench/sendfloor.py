"""The floor under any fan-out on this host: CPU per `send()` on loopback, with no framework at all.

One process on the stack's core sends `size` bytes to each of `sockets` TCP connections in turn,
`rate` sends a second (TCP_NODELAY, as aiohttp sets it); one reader process on the load
generator's core drains them all, as the benchmark's clients do. The sender's CPU per send is what
the kernel charges a server for one write, whatever language wrote it (on loopback that includes
the segment's delivery and the reader's wake-up). A gateway's writes/s times this is CPU it cannot
save in Python: only fewer writes save it.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import selectors
import socket
import time
from multiprocessing.connection import Connection
from typing import Any

BATCH = 64  # sends between looks at the clock


def _drain(port: int, sockets: int, core: int | None, ready: Connection) -> None:
    if core is not None:
        os.sched_setaffinity(0, {core})
    conns = [socket.create_connection(("127.0.0.1", port)) for _ in range(sockets)]
    sel = selectors.DefaultSelector()
    for c in conns:
        c.setblocking(False)
        sel.register(c, selectors.EVENT_READ)
    ready.send("connected")
    while True:
        for key, _ in sel.select():
            try:
                if not key.fileobj.recv(1 << 16):  # type: ignore[union-attr]
                    return
            except BlockingIOError:
                pass


def measure(
    sockets: int = 1000,
    size: int = 2000,
    rate: float = 20_000,
    seconds: float = 5.0,
    send_core: int | None = 0,
    read_core: int | None = 1,
) -> dict[str, Any]:
    """µs of the sender's CPU per send, and the sends/s it reached."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(sockets)
    parent, child = mp.Pipe()
    reader = mp.get_context("fork").Process(
        target=_drain, args=(srv.getsockname()[1], sockets, read_core, child), daemon=True
    )
    reader.start()
    before = os.sched_getaffinity(0)
    conns: list[socket.socket] = []
    try:
        for _ in range(sockets):
            conns.append(srv.accept()[0])
        for c in conns:
            c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        parent.recv()
        if send_core is not None:
            os.sched_setaffinity(0, {send_core})
        payload = b"x" * size
        period = BATCH / rate
        sent = 0
        cpu0, t0 = time.thread_time(), time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            started = time.perf_counter()
            for _ in range(BATCH):
                conns[sent % sockets].send(payload)
                sent += 1
            left = period - (time.perf_counter() - started)
            if left > 0:
                time.sleep(left)
        cpu, elapsed = time.thread_time() - cpu0, time.perf_counter() - t0
    finally:
        os.sched_setaffinity(0, before)
        reader.kill()
        reader.join(5)
        for c in conns:
            c.close()
        srv.close()
    return {
        "sockets": sockets,
        "size": size,
        "sends_per_s": round(sent / elapsed),
        "us_per_send": round(1e6 * cpu / max(1, sent), 2),
    }


if __name__ == "__main__":
    for n, b in ((1000, 500), (1000, 3000), (10000, 500)):
        print(measure(n, b))
