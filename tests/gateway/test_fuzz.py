"""Fuzz (issue 10, deliverable 5): generated JSON and MessagePack messages against a real gateway.

Whatever arrives, the gateway answers and carries on: no 1011 (no close at all here: auth is off and
the rate limit is raised), no traceback in its log, a well-formed client served throughout, memory
bounded. Every message is followed by a HEARTBEAT probe, so each one is known to have been handled.
"""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from probes import log_problems, rss_mb
from wsclient import Client

TYPES = ["SUBSCRIBE", "UNSUBSCRIBE", "SUBSCRIPTIONS", "HEARTBEAT", "AUTH"]
KEYS = ["symbols", "data_types", "periods", "snapshot", "history", "resume", "token", "timestamp"]
WORDS = [
    "000001.SZ",
    "700.HK",
    "00700.HK",
    "aapl.US",
    "rb2501.SF",
    "quote",
    "kline",
    "tick",
    "trade",
    "1m",
    "1d",
    "day",
]

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=40)
    | st.sampled_from(WORDS)
)


def values(leaf: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.recursive(
        leaf,
        lambda children: (
            st.lists(children, max_size=6)
            | st.dictionaries(st.text(max_size=12) | st.sampled_from(KEYS), children, max_size=5)
        ),
        max_leaves=25,
    )


json_values = values(scalars)
ext = st.builds(msgspec.msgpack.Ext, st.integers(min_value=-128, max_value=127), st.binary(max_size=12))
msgpack_values = values(scalars | st.binary(max_size=20) | ext)


def requests(v: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    """SUBSCRIBE/UNSUBSCRIBE data close enough to valid that planning runs, with odd parts mixed in."""
    odd = st.lists(v, max_size=2) | st.dictionaries(st.text(max_size=3), v, max_size=2) | v
    item = st.sampled_from(WORDS) | st.text(max_size=12) | odd
    return st.fixed_dictionaries(
        {"symbols": st.lists(item, min_size=1, max_size=8)},
        optional={
            "data_types": st.lists(st.sampled_from(["quote", "tick", "kline", "trade", "depth"]) | v, max_size=5),
            "periods": st.lists(st.sampled_from(["1m", "5m", "1d", "7m"]) | v, max_size=4),
            "snapshot": st.booleans() | v,
            "history": st.integers(min_value=0, max_value=3000) | st.just("day") | v,
            "resume": st.dictionaries(
                st.sampled_from(["quote:000001.SZ", "kline:000001.SZ:1m"]) | st.text(max_size=20),
                st.integers(min_value=-5, max_value=2**63) | v,
                max_size=3,
            ),
        },
    )


def envelopes(v: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly requests of known types with generated data; sometimes anything at all."""
    data = requests(v) | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=8), v, max_size=6) | v
    known = st.fixed_dictionaries({"type": st.sampled_from(TYPES), "data": data}, optional={"id": v, "timestamp": v})
    odd = st.fixed_dictionaries({"type": v}, optional={"data": data, "id": v})
    return st.one_of(known, known, known, odd, v)


def as_json(obj: Any) -> str | None:
    try:
        return json.dumps(obj, allow_nan=True)  # NaN and Infinity are not JSON: the gateway must say so
    except (TypeError, ValueError, OverflowError):
        return None


def as_msgpack(obj: Any) -> bytes | None:
    try:
        return msgspec.msgpack.encode(obj)
    except OverflowError:  # MessagePack has no integers past 64 bits
        return None


json_messages = envelopes(json_values).map(lambda o: ("json", as_json(o)))
msgpack_messages = envelopes(msgpack_values).map(lambda o: ("msgpack", as_msgpack(o)))
messages = st.one_of(
    json_messages,
    json_messages,
    msgpack_messages,
    msgpack_messages,
    st.text(max_size=200).map(lambda t: ("json", t)),
    st.binary(max_size=200).map(lambda b: ("msgpack", b)),
    st.binary(max_size=200).map(lambda b: ("json-binary", b)),  # binary frames on a JSON connection
)


class Fuzzer:
    def __init__(self, port: int) -> None:
        self.port = port
        self.clients: dict[str, Client] = {}
        self.normal: Client | None = None
        self.n = 0

    async def client(self, kind: str) -> Client:
        c = self.clients.get(kind)
        if c is None:
            c = self.clients[kind] = await Client.connect(
                self.port, "/?encoding=msgpack" if kind == "msgpack" else "/", binary=kind == "msgpack"
            )
            await c.expect("WELCOME")
        return c

    async def send(self, kind: str, payload: str | bytes) -> None:
        self.n += 1
        c = await self.client("msgpack" if kind == "msgpack" else "json")
        if isinstance(payload, bytes):
            await c.ws.send_bytes(payload)
        else:
            await c.ws.send_str(payload)
        probe = f"probe-{self.n}"
        await c.send("HEARTBEAT", id=probe)
        while True:
            msg = await c.recv(timeout=10)  # a close raises ConnectionError: the test fails there
            if msg["type"] == "ERROR":
                assert msg["data"]["code"] != "INTERNAL", msg
            if msg["type"] == "HEARTBEAT" and msg.get("id") == probe:
                break
        c.seen.clear()
        if self.n % 25 == 0:
            await self.check_normal()

    async def check_normal(self) -> None:
        if self.normal is None:
            self.normal = await Client.connect(self.port)
            await self.normal.subscribe(["600000.SH"])
        await self.normal.send("SUBSCRIPTIONS", id="ok")
        reply = await self.normal.expect("SUBSCRIPTIONS", timeout=2)
        assert reply["data"]["streams"] == ["quote:600000.SH"]
        self.normal.seen.clear()

    async def close(self) -> None:
        for c in [*self.clients.values(), *([self.normal] if self.normal else [])]:
            await c.close()


@pytest.fixture
async def fuzzer(gateway: Any, procs: list[Any]) -> Any:
    """One gateway for every example; afterwards its log and memory are checked."""
    port, _ = gateway(config={"server": {"max_messages_per_second": 5000, "rate_limit_burst": 5000}})
    f = Fuzzer(port)
    await f.check_normal()
    before = rss_mb(procs[-1])
    yield f
    await f.check_normal()
    assert f.n >= 300, f"only {f.n} messages were sent"
    assert log_problems(procs[-1]) == []
    assert rss_mb(procs[-1]) - before < 50, "memory grew past 50 MB"
    await f.close()


@settings(
    max_examples=1000,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(message=messages)
async def test_generated_messages_never_crash_the_gateway(fuzzer: Fuzzer, message: tuple[str, Any]) -> None:
    kind, payload = message
    if payload is None:
        payload = "{}"  # not encodable as generated: an envelope without a type instead
    await fuzzer.send(kind, payload)
