"""Argus WebSocket client example.

    python examples/websocket_client_example.py --mode demo
    python examples/websocket_client_example.py --mode interactive

demo: subscribes 000001.SZ and 600000.SH to every data type, prints a few messages of each type,
unsubscribes and exits 0 (1 if some type never arrived). interactive: type commands such as
`sub 000001.SZ quote,tick`, `unsub 000001.SZ`, `list`, `quit`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections import Counter
from typing import Any

import aiohttp

DATA_TYPES = ["quote", "tick", "kline", "trade"]


def describe(msg: dict[str, Any]) -> str:
    data = msg.get("data") or {}
    if msg.get("type") != "DATA":
        return f"{msg.get('type')}: {json.dumps(data, ensure_ascii=False)}"
    kind = data.get("type")
    body = data.get(kind) or {}
    snap = " (snapshot)" if data.get("snapshot") else ""
    if kind == "quote":
        text = f"price={body.get('price')} vol={body.get('volume')} bid1={(body.get('bid_prices') or [None])[0]} ask1={(body.get('ask_prices') or [None])[0]}"
    elif kind == "tick":
        text = f"{body.get('time')} price={body.get('price')} avg={body.get('avg_price')} vol={body.get('volume')}"
    elif kind == "kline":
        text = f"{body.get('period')} {body.get('open_time')} O={body.get('open')} H={body.get('high')} L={body.get('low')} C={body.get('close')} closed={body.get('closed')}"
    elif kind == "trade":
        text = f"{body.get('time')} {body.get('side')} {body.get('volume')}@{body.get('price')}"
    else:
        text = json.dumps(body)
    return f"DATA {kind:<5} {data.get('symbol')} seq={data.get('seq')}{snap} {text}"


async def demo(url: str, symbols: list[str], per_type: int, wait_seconds: float) -> int:
    seen: Counter[str] = Counter()
    async with aiohttp.ClientSession() as http, http.ws_connect(url) as ws:
        await ws.send_json(
            {"type": "SUBSCRIBE", "id": 1, "data": {"symbols": symbols, "data_types": DATA_TYPES, "periods": ["1m"]}}
        )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_seconds
        while any(seen[t] < per_type for t in DATA_TYPES) and loop.time() < deadline:
            try:
                msg = await ws.receive_json(timeout=max(0.1, deadline - loop.time()))
            except (TimeoutError, TypeError):
                break
            kind = msg.get("type")
            if kind == "DATA":
                t = msg["data"]["type"]
                if seen[t] < per_type:
                    print(describe(msg))
                seen[t] += 1
            elif kind in ("WELCOME", "SUBSCRIBED", "STATUS", "ERROR", "GAP"):
                print(describe(msg))
        await ws.send_json({"type": "UNSUBSCRIBE", "id": 2, "data": {}})
        while True:
            msg = await ws.receive_json(timeout=5)
            if msg.get("type") == "UNSUBSCRIBED":
                print(describe(msg))
                break
    missing = [t for t in DATA_TYPES if seen[t] == 0]
    if missing:
        print(f"no data within {wait_seconds:g}s for: {', '.join(missing)}", file=sys.stderr)
        return 1
    return 0


async def interactive(url: str) -> int:
    print("commands: sub SYMBOLS [TYPES] [PERIODS] | unsub [SYMBOLS] | list | quit   (lists are comma-separated)")
    async with aiohttp.ClientSession() as http, http.ws_connect(url) as ws:

        async def printer() -> None:
            async for m in ws:
                if m.type == aiohttp.WSMsgType.TEXT:
                    print(describe(json.loads(m.data)))

        task = asyncio.create_task(printer())
        loop = asyncio.get_running_loop()
        try:
            while True:
                line = await loop.run_in_executor(None, sys.stdin.readline)
                if not line:
                    break
                parts = line.split()
                if not parts:
                    continue
                cmd, args = parts[0].lower(), parts[1:]
                if cmd in ("quit", "exit", "q"):
                    break
                if cmd == "sub" and args:
                    data: dict[str, Any] = {"symbols": args[0].split(",")}
                    if len(args) > 1:
                        data["data_types"] = args[1].split(",")
                    if len(args) > 2:
                        data["periods"] = args[2].split(",")
                    await ws.send_json({"type": "SUBSCRIBE", "data": data})
                elif cmd == "unsub":
                    await ws.send_json({"type": "UNSUBSCRIBE", "data": {"symbols": args[0].split(",")} if args else {}})
                elif cmd == "list":
                    await ws.send_json({"type": "SUBSCRIPTIONS"})
                else:
                    print("?  sub SYMBOLS [TYPES] [PERIODS] | unsub [SYMBOLS] | list | quit")
        finally:
            task.cancel()
    return 0


def main() -> int:
    p = argparse.ArgumentParser(description="Argus WebSocket client example")
    p.add_argument("--url", default="ws://localhost:8765/")
    p.add_argument("--mode", choices=["demo", "interactive"], default="demo")
    p.add_argument("--symbols", default="000001.SZ,600000.SH")
    p.add_argument("--per-type", type=int, default=3, help="demo: messages to print per data type")
    p.add_argument("--timeout", type=float, default=90.0, help="demo: give up after this many seconds")
    args = p.parse_args()
    if args.mode == "demo":
        return asyncio.run(demo(args.url, args.symbols.split(","), args.per_type, args.timeout))
    return asyncio.run(interactive(args.url))


if __name__ == "__main__":
    sys.exit(main())
