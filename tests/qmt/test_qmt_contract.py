"""Contract test: the QMT source against the real wheel's `xtdata.py`, only its native module shimmed.

The xtquant wheel installs on Linux, but `xtquant/__init__.py` makes a network call and the RPC
client is a Windows `.pyd`. This test loads the wheel's own `xtdata.py`, `xtconn.py`,
`xtdatacenter.py` and vendored BSON as they are, replacing only `xtquant.datacenter` (the native
RPC module) with a stand-in that speaks its calling convention: BSON-encoded requests, BSON
bytes pushed to callbacks, JSON from get_full_tick. So the real wrappers decode, the real
`connect` walks its address list, and the source calls the real function signatures.

It needs the wheel's files: an installed `xtquant` (`pip install argus-ingestor-qmt[qmt]`), or
XTQUANT_DIR pointing at an unpacked wheel (the directory holding `xtquant/`). Skipped otherwise.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import json
import os
import sys
import threading
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from qmt_fake_xtdata import bar, l2, ms, tick
from qmt_kit import DAY, Harness


def _wheel_dir() -> Path | None:
    env = os.environ.get("XTQUANT_DIR")
    if env and (Path(env) / "xtquant" / "xtdata.py").exists():
        return Path(env) / "xtquant"
    spec = importlib.util.find_spec("xtquant")  # finds, does not import (no network call)
    if spec is not None and spec.submodule_search_locations:
        d = Path(next(iter(spec.submodule_search_locations)))
        if (d / "xtdata.py").exists():
            return d
    return None


WHEEL = _wheel_dir()
pytestmark = pytest.mark.skipif(WHEEL is None, reason="needs the xtquant wheel's files (XTQUANT_DIR or [qmt] extra)")


class NativeClient:
    """Stands in for datacenter.IPythonApiClient: the calls xtdata/xtconn make, in their shapes."""

    running = True
    instances: list[NativeClient] = []

    def __init__(self) -> None:
        self.addr = ""
        self.connected = False
        self.callbacks: dict[str, Any] = {}
        self.subs: dict[int, tuple[str, Any, Any]] = {}
        self.seq = 0
        self.full_tick: dict[str, dict[str, Any]] = {}
        self.lock = threading.Lock()
        NativeClient.instances.append(self)

    # connection
    def init(self) -> None: ...

    def load_config(self, path: str, section: str) -> int:
        return 0

    def set_config_addr(self, addr: str) -> None:
        self.addr = addr

    def registerCommonControlCallback(self, name: str, cb: Any) -> None:
        self.callbacks[name] = cb

    def connect(self) -> tuple[int, str]:
        if not NativeClient.running:
            return -1, "connect refused"
        self.connected = True
        return 0, ""

    def is_connected(self) -> bool:
        return self.connected

    def shutdown(self) -> None:
        self.connected = False

    def get_data_dir(self) -> str:
        return "/nonexistent/datadir"

    def get_app_dir(self) -> str:
        return "/nonexistent"

    def commonControl(self, func: str, param: bytes) -> bytes:
        return self.bson.BSON.encode({})

    # quotes
    def subscribe_quote(self, meta: bytes, region: bytes, param: bytes, callback: Any) -> int:
        m = self.bson.BSON.decode(meta)
        with self.lock:
            self.seq += 1
            self.subs[self.seq] = (m["period"], m["stockCode"], callback)
            return self.seq

    def subscribe_whole_quote(self, code_list: list[str], param: bytes, callback: Any) -> int:
        with self.lock:
            self.seq += 1
            self.subs[self.seq] = ("whole", list(code_list), callback)
            return self.seq

    def unsubscribe_quote(self, seq: int) -> None:
        self.subs.pop(seq, None)

    def get_full_tick(self, code_list: list[str]) -> str:
        if not self.connected:
            raise RuntimeError("disconnected")
        return json.dumps({c: r for c, r in self.full_tick.items() if c in code_list})

    # test side: push BSON bytes from a separate thread, as the native client does
    def push(self, period: str, datas: dict[str, Any]) -> None:
        for p, _target, cb in list(self.subs.values()):
            if p == period and cb is not None:
                payload = bytes(self.bson.BSON.encode(datas))  # plain bytes, as the native client hands them
                t = threading.Thread(target=cb, args=(payload,))
                t.start()
                t.join()

    def drop(self) -> None:
        self.connected = False
        cb = self.callbacks.get("watchxtquantstatus")
        if cb is not None:
            cb(bytes(self.bson.BSON.encode({"address": self.addr, "status": "disconnected"})))


@pytest.fixture
def real_xtdata() -> Iterator[types.ModuleType]:
    assert WHEEL is not None
    saved = {k: v for k, v in sys.modules.items() if k == "xtquant" or k.startswith("xtquant.")}
    for k in saved:
        del sys.modules[k]
    pkg = types.ModuleType("xtquant")
    pkg.__path__ = [str(WHEEL)]  # the real package directory, without running its __init__
    native = types.ModuleType("xtquant.datacenter")
    native.rpc_init = lambda config_dir: 0  # type: ignore[attr-defined]
    native.get_local_server_port = lambda: 0  # type: ignore[attr-defined]
    native.register_create_nparray = lambda fn: None  # type: ignore[attr-defined]
    native.IPythonApiClient = NativeClient  # type: ignore[attr-defined]
    sys.modules["xtquant"] = pkg
    sys.modules["xtquant.datacenter"] = native
    NativeClient.instances = []
    NativeClient.running = True
    try:
        xtdata = importlib.import_module("xtquant.xtdata")
        NativeClient.bson = importlib.import_module("xtquant.xtbson")  # type: ignore[attr-defined]
        yield xtdata
    finally:
        for k in [k for k in sys.modules if k == "xtquant" or k.startswith("xtquant.")]:
            del sys.modules[k]
        sys.modules.update(saved)


def test_the_functions_the_source_calls_exist_with_those_parameters(real_xtdata: types.ModuleType) -> None:
    def params(name: str) -> list[str]:
        return list(inspect.signature(getattr(real_xtdata, name)).parameters)

    assert params("connect")[:2] == ["ip", "port"]
    assert {"stock_code", "period", "count", "callback"} <= set(params("subscribe_quote"))
    assert params("subscribe_whole_quote") == ["code_list", "callback"]
    assert params("unsubscribe_quote") == ["seq"]
    assert params("get_full_tick") == ["code_list"]
    assert params("watch_xtquant_status") == ["callback"]
    assert {"field_list", "stock_list", "period", "count"} <= set(params("get_market_data_ex"))
    assert hasattr(real_xtdata, "enable_hello")


async def test_source_on_the_real_xtdata_module(real_xtdata: types.ModuleType) -> None:
    t0 = ms(DAY, "10:00:03")
    async with Harness(real_xtdata, port=58610, level2=True, whole_quote_threshold=0) as h:  # type: ignore[arg-type]
        h.want(("quote", "000001.SZ"), ("kline", "000001.SZ", "1m"), ("trade", "000001.SZ"))
        await h.until(lambda: h.source.connected and len(h.source.subs) == 3)
        client = NativeClient.instances[-1]
        assert client.addr == "127.0.0.1:58610" and "watchxtquantstatus" in client.callbacks
        assert sorted(str(p) for p, _, _ in client.subs.values()) == ["1m", "l2transaction", "whole"]
        client.push("whole", {"000001.SZ": tick(t0, 10.5), "000002.SZ": tick(t0, 7.0)})
        client.push("1m", {"000001.SZ": [bar(ms(DAY, "10:01:00"), 10.4, 10.5, 10.4, 10.5, 100)]})
        client.push("l2transaction", {"000001.SZ": [l2(t0, 10.5, 300, 1, 1), l2(t0, 0.0, 100, 3, 2)]})
        await h.until(lambda: h.of("quote") and h.of("kline") and h.of("trade"))
        assert h.of("quote")[0].volume == 75861300 and [t.trade_id for t in h.of("trade")] == ["20250815-1"]
        assert h.of("kline")[0].open_time == "2025-08-15T10:00:00+08:00"
        # MiniQMT goes away: xtquant's status callback (BSON through the real wrapper) says so
        NativeClient.running = False
        client.drop()
        await h.until(lambda: h.ctx.last()["state"] == "down")  # type: ignore[index]
        assert "disconnected" in h.ctx.last()["reason"]  # type: ignore[index]
        NativeClient.running = True
        await h.until(
            lambda: h.source.connected and len(h.source.subs) == 3 and NativeClient.instances[-1] is not client
        )
        assert len(NativeClient.instances[-1].subs) == 3  # resubscribed on the new connection
