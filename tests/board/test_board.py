"""The quote board in a real headless Chromium against a real gateway: the watch list from the URL
and the page, prices moving, the 分时 line and K-line drawn from `history` then live, a gateway
killed and restarted under the page, auth and allowed_origins. Screenshots are kept as artifacts."""

from __future__ import annotations

import asyncio
import json
import signal
from datetime import datetime, timedelta
from pathlib import Path

import nats
import yaml
from argus_protocol import SourceStatus, Subjects, encode_msgpack, iso_now
from cdp import Browser, artifact_dir
from eventfactory import BarPlayer, quote, subject, unique_symbol
from gatewayproc import GatewayOn

T0 = datetime(2026, 11, 30, 9, 30).astimezone()

ROWS = """[...document.querySelectorAll('#quotes tbody tr')].map(r => ({
  symbol: r.dataset.symbol, updates: +r.dataset.updates,
  last: r.querySelector('.last').textContent, chg: r.querySelector('.chg').textContent,
  pct: r.querySelector('.pct').textContent, bid: r.querySelector('.bid').textContent,
  ask: r.querySelector('.ask').textContent, volume: r.querySelector('.volume').textContent}))"""
STATE = "document.querySelector('#conn').dataset.state"


def minute(i: int) -> str:
    return (T0 + timedelta(minutes=i)).isoformat(timespec="seconds")


def chart(name: str) -> str:
    return f"Object.assign({{}}, document.querySelector('#{name}-chart').dataset)"


async def rows(b: Browser) -> list[dict]:
    return list(await b.eval(ROWS))


async def test_watch_list_moves_and_recovers_when_the_gateway_is_killed(browser: Browser, market, gateway_on) -> None:
    market(rate=4)
    gw: GatewayOn = gateway_on
    gw.start()
    await browser.goto(f"http://127.0.0.1:{gw.port}/board?symbols=000001.SZ,600000.SH")
    await browser.until(f"{STATE} === 'open'", 10, "connected")
    await browser.until("[...document.querySelectorAll('#quotes .last')].every(td => td.textContent !== '…')")
    # add two symbols in the page, as a person would: type, Enter
    await browser.type_into("#symbol", "300750.SZ, 00700.HK")
    await browser.until("document.querySelectorAll('#quotes tbody tr').length === 4", 5, "two rows added")
    assert "symbols=000001.SZ%2C600000.SH%2C300750.SZ%2C00700.HK" in await browser.eval("location.search")
    await browser.until("[...document.querySelectorAll('#quotes .last')].every(td => td.textContent !== '…')")
    first = await rows(browser)
    await browser.until(
        f"(() => {{ const before = {json.dumps({r['symbol']: r['last'] for r in first})};"
        " return [...document.querySelectorAll('#quotes tbody tr')].filter("
        "r => r.querySelector('.last').textContent !== before[r.dataset.symbol]).length >= 2; })()",
        20,
        "prices changed on the page",
    )
    for r in await rows(browser):
        last, chg = float(r["last"]), float(r["chg"])
        assert float(r["bid"]) <= last <= float(r["ask"]) + 0.011, r
        assert abs(float(r["pct"].rstrip("%")) - chg / (last - chg) * 100) < 0.011, r
    # the selected symbol's 分时 and K-line fill from the live feed
    await browser.until(f"+{chart('tick')}.points >= 1 && +{chart('kline')}.points >= 1", 10, "charts drawn")
    # kill the gateway under the page; start it again on the same port
    before = {r["symbol"]: r["updates"] for r in await rows(browser)}
    gw.kill()
    await browser.until(f"{STATE} === 'reconnecting'", 10, "the page saw the gateway go")
    assert "reconnecting in" in await browser.eval("document.querySelector('#conn').textContent")
    gw.start()
    await browser.until(f"{STATE} === 'open'", 20, "reconnected")
    await browser.until(
        f"(() => {{ const before = {json.dumps(before)};"
        " return [...document.querySelectorAll('#quotes tbody tr')].every("
        "r => +r.dataset.updates > before[r.dataset.symbol] + 2); })()",
        20,
        "every row updating again",
    )
    shot = await browser.screenshot(artifact_dir() / "board-watch-list.png")
    assert shot.stat().st_size > 10_000
    assert not browser.errors, browser.errors


