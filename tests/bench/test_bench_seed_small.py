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


def test_column_floor_writes_the_pubs_of_its_blocks() -> None:
    """bench/columnfloor.py's PUBs, as nats-server reads them, are its last step's quotes, each
    stamped with its symbol's seq (how many steps updated it)."""
    from argus_protocol import decode_event

    from bench.columnfloor import steps

    spent, blob = steps(per_step=30, count=3, period=0.0, symbols=40)  # steps of 30 over 40: seqs 2 and 3
    pos, events = 0, []
    while pos < len(blob):
        eol = blob.index(b"\r\n", pos)
        verb, subject, size = blob[pos:eol].split()
        end = eol + 2 + int(size)
        assert verb == b"PUB" and blob[end : end + 2] == b"\r\n"
        event = decode_event(blob[eol + 2 : end])
        assert subject.decode() == f"quote.{event.symbol}"
        events.append(event)
        pos = end + 2
    seqs = {e.symbol: e.seq for e in events}
    # step 3 updates symbols 20..39 and 0..9: 0..9 and 20..29 for the 2nd time, 30..39 for the 3rd... by slices of 30
    assert len(events) == 30 and sorted(set(seqs.values())) == [2, 3] and spent > 0
    assert all(len(e.quote.bid_prices) == len(e.quote.ask_volumes) == 5 and e.source == "floor" for e in events)


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
