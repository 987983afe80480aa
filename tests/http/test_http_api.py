"""The HTTP API's shared behaviour against a real gateway: snapshots of many symbols (retained and
unwatched), MessagePack, auth and entitlements, the rate limit, calendars, the OpenAPI document
(validated, and matched against the routes and real answers), and which source is asked."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from httpkit import Http, hs256, private_prefix
from openapi_spec_validator import validate

SECRET = "http-test-secret"


def write_config(tmp_path: Path, prefix: str, **sections: Any) -> Path:
    cfg: dict[str, Any] = {"nats": {"subject_prefix": prefix}, "datasource": {"status_interval": 1}}
    for k, v in sections.items():
        cfg.setdefault(k, {}).update(v)
    path = tmp_path / f"{prefix}-{len(sections)}-{abs(hash(json.dumps(sections, sort_keys=True))) % 10**6}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


async def wait_source(http: Http, symbol: str = "600000.SH") -> None:
    """Until the gateway has heard the mock's STATUS (sources are known by their heartbeat)."""
    await http.until("/v1/bars", lambda s, d: s == 200 and "mock" in d["sources"], symbol=symbol, period="1d", limit=5)


async def test_snapshot_of_300_symbols_from_retention_and_from_the_source(gateway, ingestor, tmp_path: Path) -> None:
    prefix = private_prefix()
    path = write_config(tmp_path, prefix)
    port, _ = gateway("--config", str(path))
    ingestor("mock", "--config", str(path), "--seed", "3", "--universe", "100", "--history", "0", "--rate", "1")
    http = Http(port)
    try:
        await wait_source(http, "300001.SZ")
        watched = [f"{i:06d}.SZ" for i in range(1, 101)]  # the universe: quotes retained
        unwatched = [f"{i:06d}.SZ" for i in range(300001, 300201)]  # nobody wants them: asked of the mock
        symbols = watched + unwatched
        await http.until(
            "/v1/snapshot",
            lambda s, d: s == 200 and all("seq" in v["quote"] for v in d["snapshots"].values()) and d["count"] == 100,
            symbols=",".join(watched),
        )
        data = await http.ok("/v1/snapshot", symbols=",".join(symbols), types="quote")
        assert data["count"] == 300 and not data["missing"] and not data["rejected"], data["missing"][:3]
        for sym in watched:
            q = data["snapshots"][sym]["quote"]
            assert q["seq"] >= 1 and q["source"] == "mock" and q["symbol"] == sym  # retained: a stream event
        for sym in unwatched:
            q = data["snapshots"][sym]["quote"]
            assert "seq" not in q and q["source"] == "mock" and q["quote"]["price"] > 0  # asked: no stream seq
        # the same as MessagePack, with a bad symbol rejected on its own
        status, packed, resp = await http.get("/v1/snapshot", msgpack=True, symbols="000001.SZ,bad", types="quote,tick")
        assert status == 200 and resp.content_type == "application/msgpack"
        assert set(packed["snapshots"]["000001.SZ"]) == {"quote", "tick"}, packed["missing"]
        assert [r["code"] for r in packed["rejected"]] == ["INVALID_SYMBOL"]
        status, err, _ = await http.get("/v1/snapshot", symbols=",".join(f"{i:06d}.SZ" for i in range(1, 502)))
        assert status == 400 and err["data"]["code"] == "INVALID_MESSAGE" and "500" in err["data"]["message"]
    finally:
        await http.close()


