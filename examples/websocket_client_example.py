"""Argus client example, on the Python SDK (`pip install ./clients/python`).

    python examples/websocket_client_example.py --mode demo
    python examples/websocket_client_example.py --mode interactive

demo: subscribes 000001.SZ and 600000.SH to every data type, prints a few messages of each type,
unsubscribes and exits 0 (1 if some type never arrived). interactive: type commands such as
`sub 000001.SZ quote,tick`, `sub 600000.SH kline 1m,5m 30` (the last number: history entries),
`unsub 000001.SZ`, `list`, `stats`, `quit`.

Either mode survives a gateway restart: the SDK reconnects with backoff and resumes every stream
after its last seq; a loss it cannot recover is printed as a GAP line, never skipped silently.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections import Counter
from typing import Any

import msgspec
from argus_client import ArgusClient, ArgusError, DataEvent, KlineEvent, QuoteEvent, TickEvent, TradeEvent

DATA_TYPES = ["quote", "tick", "kline", "trade"]
HELP = "commands: sub SYMBOLS [TYPES] [PERIODS] [HISTORY] | unsub [SYMBOLS] | list | stats | quit   (lists are comma-separated)"


def describe(event: Any) -> str:
    """One line per event: DATA lines by type, everything else as TYPE: {fields}."""
    if isinstance(event, QuoteEvent):
        q = event.quote
        bid = q.bid_prices[0] if q.bid_prices else None
        ask = q.ask_prices[0] if q.ask_prices else None
        text = f"price={q.price} vol={q.volume} bid1={bid} ask1={ask}"
    elif isinstance(event, TickEvent):
        t = event.tick
        text = f"{t.time} price={t.price} avg={t.avg_price} vol={t.volume}"
    elif isinstance(event, KlineEvent):
        k = event.kline
        text = f"{k.period} {k.open_time} O={k.open} H={k.high} L={k.low} C={k.close} closed={k.closed}"
    elif isinstance(event, TradeEvent):
        tr = event.trade
        text = f"{tr.time} {tr.side} {tr.volume}@{tr.price}"
    else:
        name = type(event).__name__.upper()
        return f"{name}: {json.dumps(msgspec.to_builtins(event), ensure_ascii=False)}"
    mark = " (replay)" if event.replay else " (snapshot)" if event.snapshot else ""
    return f"DATA {event.type:<5} {event.symbol} seq={event.seq}{mark} {text}"


async def demo(url: str, symbols: list[str], per_type: int, wait_seconds: float, **options: Any) -> int:
    seen: Counter[str] = Counter()
    async with ArgusClient(url, **options) as client:
        reply = await client.subscribe(symbols, DATA_TYPES, ["1m"], timeout=wait_seconds)
        print(describe(reply))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_seconds
        while any(seen[t] < per_type for t in DATA_TYPES) and loop.time() < deadline:
            event = await client.next_event(timeout=max(0.1, deadline - loop.time()))
            if event is None:
                break
            if isinstance(event, DataEvent):  # type: ignore[misc,arg-type]
                if seen[event.type] < per_type:
                    print(describe(event))
                seen[event.type] += 1
            else:
                print(describe(event))  # connection changes, STATUS, GAP, REPLAYED, ERROR
        removed = await client.unsubscribe()
        print(f"UNSUBSCRIBED: {json.dumps({'removed': removed})}")
    missing = [t for t in DATA_TYPES if seen[t] == 0]
    if missing:
        print(f"no data within {wait_seconds:g}s for: {', '.join(missing)}", file=sys.stderr)
        return 1
    return 0


async def interactive(url: str, **options: Any) -> int:
    print(HELP, flush=True)
    async with ArgusClient(url, **options) as client:

        async def printer() -> None:
            async for event in client:
                print(describe(event), flush=True)

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
                    types = args[1].split(",") if len(args) > 1 else ["quote"]
                    periods = args[2].split(",") if len(args) > 2 else ["1m"]
                    history: int | str = 0
                    try:
                        if len(args) > 3:
                            history = args[3] if args[3] == "day" else int(args[3])
                        reply = await client.subscribe(args[0].split(","), types, periods, history=history, timeout=30)
                    except (ArgusError, TimeoutError, ValueError) as e:  # shown; the prompt goes on
                        print(f"ERROR: {e}", flush=True)
                        continue
                    print(describe(reply), flush=True)
                elif cmd == "unsub":
                    removed = await client.unsubscribe(args[0].split(",") if args else None)
                    print(f"UNSUBSCRIBED: {json.dumps({'removed': removed})}", flush=True)
                elif cmd == "list":
                    print(describe(await client.subscriptions()), flush=True)
                elif cmd == "stats":
                    print(f"STATS: {json.dumps(client.stats())}", flush=True)
                else:
                    print(f"?  {HELP}", flush=True)
        finally:
            task.cancel()
    return 0


def main() -> int:
    p = argparse.ArgumentParser(description="Argus WebSocket client example (on argus_client)")
    p.add_argument("--url", default="ws://localhost:8765/")
    p.add_argument("--mode", choices=["demo", "interactive"], default="demo")
    p.add_argument("--symbols", default="000001.SZ,600000.SH")
    p.add_argument("--per-type", type=int, default=3, help="demo: messages to print per data type")
    p.add_argument("--timeout", type=float, default=90.0, help="demo: give up after this many seconds")
    p.add_argument("--token", default=None, help="API key or JWT when the gateway has auth on")
    p.add_argument("--encoding", choices=["json", "msgpack"], default="json")
    args = p.parse_args()
    options: dict[str, Any] = {"token": args.token, "encoding": args.encoding}
    if args.mode == "demo":
        return asyncio.run(demo(args.url, args.symbols.split(","), args.per_type, args.timeout, **options))
    return asyncio.run(interactive(args.url, **options))


if __name__ == "__main__":
    sys.exit(main())
