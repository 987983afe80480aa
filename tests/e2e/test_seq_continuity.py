"""`seq` across ingestor restarts and client reconnects, with the real mock, gateway and nats-server."""

from __future__ import annotations

import asyncio

from eventfactory import unique_symbol
from wsclient import Client

SYM = unique_symbol("R")  # its own: the session's JetStream keeps what other tests' mocks published


async def collect(c: Client, seconds: float) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    while loop.time() < end:
        try:
            await c.recv(max(0.01, end - loop.time()))
        except TimeoutError:
            break


def seqs_of(c: Client, kind: str, symbol: str = SYM) -> list[int]:
    return [
        m["data"]["seq"]
        for m in c.seen
        if m["type"] == "DATA" and m["data"]["type"] == kind and m["data"]["symbol"] == symbol
    ]


async def test_an_ingestor_restart_continues_every_stream_seq(own_nats, gateway, ingestor, procs) -> None:
    ingestor("mock", "--universe", "2", "--rate", "20", url=own_nats.url)
    port, _ = gateway(url=own_nats.url)
    c = await Client.connect(port)
    await c.subscribe(["000001.SZ"], ["quote"], snapshot=False)
    await c.data(10, timeout=15)
    procs[0].stop()
    await asyncio.sleep(0.5)
    ingestor("mock", "--universe", "2", "--rate", "20", url=own_nats.url)
    await c.data(20, timeout=20)
    seqs = seqs_of(c, "quote", "000001.SZ")
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), "one numbering, no hole, no step back"
    assert not [m for m in c.seen if m["type"] == "GAP"]

    # a restart quicker than the gateway's silence check is still told (the ingestor's `started`)
    def told() -> list[dict]:  # type: ignore[type-arg]
        return [m["data"] for m in c.seen if m["type"] == "STATUS" and m["data"]["source"] == "mock"]

    for _ in range(50):
        if any("source restarted" in (st.get("reason") or "") and st["state"] == "live" for st in told()):
            break
        await collect(c, 0.1)
    else:
        raise AssertionError(f"no STATUS telling of the restart: {told()}")
    await c.close()


async def test_a_wiped_store_and_a_restarted_ingestor_are_announced_as_a_reset(
    own_nats, gateway, ingestor, procs
) -> None:
    ingestor("mock", "--universe", "2", "--rate", "20", url=own_nats.url)
    port, _ = gateway(url=own_nats.url)
    c = await Client.connect(port)
    await c.subscribe(["000001.SZ"], ["quote"], snapshot=False)
    before = await c.data(10, timeout=15)
    procs[0].stop()
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, own_nats.restart, 0.2)  # memory retention is gone with it
    await asyncio.sleep(1.5)  # the gateway reconnects and makes the streams again
    ingestor("mock", "--universe", "2", "--rate", "20", url=own_nats.url)
    gap = await c.expect("GAP", timeout=20, reason="reset")
    after = await c.data(3, timeout=10)
    assert gap["data"]["from_seq"] == 1 and gap["data"]["to_seq"] == after[0]["seq"] - 1
    assert after[0]["seq"] < before[-1]["seq"], "a new numbering, announced before its first event"
    await c.close()


async def test_resume_after_a_forced_reconnect_loses_nothing_while_the_mock_publishes_fast(gateway, ingestor) -> None:
    ingestor("mock", "--universe", "1", "--rate", "50", "--history", "0")  # live only: seeding is tested elsewhere
    port, _ = gateway()
    a = await Client.connect(port)
    await a.subscribe([SYM], ["trade", "quote", "kline"], periods=["1m"], snapshot=False)
    await a.data(100, timeout=20, symbol=SYM, type="trade")
    await a.data(5, timeout=5, symbol=SYM, type="quote")
    await a.ws.close()  # the strategy lost its socket ...
    await a.http.close()
    last = {
        f"trade:{SYM}": seqs_of(a, "trade")[-1],
        f"quote:{SYM}": seqs_of(a, "quote")[-1],
        f"kline:{SYM}:1m": seqs_of(a, "kline")[-1],
    }
    await asyncio.sleep(1.0)  # ... for a second, while ~150 trades happened
    b = await Client.connect(port)
    await b.subscribe([SYM], ["trade", "quote", "kline"], periods=["1m"], resume=last)
    replayed = (await b.expect("REPLAYED", timeout=10))["data"]["streams"]
    await collect(b, 1.5)
    assert replayed[f"trade:{SYM}"]["recovered"] is True and replayed[f"kline:{SYM}:1m"]["recovered"] is True
    trades = seqs_of(a, "trade") + seqs_of(b, "trade")
    assert trades == list(range(trades[0], trades[-1] + 1)), "every trade exactly once, in order"
    assert seqs_of(b, "trade")[0] == last[f"trade:{SYM}"] + 1
    quotes = seqs_of(b, "quote")
    assert quotes[0] > last[f"quote:{SYM}"] and quotes[1:] == list(range(quotes[1], quotes[1] + len(quotes) - 1))
    bars = [m["data"] for m in a.seen + b.seen if m["type"] == "DATA" and m["data"]["type"] == "kline"]
    kseqs = [d["seq"] for d in bars]
    assert kseqs == sorted(set(kseqs)), "no bar version twice, none out of order"
    assert not [m for m in b.seen if m["type"] == "GAP"]
    await b.close()