async def test_auth_entitlements_and_msgpack_match_the_websocket(gateway, ingestor, tmp_path: Path) -> None:
    prefix = private_prefix()
    path = write_config(tmp_path, prefix, security={"enable_auth": True, "jwt_secret": SECRET, "api_keys": ["k1"]})
    port, _ = gateway("--config", str(path))
    ingestor("mock", "--config", str(path), "--seed", "5", "--universe", "0", "--history", "20")
    http = Http(port)
    sh_only = hs256({"sub": "alice", "markets": ["SH"], "exp": 4_000_000_000}, SECRET)
    expired = hs256({"sub": "bob", "exp": 1_000_000_000}, SECRET)
    try:
        status, data, resp = await http.get("/v1/bars", symbol="600000.SH")
        assert status == 401 and data["data"]["code"] == "UNAUTHORIZED" and resp.headers["WWW-Authenticate"]
        status, data, _ = await http.get("/v1/bars", symbol="600000.SH", token=expired)
        assert status == 401 and "expired" in data["data"]["message"]
        bearer = {"Authorization": f"Bearer {sh_only}"}
        await http.until(
            "/v1/bars",
            lambda s, d: s == 200 and "mock" in d["sources"],
            symbol="600000.SH",
            period="1d",
            limit=30,
            token=sh_only,
        )
        status, data, _ = await http.get("/v1/bars", headers=bearer, symbol="000001.SZ")
        assert status == 403 and data["data"]["code"] == "FORBIDDEN"
        status, data, _ = await http.get("/v1/snapshot", headers=bearer, symbols="000001.SZ")
        assert status == 403 and data["data"]["code"] == "FORBIDDEN"
        status, data, _ = await http.get("/v1/snapshot", headers=bearer, symbols="000001.SZ,600000.SH")
        assert status == 200 and list(data["snapshots"]) == ["600000.SH"] and data["rejected"][0]["code"] == "FORBIDDEN"
        # the API key passes too; JSON and MessagePack carry the same answer
        as_json = await http.ok("/v1/bars", symbol="600000.SH", period="1d", limit=10, end="2026-01-31", token="k1")
        status, as_mp, resp = await http.get(
            "/v1/bars", msgpack=True, symbol="600000.SH", period="1d", limit=10, end="2026-01-31", token="k1"
        )
        assert status == 200 and resp.content_type == "application/msgpack" and as_mp == as_json
        status, err, resp = await http.get("/v1/bars", msgpack=True, symbol="x", token="k1")
        assert status == 400 and resp.content_type == "application/msgpack" and err["data"]["code"] == "INVALID_SYMBOL"
        # the document itself needs no token
        assert (await http.get("/v1/openapi.json"))[0] == 200
    finally:
        await http.close()


async def test_rate_limit_per_client_says_retry_after(gateway, tmp_path: Path) -> None:
    path = write_config(tmp_path, private_prefix(), http={"requests_per_second": 0.5, "burst": 3})
    port, _ = gateway("--config", str(path))
    http = Http(port)
    try:
        answers = [await http.get("/v1/calendar", market="SH") for _ in range(6)]
        statuses = [a[0] for a in answers]
        assert statuses[:3] == [200, 200, 200] and statuses[3:] == [429, 429, 429], statuses
        _, data, resp = answers[-1]
        assert data["data"]["code"] == "RATE_LIMITED" and resp.headers["Retry-After"] == "1"
    finally:
        await http.close()


async def test_calendar_knows_holidays_and_make_up_working_days(gateway, tmp_path: Path) -> None:
    port, _ = gateway("--config", str(write_config(tmp_path, private_prefix())))
    http = Http(port)
    try:
        cal = await http.ok("/v1/calendar", market="SH", start="2025-09-29", end="2025-10-13")
        assert cal["exchange"] == "XSHG" and cal["timezone"] == "Asia/Shanghai"
        assert cal["trading_days"] == ["2025-09-29", "2025-09-30", "2025-10-09", "2025-10-10", "2025-10-13"]
        days = {d["date"]: d for d in cal["days"]}
        assert not days["2025-10-01"]["trading"] and days["2025-10-01"]["sessions"] == []  # National Day
        assert not days["2025-10-11"]["trading"]  # Saturday make-up working day (调休): exchanges stay closed
        phases = [(s["phase"], s["start"][11:16], s["end"][11:16]) for s in days["2025-10-09"]["sessions"]]
        assert phases[0] == ("auction", "09:15", "09:25") and ("lunch", "11:30", "13:00") in phases
        assert days["2025-10-09"]["hours"] == [
            ["2025-10-09T09:30:00+08:00", "2025-10-09T11:30:00+08:00"],
            ["2025-10-09T13:00:00+08:00", "2025-10-09T15:00:00+08:00"],
        ]
        assert cal["now"]["phase"] in ("closed", "auction", "pre_open", "open", "lunch")
        us = await http.ok("/v1/calendar", market="US", start="2025-11-27", end="2025-11-28")
        assert not us["days"][0]["trading"]  # Thanksgiving
        assert us["days"][1]["hours"][0][1].endswith("13:00:00-05:00")  # early close
        status, data, _ = await http.get("/v1/calendar", market="IF")
        assert status == 400 and data["data"]["code"] == "INVALID_MESSAGE"
        status, data, _ = await http.get("/v1/calendar", market="SH", start="2020-01-01", end="2025-01-01")
        assert status == 400 and "400 days" in data["data"]["message"]
    finally:
        await http.close()


