"""`argus-ingestor-mock` as a process against a real nats-server, read straight off NATS."""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path

import nats
import pytest
from argus_ingestor.main import source_options
from argus_ingestor_mock.__main__ import ENV_KEYS, FLAG_KEYS, add_arguments, main
from argus_ingestor_mock.source import MockOptions
from argus_protocol import DemandAnnouncement, Event, Subjects, decode_event, encode_msgpack, now_us
from argus_service.config import common_arguments, load_config
from natsserver import sync_subscriptions


async def until(pred, timeout: float) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True


async def test_streams_the_universe_and_follows_demand(ingestor, nats_url: str) -> None:  # type: ignore[no-untyped-def]
    nc = await nats.connect(nats_url)
    got: dict[str, list[tuple[float, Event]]] = {}

    async def cb(msg) -> None:  # type: ignore[no-untyped-def]
        key = Subjects().parse_data(msg.subject).key  # kline/tick versions come on .forming and .closed
        got.setdefault(key, []).append((time.monotonic(), decode_event(msg.data)))

    await nc.subscribe("quote.>", cb=cb)
    for t in ("trade", "tick", "kline"):
        await nc.subscribe(f"{t}.300750.SZ" if t == "trade" else f"{t}.300750.SZ.>", cb=cb)
    # a gateway's part: answer the ingestor's demand query with an announcement
    streams = ["quote:300750.SZ", "trade:300750.SZ", "tick:300750.SZ", "kline:300750.SZ:1m", "kline:300750.SZ:1d"]
    announcing = asyncio.Event()
    seq = 0

    async def announce() -> None:
        nonlocal seq
        seq += 1
        ann = DemandAnnouncement(gateway="gw-mocktest", seq=seq, ttl=10, streams=streams)
        await nc.publish(Subjects().demand("gw-mocktest"), encode_msgpack(ann))

    async def on_query(msg) -> None:  # type: ignore[no-untyped-def]
        if announcing.is_set():
            await announce()

    await nc.subscribe(Subjects().demand_query(), cb=on_query)
    await sync_subscriptions(nc)

    ingestor("mock", "--universe", "3", "--rate", "10", "--seed", "5")
    assert await until(lambda: "quote:000001.SZ" in got, 15), "no quote.000001.SZ from the mock"
    await asyncio.sleep(0.5)
    assert {"quote:000001.SZ", "quote:000002.SZ", "quote:000003.SZ", "quote:600000.SH"} <= set(got)
    assert "quote:000004.SZ" not in got and "quote:300750.SZ" not in got  # outside the universe, unwanted

    q = [e for _, e in got["quote:000001.SZ"]]
    assert [e.seq for e in q] == list(range(q[0].seq, q[0].seq + len(q)))
    assert all(e.source == "mock" and now_us() - 10_000_000 < e.ts <= now_us() for e in q)
    assert q[-1].quote.volume >= q[0].quote.volume and q[-1].quote.timestamp.endswith("+08:00")

    announced = time.monotonic()
    announcing.set()
    await announce()
    wanted = set(streams)
    await until(lambda: wanted <= set(got), 2)
    assert wanted <= set(got), f"missing within 2 s: {wanted - set(got)}"
    first = min(t for s in wanted for t, _ in got[s])
    assert first - announced < 2.0
    # an unwanted period of a wanted symbol carries only its seeded past (a chart may switch to it), no live bars
    seeded_5m = [e.kline for _, e in got["kline:300750.SZ:5m"]]
    assert [k.closed for k in seeded_5m] == [True] * 300 + [False]
    await asyncio.sleep(1.0)
    assert len(got["kline:300750.SZ:5m"]) == 301 and len(got["kline:300750.SZ:1m"]) > 301
    quote = got["quote:300750.SZ"][-1][1].quote
    # the seeded past walked it away from its base price, but never past the daily limit
    assert 0.9 * quote.prev_close - 0.01 <= quote.price <= 1.1 * quote.prev_close + 0.01
    assert quote.volume > 1_000_000 and quote.bid_prices  # a seeded day's volume; bids even at limit-down
    assert not quote.ask_prices or quote.bid_prices[0] < quote.ask_prices[0]  # no asks only at limit-up
    await nc.close()


def options(argv: list[str], env: dict[str, str], tmp_path: Path) -> MockOptions:
    p = argparse.ArgumentParser()
    common_arguments(p)
    add_arguments(p)
    cfg = load_config(p.parse_args(argv), env, FLAG_KEYS, ENV_KEYS)
    return MockOptions(source_options(cfg, "mock"))


def test_flags_beat_env_beat_config_file(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("datasource:\n  update_interval: 0.5\n  options:\n    mock: {universe: 7, seed: 9, schedule: cn}\n")
    o = options(["--config", str(cfg)], {}, tmp_path)
    assert (o.rate, o.universe, o.seed, o.schedule) == (2.0, 7, 9, "cn")
    o = options(["--config", str(cfg)], {"MOCK_RATE": "5", "MOCK_UNIVERSE": "100", "MOCK_SCHEDULE": "always"}, tmp_path)
    assert (o.rate, o.universe, o.seed, o.schedule) == (5.0, 100, 9, "always")
    o = options(["--config", str(cfg), "--rate", "20", "--universe", "0", "--seed", "1"], {"MOCK_RATE": "5"}, tmp_path)
    assert (o.rate, o.universe, o.seed) == (20.0, 0, 1)
    o = options([], {}, tmp_path)
    assert (o.rate, o.universe, o.seed, o.schedule) == (1.0, 10, None, "always")


def test_a_bad_value_is_one_line_and_exit_code_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LOG_FILE", str(tmp_path / "log.jsonl"))
    monkeypatch.setenv("MOCK_RATE", "-3")
    assert main(["--nats-url", "nats://127.0.0.1:1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "datasource.options.mock" in err and "rate" in err
    monkeypatch.delenv("MOCK_RATE")
    with pytest.raises(SystemExit) as e:
        main(["--schedule", "weekends"])
    assert e.value.code == 2


def test_history_options_come_from_file_env_and_flags(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("datasource:\n  options:\n    mock: {history: 50, history_periods: [1m, 1d], history_trades: 10}\n")
    o = options(["--config", str(cfg)], {}, tmp_path)
    assert (o.history, o.history_periods, o.history_trades) == (50, ("1m", "1d"), 10)
    env = {"MOCK_HISTORY": "20", "MOCK_HISTORY_PERIODS": "5m,60m", "MOCK_HISTORY_TRADES": "0"}
    o = options(["--config", str(cfg)], env, tmp_path)
    assert (o.history, o.history_periods, o.history_trades) == (20, ("5m", "60m"), 0)
    flags = ["--history", "0", "--history-periods", "15m", "--history-trades", "2000"]
    o = options(["--config", str(cfg), *flags], env, tmp_path)
    assert (o.history, o.history_periods, o.history_trades) == (0, ("15m",), 2000)
    monkeypatch.setenv("LOG_FILE", str(tmp_path / "log.jsonl"))
    monkeypatch.setenv("MOCK_HISTORY_PERIODS", "1m,2h")
    assert main(["--nats-url", "nats://127.0.0.1:1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "datasource.options.mock" in err and "history_periods: '2h'" in err
