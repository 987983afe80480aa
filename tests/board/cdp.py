"""Debian's Chromium, headless, driven over the DevTools protocol (a WebSocket, spoken with aiohttp):
navigate, evaluate, type, click, screenshot. Page errors and console errors are kept, so a test
can assert the page ran without any."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",
    "--window-size=1360,900",
]


def chromium_binary() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


class PageError(AssertionError):
    pass


class Browser:
    def __init__(self) -> None:
        self.profile = tempfile.mkdtemp(prefix="argus-chromium-")
        self.proc: subprocess.Popen[bytes] | None = None
        self.http: aiohttp.ClientSession | None = None
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.errors: list[str] = []
        self.console: list[str] = []
        self._ids = itertools.count(1)
        self._calls: dict[int, asyncio.Future[Any]] = {}
        self._events: dict[str, list[asyncio.Future[Any]]] = {}
        self._reader: asyncio.Task[None] | None = None

    async def start(self) -> Browser:
        self.proc = self._launch()
        port_file = Path(self.profile) / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not (port_file.exists() and port_file.read_text().count("\n") >= 1):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("chromium did not start:\n" + (Path(self.profile) / "chromium.log").read_text())
            await asyncio.sleep(0.05)
        port = int(port_file.read_text().split()[0])
        self.http = aiohttp.ClientSession()
        async with self.http.get(f"http://127.0.0.1:{port}/json/list") as r:
            targets = await r.json(content_type=None)
        page = next(t for t in targets if t["type"] == "page")
        self.ws = await self.http.ws_connect(page["webSocketDebuggerUrl"], max_msg_size=0)
        self._reader = asyncio.create_task(self._read())
        for domain in ("Page", "Runtime"):
            await self.call(f"{domain}.enable")
        await self.call("Emulation.setDeviceMetricsOverride", width=1360, height=900, deviceScaleFactor=1, mobile=False)
        return self

    def _launch(self) -> subprocess.Popen[bytes]:
        binary = chromium_binary()
        assert binary, "chromium not installed"
        with open(Path(self.profile) / "chromium.log", "wb") as log:
            return subprocess.Popen(
                [binary, *FLAGS, f"--user-data-dir={self.profile}", "about:blank"], stdout=log, stderr=log
            )

    async def _read(self) -> None:
        assert self.ws is not None
        async for msg in self.ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                break
            m = json.loads(msg.data)
            if "id" in m:
                fut = self._calls.pop(m["id"], None)
                if fut is not None and not fut.done():
                    if "error" in m:
                        fut.set_exception(PageError(f"{m['error']}"))
                    else:
                        fut.set_result(m.get("result", {}))
                continue
            method, params = m.get("method"), m.get("params", {})
            if method == "Runtime.exceptionThrown":
                d = params["exceptionDetails"]
                self.errors.append(d.get("exception", {}).get("description") or d.get("text", "exception"))
            elif method == "Runtime.consoleAPICalled":
                text = " ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", []))
                self.console.append(f"{params.get('type')}: {text}")
                if params.get("type") == "error":
                    self.errors.append(text)
            for fut in self._events.pop(method, []):
                if not fut.done():
                    fut.set_result(params)

    async def call(self, method: str, **params: Any) -> Any:
        assert self.ws is not None
        n = next(self._ids)
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._calls[n] = fut
        await self.ws.send_str(json.dumps({"id": n, "method": method, "params": params}))
        return await asyncio.wait_for(fut, 30)

    def event(self, method: str) -> asyncio.Future[Any]:
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._events.setdefault(method, []).append(fut)
        return fut

    async def goto(self, url: str) -> None:
        loaded = self.event("Page.loadEventFired")
        await self.call("Page.navigate", url=url)
        await asyncio.wait_for(loaded, 30)

    async def eval(self, expression: str) -> Any:
        r = await self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in r:
            raise PageError(f"{expression}: {r['exceptionDetails'].get('exception', {}).get('description')}")
        return r["result"].get("value")

    async def until(self, expression: str, timeout: float = 15.0, what: str = "") -> Any:
        """Poll a JS expression until it is truthy; returns its value."""
        deadline = time.monotonic() + timeout
        value = None
        while time.monotonic() < deadline:
            value = await self.eval(expression)
            if value:
                return value
            await asyncio.sleep(0.1)
        raise AssertionError(f"page: {what or expression} still {value!r} after {timeout}s; errors: {self.errors}")

    async def type_into(self, selector: str, text: str, enter: bool = True) -> None:
        await self.eval(f"document.querySelector({json.dumps(selector)}).focus()")
        await self.call("Input.insertText", text=text)
        if enter:
            for kind in ("keyDown", "keyUp"):
                await self.call(
                    "Input.dispatchKeyEvent",
                    type=kind,
                    key="Enter",
                    code="Enter",
                    windowsVirtualKeyCode=13,
                    nativeVirtualKeyCode=13,
                    text="\r" if kind == "keyDown" else "",
                )

    async def click(self, selector: str) -> None:
        box = await self.eval(
            f"(() => {{ const r = document.querySelector({json.dumps(selector)}).getBoundingClientRect();"
            " return [r.x + r.width / 2, r.y + r.height / 2]; })()"
        )
        for kind in ("mousePressed", "mouseReleased"):
            await self.call("Input.dispatchMouseEvent", type=kind, x=box[0], y=box[1], button="left", clickCount=1)

    async def screenshot(self, path: Path) -> Path:
        r = await self.call("Page.captureScreenshot", format="png")
        return _write(path, base64.b64decode(r["data"]))

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
        if self.ws is not None:
            await self.ws.close()
        if self.http is not None:
            await self.http.close()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        with contextlib.suppress(OSError):
            shutil.rmtree(self.profile, ignore_errors=True)


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def artifact_dir() -> Path:
    """Where screenshots go: $ARGUS_ARTIFACTS, else .run/artifacts in the checkout."""
    return Path(os.environ.get("ARGUS_ARTIFACTS") or Path(__file__).resolve().parents[2] / ".run" / "artifacts")