async def test_openapi_document_is_valid_and_matches_routes_and_answers(gateway, ingestor, tmp_path: Path) -> None:
    prefix = private_prefix()
    path = write_config(tmp_path, prefix)
    port, _ = gateway("--config", str(path))
    ingestor("mock", "--config", str(path), "--seed", "9", "--universe", "0", "--history", "20")
    http = Http(port)
    try:
        doc = await http.ok("/v1/openapi.json")
        validate(doc)  # OpenAPI 3.1, by openapi-spec-validator
        assert doc["openapi"].startswith("3.1")
        from argus_gateway.httpapi import HttpApi

        served = {p for p, _ in HttpApi.routes(_Fake())}  # type: ignore[arg-type]
        assert set(doc["paths"]) == served
        for p in served:  # every documented route answers (not 404) on the running gateway
            status, _, _ = await http.get(p)
            assert status != 404, p
        await wait_source(http, "000777.SZ")
        answers = {
            "Bars": await http.ok("/v1/bars", symbol="000001.SZ", period="1d", limit=30),
            "Ticks": await http.ok("/v1/ticks", symbol="000001.SZ"),
            "Trades": await http.ok("/v1/trades", symbol="000001.SZ", limit=5),
            "Snapshot": await http.ok("/v1/snapshot", symbols="000001.SZ,600000.SH", types="quote,kline,tick,trade"),
            "CalendarBody": await http.ok("/v1/calendar", market="HK"),
            "ErrorBody": (await http.get("/v1/bars", symbol="bad"))[1],
        }
        schemas = doc["components"]["schemas"]
        for name, answer in answers.items():
            schema = {**schemas[name], "components": {"schemas": schemas}}
            text = json.dumps(schema).replace("#/components/schemas/", "#/components/schemas/")
            jsonschema.validate(answer, json.loads(text))
        # each endpoint's documented parameters are the ones it accepts: an undocumented one is refused
        for p, item in doc["paths"].items():
            names = {x["name"] for x in item["get"].get("parameters", [])}
            if names:
                status, err, _ = await http.get(p, **{"undocumented": "1"})
                assert (
                    status == 400
                    and "undocumented" in err["data"]["message"]
                    and all(n in err["data"]["message"] for n in names)
                )
    finally:
        await http.close()


class _Fake:
    """Enough of HttpApi for `routes()` (the paths do not depend on a running gateway)."""

    def __getattr__(self, name: str) -> Any:
        return lambda *a, **k: None

    def _endpoint(self, name: str, fn: Any, auth: bool = True) -> Any:
        return fn


async def test_history_goes_to_the_configured_sources_in_order(gateway, ingestor, tmp_path: Path) -> None:
    prefix = private_prefix()
    path = write_config(tmp_path, prefix, history={"sources": {"SZ": ["qmt", "mock"], "SH": ["qmt"]}})
    port, _ = gateway("--config", str(path))
    ingestor("mock", "--config", str(path), "--seed", "11", "--universe", "0", "--history", "0")
    http = Http(port)
    try:
        # SZ: qmt first (no ingestor answers it), then the mock answers
        data = await http.until(
            "/v1/bars", lambda s, d: s == 200, symbol="000002.SZ", period="1d", limit=20, end="2026-06-30"
        )
        assert data["sources"] == ["mock"] and data["count"] == 20
        # SH: only qmt, which nobody runs: UNAVAILABLE naming it and why, within the timeout
        status, err, _ = await http.get("/v1/bars", symbol="600004.SH", period="1d", limit=5, end="2026-06-30")
        assert status == 503 and err["data"]["code"] == "UNAVAILABLE"
        assert "qmt: no ingestor answers history" in err["data"]["message"], err
        # unlisted market: every source heard from, in history.order
        data = await http.until(
            "/v1/bars", lambda s, d: s == 200, symbol="00700.HK", period="1d", limit=3, end="2026-06-30"
        )
        assert data["sources"] == ["mock"]
    finally:
        await http.close()


def test_openapi_names_the_config_limits() -> None:
    from argus_gateway.openapi import document
    from argus_service.config import HttpConfig

    doc = document(HttpConfig(max_bars=777))
    limit = next(p for p in doc["paths"]["/v1/bars"]["get"]["parameters"] if p["name"] == "limit")
    assert limit["schema"]["maximum"] == 777
    validate(doc)
