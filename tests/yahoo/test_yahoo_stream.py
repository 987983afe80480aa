"""YahooSource on the stream: the real yfinance decoder against a fake streamer speaking Yahoo's wire format."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from fake_streamer import FakeStreamer
from yahoo_fixtures import ms
from yahookit import Harness

AAPL, TENCENT, PUFA = "AAPL.US", "00700.HK", "600000.SH"
QUOTE_TRADE = [(t, s) for s in (AAPL, TENCENT, PUFA) for t in ("quote", "trade")]


def harness(streamer: FakeStreamer, tmp_path: Path, **options: object) -> Harness:
    # the chart endpoint is a closed port: nothing here is polled (no kline/tick wanted)
    return Harness(streamer.url, "http://127.0.0.1:9", str(tmp_path), **options)


async def test_quotes_for_three_markets_with_offsets_and_one_book_level(streamer: FakeStreamer, tmp_path: Path) -> None:
    async with harness(streamer, tmp_path) as h:
        h.want(*QUOTE_TRADE)
        await streamer.wait(
            lambda: streamer.conns and streamer.current.subscribed() == {"AAPL", "0700.HK", "600000.SS"}
        )
        await streamer.push(
            id="AAPL",
            price=229.87,
            time=ms("2026-11-23T10:15:01.250-05:00"),
            market_hours=1,
            day_volume=38_000_000,
            day_high=230.72,
            day_low=228.06,
            open_price=229.0,
            previous_close=228.52,
            bid=229.86,
            bid_size=300,
            ask=229.88,
            ask_size=200,
        )
        await streamer.push(
            id="0700.HK", price=501.5, time=ms("2026-11-24T09:31:05+08:00"), market_hours=1, day_volume=30_000
        )
        await streamer.push(
            id="600000.SS", price=10.54, time=ms("2026-11-24T09:31:07+08:00"), market_hours=1, bid=10.53, day_volume=1
        )
        await h.until(lambda: len(h.of("quote")) == 3)
        us, hk, sh = (h.of("quote", s)[0] for s in (AAPL, TENCENT, PUFA))
        assert us.price == 229.87 and us.volume == 38_000_000 and us.amount == 0.0
        assert (us.open, us.high, us.low, us.prev_close) == (229.0, 230.72, 228.06, 228.52)
        assert us.timestamp == "2026-11-23T10:15:01.250-05:00"
        assert (us.bid_prices, us.bid_volumes, us.ask_prices, us.ask_volumes) == ([229.86], [300], [229.88], [200])
        assert hk.timestamp == "2026-11-24T09:31:05.000+08:00" and hk.price == 501.5
        assert hk.bid_prices == [] and hk.ask_prices == [] and hk.bid_volumes == [] and hk.ask_volumes == []
        assert sh.timestamp == "2026-11-24T09:31:07.000+08:00"
        assert sh.bid_prices == [10.53] and sh.bid_volumes == [0] and sh.ask_prices == []  # a bid without size
        assert h.of("trade") == []  # first message per symbol: a baseline, not a trade


async def test_trades_derived_from_volume_deltas_and_last_size(streamer: FakeStreamer, tmp_path: Path) -> None:
    async with harness(streamer, tmp_path) as h:
        h.want(*QUOTE_TRADE)
        await streamer.wait(lambda: streamer.conns and len(streamer.current.subscribed()) == 3)
        t0 = ms("2026-11-23T10:15:00-05:00")
        await streamer.push(id="AAPL", price=229.87, time=t0, day_volume=38_000_000, bid=229.86, ask=229.88)
        await streamer.push(id="AAPL", price=229.88, time=t0 + 500, day_volume=38_000_300, last_size=300)
        await streamer.push(id="AAPL", price=229.88, time=t0 + 900, day_volume=38_000_300)  # nothing traded
        await streamer.push(id="AAPL", price=229.80, time=t0 + 1500, day_volume=38_000_350, bid=229.80, ask=229.9)
        await streamer.push(id="AAPL", price=229.80, time=t0 + 1800, day_volume=38_000_400)
        # 0700.HK without any day volume: trades from last_size when the time advances
        h0 = ms("2026-11-24T09:31:00+08:00")
        await streamer.push(id="0700.HK", price=501.0, time=h0, last_size=100)
        await streamer.push(id="0700.HK", price=501.5, time=h0 + 1000, last_size=400)
        await h.until(lambda: len(h.of("trade", AAPL)) == 3 and len(h.of("trade", TENCENT)) == 1)
        a1, a2, a3 = h.of("trade", AAPL)
        assert (a1.price, a1.volume, a1.side, a1.time) == (229.88, 300, "B", "2026-11-23T10:15:00.500-05:00")
        assert a1.trade_id == "20261123-38000300"
        assert (a2.volume, a2.side) == (50, "N")  # the message before it had no book: side unknown
        assert a3.volume == 50 and a3.side == "S" and a3.trade_id == "20261123-38000400"
        (hk,) = h.of("trade", TENCENT)
        assert (hk.price, hk.volume, hk.time, hk.trade_id) == (
            501.5,
            400,
            "2026-11-24T09:31:01.000+08:00",
            f"20261124-t{h0 + 1000}",
        )
        assert {e.source for e in h.events_of("trade")} == {"yahoo-derived"}
        # the quotes are held until the chart (a closed port here) fails to give the day's fields
        await h.until(lambda: [q.volume for q in h.of("quote", AAPL)][-1:] == [38_000_400])


@pytest.mark.parametrize("close", ["clean", "abnormal"])
async def test_reconnects_and_resubscribes_after_close(streamer: FakeStreamer, tmp_path: Path, close: str) -> None:
    async with harness(streamer, tmp_path) as h:
        h.want(*QUOTE_TRADE)
        await streamer.wait(lambda: streamer.conns and len(streamer.current.subscribed()) == 3)
        t0 = ms("2026-11-24T09:31:00+08:00")
        await streamer.push(id="0700.HK", price=501.0, time=t0)
        await h.until(lambda: len(h.of("quote")) == 1)
        if close == "clean":
            await streamer.close_clean()
        else:
            streamer.drop()
        await streamer.wait(lambda: len(streamer.conns) == 2 and streamer.open())
        await streamer.wait(lambda: streamer.current.subscribed() == {"AAPL", "0700.HK", "600000.SS"})
        await streamer.push(id="0700.HK", price=502.0, time=t0 + 1000)
        await h.until(lambda: len(h.of("quote")) == 2)
        assert h.of("quote", TENCENT)[-1].price == 502.0
        assert h.source.streamer is not None and h.source.streamer.connects == 2
        states = h.ctx.states()
        assert states[0] == "live" and "stale" in states and states[-1] == "live"  # reconnecting, then live again
        if close == "abnormal":
            assert h.ctx.errors["disconnect"] == 1


async def test_garbage_and_undecodable_frames_do_not_end_the_stream(streamer: FakeStreamer, tmp_path: Path) -> None:
    async with harness(streamer, tmp_path) as h:
        h.want(("quote", TENCENT))
        await streamer.wait(lambda: streamer.conns and streamer.current.subscribed() == {"0700.HK"})
        await streamer.send("this is not json")
        await streamer.send('{"type": "pricing", "message": "////8A=="}')  # base64 of bytes no protobuf parses
        await streamer.send('{"type": "pricing"}')
        await streamer.send('{"type": "pricing", "message": "%%%"}')  # base64 of nothing: no id
        await streamer.send("[1, 2, 3]")
        await streamer.send('{"type": "heartbeat"}')  # another message type: ignored, not an error
        await streamer.push(id="0700.HK", price=503.0, time=ms("2026-11-24T09:40:00+08:00"))
        await h.until(lambda: len(h.of("quote")) == 1)
        assert h.of("quote")[0].price == 503.0
        assert h.ctx.errors["decode"] == 5
        assert h.source.streamer is not None and h.source.streamer.connects == 1  # the same connection


async def test_subscription_follows_demand_and_is_resent_periodically(streamer: FakeStreamer, tmp_path: Path) -> None:
    async with harness(streamer, tmp_path, resubscribe_interval=0.1) as h:
        h.want(("quote", AAPL), ("trade", TENCENT), ("kline", PUFA, "1m"))  # 600000.SH is only polled
        await streamer.wait(lambda: streamer.conns and streamer.current.subscribed() == {"AAPL", "0700.HK"})
        await streamer.wait(lambda: sum("subscribe" in m for m in streamer.current.received) >= 3)
        h.want(("quote", AAPL))
        await streamer.wait(lambda: {"unsubscribe": ["0700.HK"]} in streamer.current.received)
        await streamer.wait(lambda: streamer.current.received[-1] == {"subscribe": ["AAPL"]}, timeout=2)
        # a message for a symbol nobody wants any more is dropped
        await streamer.push(id="0700.HK", price=501.0, time=ms("2026-11-24T09:31:00+08:00"))
        await streamer.push(id="AAPL", price=229.0, time=ms("2026-11-23T10:00:00-05:00"))
        await h.until(lambda: h.of("quote"))
        assert [e.symbol for e in h.events] == [AAPL]


async def test_stale_when_no_price_in_session_then_live_again(streamer: FakeStreamer, tmp_path: Path) -> None:
    async with harness(streamer, tmp_path, stale_after=0.3) as h:
        h.want(("quote", TENCENT), ("quote", AAPL))
        await streamer.wait(lambda: streamer.conns and len(streamer.current.subscribed()) == 2)
        t0 = ms("2026-11-24T09:31:00+08:00")
        for i in range(8):  # AAPL keeps talking; 0700.HK is silent
            await streamer.push(id="AAPL", price=229.0 + i, time=ms("2026-11-23T10:00:00-05:00") + i * 100)
            await h.until(lambda i=i: len(h.of("quote", AAPL)) == i + 1)
            await asyncio.sleep(0.1)
        assert h.ctx.states(TENCENT) == ["stale"]
        assert h.ctx.states(AAPL) == []
        (stale,) = [s for s in h.ctx.statuses if s["symbol"] == TENCENT]
        assert stale["reason"] == "no price from Yahoo for 0.3 s in session"
        await streamer.push(id="0700.HK", price=501.0, time=t0)
        await h.until(lambda: h.ctx.states(TENCENT) == ["stale", "live"])


async def test_no_stale_outside_the_market_session(streamer: FakeStreamer, tmp_path: Path) -> None:
    # NOW is 09:32 in Hong Kong (in session) and 20:32 in New York (closed)
    async with harness(streamer, tmp_path, stale_after=0.2, schedule="exchange") as h:
        h.want(("quote", TENCENT), ("quote", AAPL))
        await streamer.wait(lambda: streamer.conns and len(streamer.current.subscribed()) == 2)
        await h.until(lambda: h.ctx.states(TENCENT) == ["stale"], timeout=3)
        assert h.ctx.states(AAPL) == []


async def test_symbols_yahoo_lacks_are_down_until_nobody_wants_them(streamer: FakeStreamer, tmp_path: Path) -> None:
    async with harness(streamer, tmp_path) as h:
        h.want(("quote", "IF2412.IF"), ("quote", TENCENT))
        await streamer.wait(lambda: streamer.conns and streamer.current.subscribed() == {"0700.HK"})
        (down,) = [s for s in h.ctx.statuses if s["symbol"] == "IF2412.IF"]
        assert down["state"] == "down" and down["reason"] == "IF2412.IF: Yahoo has no IF market"
        h.want(("quote", TENCENT))
        assert h.ctx.states("IF2412.IF") == ["down", "live"]


async def test_an_alias_never_takes_the_canonical_symbols_feed(streamer: FakeStreamer, tmp_path: Path) -> None:
    """Issue 10: `aapl.US`, `700.HK` and `00700.HK` once shared one ticker, and the last one wanted took it."""
    async with harness(streamer, tmp_path) as h:
        h.want(("quote", TENCENT), ("quote", "700.HK"), ("quote", AAPL), ("quote", "aapl.US"))
        await streamer.wait(lambda: streamer.conns and streamer.current.subscribed() == {"0700.HK", "AAPL"})
        await streamer.push(id="0700.HK", price=501.5, time=ms("2026-11-24T09:31:05+08:00"), market_hours=1)
        await streamer.push(id="AAPL", price=229.87, time=ms("2026-11-23T10:15:01-05:00"), market_hours=1)
        await h.until(lambda: len(h.of("quote")) == 2)
        assert {e.symbol for e in h.events_of("quote")} == {TENCENT, AAPL}
        for alias, canonical in (("700.HK", TENCENT), ("aapl.US", AAPL)):
            (down,) = [s for s in h.ctx.statuses if s["symbol"] == alias]
            assert down["state"] == "down" and down["reason"].endswith(f"Argus names it {canonical}")
        h.want(("quote", TENCENT), ("quote", AAPL))  # nobody asks for the aliases now: their `down` is withdrawn
        assert h.ctx.states("700.HK") == h.ctx.states("aapl.US") == ["down", "live"]
        assert h.ctx.states(TENCENT) == h.ctx.states(AAPL) == []


async def test_unreachable_streamer_is_stale_then_down(tmp_path: Path) -> None:
    async with Harness("ws://127.0.0.1:9/", "http://127.0.0.1:9", str(tmp_path), stale_after=0.3) as h:
        h.want(("quote", TENCENT))
        await h.until(lambda: "down" in h.ctx.states())
        states = h.ctx.states()
        assert states[0] == "stale" and "live" not in states
        # the source's own last status (a per-symbol `stale` for the silent market may come after it)
        last = [s for s in h.ctx.statuses if s["symbol"] is None][-1]
        assert (last["reason"] or "").startswith("Yahoo streamer reconnecting: connect failed")
        assert h.ctx.errors["connect"] >= 2