async def test_fen_shi_and_kline_come_from_history_then_live_and_resume_across_a_restart(
    browser: Browser, own_nats, gateway_on
) -> None:
    gw: GatewayOn = gateway_on
    gw.start()
    nc = await nats.connect(own_nats.url)
    sym = unique_symbol()
    line, bars = BarPlayer(nc, "tick", sym), BarPlayer(nc, "kline", sym)

    async def minutes(start: int, stop: int, close_last: bool = True) -> None:
        for i in range(start, stop):
            close = close_last or i < stop - 1
            await line.bar(minute(i), versions=2, close=close)
            await bars.bar(minute(i), versions=2, close=close)
        await nc.flush()

    await nc.publish(subject("quote", sym), quote(sym, 1, price=10.0))
    await minutes(0, 31, close_last=False)  # 30 finished minutes and a forming one
    await asyncio.sleep(0.3)  # stored in JetStream
    await browser.goto(f"http://127.0.0.1:{gw.port}/board?symbols={sym}")
    await browser.until(f"{chart('tick')}.points === '31' && {chart('kline')}.points === '31'", 10, "history drawn")
    tick = await browser.eval(chart("tick"))
    assert tick["history"] == "31" and tick["live"] == "0" and tick["lastTime"] == minute(30)
    assert "31 min · 31 from history" in await browser.eval("document.querySelector('#tick-info').textContent")
    # live: a new quote, the forming minute closes, two more minutes
    await nc.publish(subject("quote", sym), quote(sym, 2, price=10.5))
    await line.bar(minute(30), versions=1)
    await bars.bar(minute(30), versions=1)
    await minutes(31, 33)
    await browser.until(f"{chart('tick')}.points === '33'", 10, "live minutes drawn")
    assert int((await browser.eval(chart("tick")))["live"]) >= 5
    await browser.until("document.querySelector('#quotes .last').textContent === '10.50'", 5, "the new quote")
    row = (await rows(browser))[0]
    assert (row["last"], row["chg"], row["pct"], row["bid"], row["ask"], row["volume"]) == (
        "10.50",
        "+0.50",
        "+5.00%",
        "10.49",
        "10.51",
        "200",
    )
    # the gateway restarts (SIGTERM: it drains); the market goes on; the page resumes where it was
    assert gw.proc is not None
    gw.proc.proc.send_signal(signal.SIGTERM)
    await browser.until(f"{STATE} === 'reconnecting'", 10, "the page saw the gateway go")
    assert gw.proc.proc.wait(10) == 0, "the page left on STATUS draining; the gateway did not wait for it"
    assert await browser.eval("argusBoard.states.some(s => s.reason === 'draining')")
    await minutes(33, 35)
    await nc.publish(subject("quote", sym), quote(sym, 3, price=9.8))
    await asyncio.sleep(0.3)
    gw.start()
    await browser.until(f"{STATE} === 'open'", 20, "reconnected")
    await browser.until(f"{chart('tick')}.lastTime === {json.dumps(minute(34))}", 10, "the missed minutes")
    await browser.until("document.querySelector('#quotes .last').textContent === '9.80'", 10, "the newest quote")
    tick, kline = await browser.eval(chart("tick")), await browser.eval(chart("kline"))
    assert tick["points"] == "35" and kline["points"] == "35"
    assert await browser.eval("document.querySelector('#gaps').dataset.count") == "0", "resume lost nothing"
    assert (await rows(browser))[0]["chg"] == "-0.20"
    assert await browser.eval("document.querySelector('#sources').textContent") == "sources: no trouble reported"
    # source STATUS: a stale source and a halted symbol show in the page
    for status in (
        SourceStatus(source="test", state="stale", since=iso_now(), reason="no upstream data", interval=60),
        SourceStatus(source="test", state="halted", since=iso_now(), symbol=sym, interval=60),
    ):
        await nc.publish(Subjects().status("test"), encode_msgpack(status))
    await browser.until("document.querySelector('#sources').textContent === 'test: stale'", 10, "source badge")
    await browser.until("document.querySelector('#quotes .halt')?.textContent === 'halted'", 10, "halted mark")
    await nc.close()
    shot = await browser.screenshot(artifact_dir() / "board-history-resume.png")
    assert shot.stat().st_size > 10_000
    assert not browser.errors, browser.errors


async def test_the_page_asks_for_a_token_and_respects_allowed_origins(
    browser: Browser, own_nats, gateway_on, gateway, tmp_path: Path
) -> None:
    gw: GatewayOn = gateway_on
    gw.start(env={"ENABLE_AUTH": "true", "ARGUS_API_KEYS": "board-key"})
    nc = await nats.connect(own_nats.url)
    sym = unique_symbol()
    await browser.goto(f"http://127.0.0.1:{gw.port}/board?symbols={sym}")
    await browser.until(f"{STATE} === 'closed'", 10, "stopped for want of a token")
    assert "token" in await browser.eval("document.querySelector('#notice').textContent")
    await browser.type_into("#token", "board-key", enter=False)
    await browser.click("#auth button")
    await browser.until(f"{STATE} === 'open'", 10, "connected with the token")
    await asyncio.sleep(0.3)
    await nc.publish(subject("quote", sym), quote(sym, 1, price=12.34))
    await browser.until("document.querySelector('#quotes .last').textContent === '12.34'", 10, "data with the token")
    await nc.close()
    # a gateway whose allow-list does not hold this page's origin refuses the page's WebSocket
    cfg = tmp_path / "origins.yaml"
    cfg.write_text(yaml.safe_dump({"security": {"allowed_origins": ["https://desk.example"]}}))
    port, _ = gateway("--config", str(cfg), url=own_nats.url, env={"ARGUS_CONFIG": ""})
    await browser.goto(f"http://127.0.0.1:{port}/board?symbols={sym}")
    await browser.until(f"{STATE} === 'reconnecting'", 10, "refused")
    await browser.until("document.querySelector('#notice').textContent.includes('allowed_origins')", 5)
    assert await browser.eval("+document.querySelector('#quotes tbody tr').dataset.updates") == 0
