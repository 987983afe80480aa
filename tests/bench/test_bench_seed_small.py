"""The `seed` benchmark scaled down, so the bench code cannot rot: completeness, never speed."""

from __future__ import annotations

from bench.__main__ import run
from bench.scenarios import Scenario


def test_scaled_down_seed_delivers_every_message() -> None:
    s = Scenario("seed-small", clients=50, symbols_per_client=5, universe=50, rate=2.0, duration=3.0)
    r = run(s, sample_every=1)
    assert r["connected"] == 50 and r["client"] == "picows"
    assert r["seq_holes"] == 0, "a client saw a hole in a stream"
    # every second each client gets 5 symbols x 2 updates; a few at the window edges may fall either side
    assert 0.95 * s.offered <= r["delivered_per_s"] <= 1.05 * s.offered
    assert r["latency_samples"] > 0.9 * s.offered * r["duration_s"]
    assert r["gateway_peak_rss_mb"] > 0


def test_counting_client_counts_what_the_gateway_sent_in_json_and_msgpack() -> None:
    # sample_every > 1 selects the counting client (markers counted per TCP read, no frame parsing)
    for query in ("", "encoding=msgpack&batch=1"):
        s = Scenario("seed-count", clients=40, symbols_per_client=5, universe=50, rate=2.0, duration=3.0, query=query)
        r = run(s, sample_every=5)
        assert r["connected"] == 40 and r["client"] == "counting"
        assert 0.95 * s.offered <= r["delivered_per_s"] <= 1.05 * s.offered, (query, r["delivered_per_s"])
        assert r["latency_samples"] > 0 and r["p50_ms"] is not None and 0 <= r["p50_ms"] < 5000


def test_send_floor_times_real_sends_and_the_floor_charges_a_runs_writes() -> None:
    """bench/sendfloor.py sends to real loopback sockets drained by another process; a run's
    'sends' floor' is its writes/s at that cost, per delivered message (None without a write count)."""
    from bench.__main__ import with_floor
    from bench.sendfloor import measure

    floor = measure(sockets=20, size=500, rate=2000, seconds=0.5, send_core=None, read_core=None)
    assert floor["sockets"] == 20 and floor["size"] == 500
    assert 500 < floor["sends_per_s"] <= 2600  # paced near the rate asked for
    assert 0 < floor["us_per_send"] < 10_000
    run = with_floor({"gateway_writes_per_s": 10_000, "delivered_per_s": 200_000}, 10.0)
    assert run["send_floor_us_per_message"] == 0.5
    assert with_floor({"gateway_writes_per_s": 0, "delivered_per_s": 1}, 10.0)["send_floor_us_per_message"] is None


def test_quote_floor_builds_and_encodes_real_quote_events() -> None:
    """bench/quotefloor.py's step is the real thing minus the simulation: its PUBs carry quote
    events with five-level books that Argus's own decoder reads back."""
    from argus_protocol import QuoteEvent, decode_event

    from bench.quotefloor import measure, steps

    per_quote, pubs = steps(per_step=30, count=3, period=0.0, symbols=40)
    assert per_quote > 0
    subjects, events, pos = [], [], 0
    while pos < len(pubs):  # PUB <subject>  <size>\r\n<payload>\r\n, as nats-server reads them
        eol = pubs.index(b"\r\n", pos)
        verb, subject, size = pubs[pos:eol].split()
        end = eol + 2 + int(size)
        assert verb == b"PUB" and pubs[end : end + 2] == b"\r\n"
        subjects.append(subject.decode())
        events.append(decode_event(pubs[eol + 2 : end]))
        pos = end + 2
    assert len(events) == 30 and all(isinstance(e, QuoteEvent) and e.seq == 3 for e in events)
    assert subjects == [f"quote.{e.symbol}" for e in events]
    assert all(len(e.quote.bid_prices) == len(e.quote.ask_volumes) == 5 for e in events)
    floor = measure(per_step=30, count=3, period=0.01, symbols=40, core=None)
    assert floor["steps_per_s"] == 100 and floor["us_per_quote_paced"] > 0


