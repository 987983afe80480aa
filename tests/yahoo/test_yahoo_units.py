"""Pure parts: symbol mapping, options, the yfinance decoder on real PricingData bytes, day roll-over."""

from __future__ import annotations

import base64
import json
from datetime import timedelta, timezone

import pytest
from argus_ingestor_yahoo.decode import DecodeError, decode_frame, subscribe_message, unsubscribe_message
from argus_ingestor_yahoo.options import load_options
from argus_ingestor_yahoo.quotes import SymbolTape
from argus_ingestor_yahoo.sessions import MarketClock
from argus_ingestor_yahoo.symbols import NotOnYahoo, from_yahoo, to_yahoo
from fake_streamer import pricing_frame
from yahoo_fixtures import ms
from yfinance.pricing_pb2 import PricingData

PAIRS = [
    ("600000.SH", "600000.SS"),
    ("000001.SZ", "000001.SZ"),
    ("430047.BJ", "430047.BJ"),
    ("00700.HK", "0700.HK"),
    ("09988.HK", "9988.HK"),
    ("00005.HK", "0005.HK"),
    ("AAPL.US", "AAPL"),
    ("BRK-B.US", "BRK-B"),
    ("GSPC.IDX", "^GSPC"),
]


@pytest.mark.parametrize(("canonical", "yahoo"), PAIRS)
def test_symbols_map_both_ways(canonical: str, yahoo: str) -> None:
    assert to_yahoo(canonical) == yahoo
    assert from_yahoo(yahoo) == canonical


@pytest.mark.parametrize("symbol", ["IF2412.IF", "rb2501.SF", "TENCENT.HK"])
def test_symbols_yahoo_does_not_serve(symbol: str) -> None:
    with pytest.raises(NotOnYahoo):
        to_yahoo(symbol)


@pytest.mark.parametrize(
    ("alias", "canonical"),
    [("700.HK", "00700.HK"), ("0700.HK", "00700.HK"), ("aapl.US", "AAPL.US"), ("gspc.IDX", "GSPC.IDX")],
)
def test_only_the_canonical_spelling_maps_to_a_ticker(alias: str, canonical: str) -> None:
    with pytest.raises(NotOnYahoo, match=f"Argus names it {canonical}"):
        to_yahoo(alias)
    assert from_yahoo(to_yahoo(canonical)) == canonical


def test_from_yahoo_rejects_unknown_suffixes() -> None:
    with pytest.raises(NotOnYahoo):
        from_yahoo("VOD.L")


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ({"ws_url": "https://streamer.finance.yahoo.com/"}, "ws_url"),
        ({"chart_url": "ftp://x"}, "chart_url"),
        ({"poll_interval": 0}, "poll_interval"),
        ({"stale_after": -1}, "stale_after"),
        ({"markets": {"LSE": {"tz": "Europe/London", "sessions": ["08:00-16:30"]}}}, "markets"),
        ({"markets": {"HK": {"tz": "Asia/Hong_Kong", "sessions": ["16:00-09:30"]}}}, "sessions"),
        ({"nonsense": 1}, "nonsense"),
    ],
)
def test_bad_options_name_the_key(raw: dict, key: str) -> None:
    with pytest.raises(ValueError, match=key):
        load_options(raw)


def test_options_from_env_strings_and_market_override_keeps_the_others() -> None:
    opts = load_options(
        {"poll_interval": "12.5", "markets": {"HK": {"tz": "Asia/Hong_Kong", "sessions": ["09:30-16:10"]}}}
    )
    assert opts.poll_interval == 12.5
    assert opts.markets["HK"].sessions == ["09:30-16:10"] and "US" not in opts.markets
    clock = MarketClock({m: (mo.tz, mo.sessions) for m, mo in opts.markets.items()})
    assert clock.hours("00700.HK").calendar is None  # the override: fixed weekday sessions
    assert clock.hours("AAPL.US").calendar is not None and str(clock.tz("AAPL.US")) == "America/New_York"


def test_decoder_reads_yfinance_pricing_data_with_omitted_zeros() -> None:
    p = decode_frame(
        pricing_frame(id="AAPL", price=229.87, time=ms("2026-11-23T10:15:00-05:00"), day_volume=38_000_000)
    )
    assert p is not None
    assert (p.id, p.price, p.time_ms, p.day_volume) == ("AAPL", 229.87, ms("2026-11-23T10:15:00-05:00"), 38_000_000)
    assert p.market_hours == 0 and p.bid is None and p.ask_size is None  # zeros never reach the wire
    assert json.loads(subscribe_message(["AAPL", "0700.HK"])) == {"subscribe": ["AAPL", "0700.HK"]}


def test_decoder_rejects_what_protobuf_cannot_parse() -> None:
    bad = base64.b64encode(PricingData(id="X").SerializeToString()[:-1] + b"\xff").decode()
    with pytest.raises(DecodeError):
        decode_frame(json.dumps({"type": "pricing", "message": bad}))


def test_tape_starts_afresh_on_a_new_local_day() -> None:
    tz = timezone(timedelta(hours=8))
    tape = SymbolTape()
    late = ms("2026-11-24T15:59:00+08:00")
    day1 = decode_frame(pricing_frame(id="0700.HK", price=500.0, time=late, day_volume=9000, open_price=495.0))
    day2 = decode_frame(pricing_frame(id="0700.HK", price=505.0, time=ms("2026-11-25T09:30:05+08:00"), day_volume=200))
    assert day1 is not None and day2 is not None
    tape.apply(day1, tz, 0)
    result = tape.apply(day2, tz, 0)
    assert result is not None
    quote, trade, missed = result
    assert trade is None and not missed  # 200 < 9000 is a new day's first volume, not a negative trade
    assert quote.volume == 200 and quote.open == 0.0 and quote.timestamp == "2026-11-25T09:30:05.000+08:00"


def test_reconnect_backoff_doubles_with_jitter_up_to_the_cap() -> None:
    from argus_ingestor_yahoo.streamer import Streamer

    s = Streamer("ws://127.0.0.1:9/", print, print, print, backoff_initial=0.5, backoff_max=4.0)
    for failures, cap in ((0, 0.5), (1, 1.0), (2, 2.0), (3, 4.0), (10, 4.0), (100, 4.0)):
        delays = [s._backoff(failures) for _ in range(200)]
        assert all(cap / 2 <= d <= cap for d in delays), (failures, min(delays), max(delays))
        assert len(set(delays)) > 100  # jittered, not one fixed value


async def test_subscribe_frames_match_what_yfinance_sends() -> None:
    from yfinance.live import AsyncWebSocket

    sent: list[str] = []

    class Wire:  # stands in for the websockets connection yfinance would open
        async def send(self, text: str) -> None:
            sent.append(text)

    yf_ws = AsyncWebSocket(url="ws://127.0.0.1:9/", verbose=False)
    yf_ws._ws = Wire()
    try:
        await yf_ws.subscribe(["AAPL", "0700.HK"])
        await yf_ws.unsubscribe(["0700.HK"])
    finally:
        if yf_ws._heartbeat_task is not None:
            yf_ws._heartbeat_task.cancel()
    theirs, ours = json.loads(sent[0]), json.loads(subscribe_message(["0700.HK", "AAPL"]))
    assert theirs.keys() == ours.keys() == {"subscribe"}  # yfinance sends its set in any order; we sort
    assert sorted(theirs["subscribe"]) == ours["subscribe"]
    assert json.loads(sent[1]) == json.loads(unsubscribe_message(["0700.HK"]))
