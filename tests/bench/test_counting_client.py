"""The bench's counting client counts exactly, however the byte stream is cut into reads."""

from __future__ import annotations

import random
import time

import msgspec
import orjson
import pytest

from bench.counting import CountingClient, Initial


class _Counter:
    def __init__(self) -> None:
        self.counting = True
        self.bytes = 0
        self.messages = 0
        self.sample_every = 7
        self.latencies_us: list[int] = []


def _stream(binary: bool) -> bytes:
    now = time.time_ns() // 1000

    def data(**flags: bool) -> dict[str, object]:
        return {"type": "DATA", "data": {"symbol": "000001.SZ", "seq": 1, **flags, "ts": now}}

    encode = msgspec.msgpack.encode if binary else orjson.dumps
    snap, both, live = encode(data(snapshot=True)), encode(data(snapshot=True, replay=True)), encode(data())
    # the subscribe's answer (3 snapshots, 2 replayed snapshots, REPLAYED), live data, a late
    # resend's snapshot in the middle of it, more live data
    return snap * 3 + both * 2 + encode({"type": "REPLAYED", "data": {}}) + live * 300 + snap + live * 200


@pytest.mark.parametrize("binary", [False, True], ids=["json", "msgpack"])
async def test_live_frames_are_counted_exactly_whatever_the_reads_split(binary: bool) -> None:
    # async: the client makes its handshake future on the running loop
    stream = _stream(binary)
    for trial in range(200):
        counter = _Counter()
        initial = Initial(want_snapshots=5, want_replayed=1)
        client = CountingClient(counter, "h", "/", [], binary, initial, defer=True)
        client.ready.set_result(True)  # past the handshake: what follows is the WebSocket stream
        rnd = random.Random(trial)
        pos = 0
        while pos < len(stream):  # markers and flags cut at every kind of place
            k = rnd.choice([1, 2, 5, 13, 27, 30, 100, 1000, 4096])
            client.data_received(stream[pos : pos + k])
            pos += k
        assert (initial.snapshots, initial.replayed) == (5, 1) and initial.at > 0, trial
        assert counter.messages == 500, f"reads cut as in trial {trial}: {counter.messages} live frames counted"
        assert counter.latencies_us and all(0 <= us < 60_000_000 for us in counter.latencies_us)
