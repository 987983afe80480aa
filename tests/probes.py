"""What a test can observe of a running service from outside: memory, metrics, problems in its log."""

from __future__ import annotations

import aiohttp
from stack import Proc


def rss_mb(proc: Proc) -> float:
    """Resident memory of the process, MB (Linux /proc)."""
    with open(f"/proc/{proc.proc.pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


async def metric(mport: int, name: str, labels: str = "") -> float:
    """The sum of a metric's samples (those whose label text contains `labels`)."""
    async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{mport}/metrics") as r:
        text = await r.text()
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and (line[len(name)] in " {") and labels in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


def log_problems(proc: Proc) -> list[str]:
    """Log lines that mean a bug: tracebacks, failed sessions, INTERNAL errors."""
    return [
        line[:300]
        for line in proc.log().splitlines()
        if "Traceback" in line or "session failed" in line or '"INTERNAL"' in line
    ]