def test_column_floor_writes_the_pubs_the_object_path_would() -> None:
    """bench/columnfloor.py's records, as nats-server reads them, decode to the very events the
    object path encodes from the same numbers (its integers are wider on the wire, not different)."""
    import numpy as np
    from argus_protocol import Quote, QuoteEvent, decode_event, encode_event

    from bench.columnfloor import LEVELS, SOURCE, TIMESTAMP, ColumnPublisher, measure

    names = ["000001.SZ", "000002.SZ", "600000.SH"]
    pub = ColumnPublisher(names)
    rng = np.random.default_rng(7)
    idx = np.array([2, 0])
    floats = {n: rng.uniform(1, 100, 2) for n in ("price", "open", "high", "low", "prev_close", "amount")}
    ints = {"volume": rng.integers(0, 10**12, 2)}
    for side in ("bid", "ask"):
        for i in range(LEVELS):
            floats[f"{side}_prices{i}"] = rng.uniform(1, 100, 2)
            ints[f"{side}_volumes{i}"] = rng.integers(0, 10**6, 2)
    pub.step(idx, {**floats, **ints}, ts=1)
    blob = pub.step(idx, {**floats, **ints}, ts=1_764_000_000_000_000)
    pos = 0
    for row, sym in enumerate(names[j] for j in idx):
        eol = blob.index(b"\r\n", pos)
        verb, subject, size = blob[pos:eol].split()
        end = eol + 2 + int(size)
        assert (verb, subject, blob[end : end + 2]) == (b"PUB", f"quote.{sym}".encode(), b"\r\n")
        book = {
            f"{side}_{kind}": [
                (floats if kind == "prices" else ints)[f"{side}_{kind}{i}"][row].item() for i in range(LEVELS)
            ]
            for side in ("bid", "ask")
            for kind in ("prices", "volumes")
        }
        quote = Quote(
            **{n: floats[n][row].item() for n in ("price", "open", "high", "low", "prev_close", "amount")},
            volume=ints["volume"][row].item(),
            timestamp=TIMESTAMP,
            **book,
        )
        expected = QuoteEvent(symbol=sym, source=SOURCE, seq=2, ts=1_764_000_000_000_000, quote=quote)
        assert decode_event(blob[eol + 2 : end]) == decode_event(encode_event(expected))
        pos = end + 2
    assert pos == len(blob)
    floor = measure(per_step=30, count=3, period=0.01, symbols=40, core=None)
    assert floor["us_per_quote_paced"] > 0


def test_wildcard_measurement_routes_real_events_both_ways() -> None:
    """bench/wildcard.py through a real nats-server: one subscription per subject delivers every
    code held with no gap, one wildcard while half the codes are held delivers that half and
    drops the rest, and the subscriber is charged CPU per message."""
    from bench.wildcard import nats_server, run_mode

    with nats_server() as (pid, url):
        per_subject = run_mode(pid, url, "subjects", symbols=40, rate=2000, duration=1.0)
        half = run_mode(pid, url, "wildcard-half", symbols=40, rate=2000, duration=1.0)
    assert per_subject["events"] > 1000 and per_subject["dropped"] == 0 and per_subject["gaps"] == 0
    # /proc counts CPU in 10 ms ticks: a second of 2,000 events may cost nats-server less than one
    assert per_subject["us_per_msg_subscriber"] > 0 and per_subject["us_per_msg_nats"] >= 0
    assert half["gaps"] == 0 and abs(half["events"] - half["dropped"]) <= 0.02 * half["events"] + 2


def test_connection_floor_holds_real_websockets_and_weighs_both_servers() -> None:
    """bench/connfloor.py upgrades real sockets on both servers, every socket is sent frames, and
    aiohttp's per-connection objects weigh more than a bare protocol's transport."""
    from bench.connfloor import measure

    framework, bare = (measure(mode, 500, seconds=1.5, core=None, client_core=None) for mode in ("aiohttp", "protocol"))
    assert framework["frames_received"] >= 500 and bare["frames_received"] >= 500
    assert framework["kb_per_connection"] > bare["kb_per_connection"] >= 0
