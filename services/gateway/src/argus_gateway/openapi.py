"""The OpenAPI 3.1 document of the HTTP API, built from the very structs the endpoints answer with
(msgspec's JSON Schema of httpbody.py), so the document cannot drift from the answers."""

from __future__ import annotations

import functools
from typing import Any

import msgspec
from argus_protocol import ADJUSTMENTS, DATA_TYPES, PERIODS
from argus_service.config import HttpConfig

from . import httpbody as body

_REF = "#/components/schemas/{name}"


def _param(name: str, description: str, schema: dict[str, Any], required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": required, "description": description, "schema": schema}


def _ok(schema: str, description: str) -> dict[str, Any]:
    ref = {"$ref": _REF.format(name=schema)}
    return {
        "description": description,
        "content": {"application/json": {"schema": ref}, "application/msgpack": {"schema": ref}},
    }


_ERR = {"$ref": "#/components/responses/Error"}


def _errors(*statuses: int) -> dict[str, Any]:
    return {str(s): _ERR for s in (*statuses, 401, 403, 429)}


@functools.cache
def _schemas() -> dict[str, Any]:
    (_, comps) = msgspec.json.schema_components(
        [body.Bars, body.Ticks, body.Trades, body.Snapshot, body.CalendarBody, body.ErrorBody], ref_template=_REF
    )
    return comps


def document(cfg: HttpConfig) -> dict[str, Any]:
    symbol = _param("symbol", "CODE.MARKET, e.g. 000001.SZ", {"type": "string"}, required=True)
    get = "get"
    paths: dict[str, Any] = {
        "/v1/bars": {
            get: {
                "operationId": "bars",
                "summary": "Bars (klines), newest `limit` within start..end; retention first, older from the source",
                "parameters": [
                    symbol,
                    _param("period", "bar period", {"type": "string", "enum": list(PERIODS), "default": "1d"}),
                    _param(
                        "limit",
                        "bars per call",
                        {"type": "integer", "minimum": 1, "maximum": cfg.max_bars, "default": min(500, cfg.max_bars)},
                    ),
                    _param("start", "inclusive, ISO-8601 date or datetime (market time)", {"type": "string"}),
                    _param("end", "inclusive; page back with the `next` URL", {"type": "string"}),
                    _param(
                        "adjust",
                        "none, qfq (前复权) or hfq (后复权), from the source's own factors",
                        {"type": "string", "enum": list(ADJUSTMENTS), "default": "none"},
                    ),
                ],
                "responses": {"200": _ok("Bars", "bars, oldest first"), **_errors(400, 503)},
            }
        },
        "/v1/ticks": {
            get: {
                "operationId": "ticks",
                "summary": "One trading day's 分时 (minute line)",
                "parameters": [
                    symbol,
                    _param(
                        "date", "the trading day, YYYY-MM-DD; default the latest", {"type": "string", "format": "date"}
                    ),
                ],
                "responses": {"200": _ok("Ticks", "the day's minutes, oldest first"), **_errors(400, 503)},
            }
        },
        "/v1/trades": {
            get: {
                "operationId": "trades",
                "summary": "The newest trades (逐笔)",
                "parameters": [
                    symbol,
                    _param(
                        "limit",
                        "trades per call",
                        {"type": "integer", "minimum": 1, "maximum": cfg.max_trades, "default": 100},
                    ),
                ],
                "responses": {"200": _ok("Trades", "trades, oldest first"), **_errors(400, 503)},
            }
        },
        "/v1/snapshot": {
            get: {
                "operationId": "snapshot",
                "summary": "The newest event per stream for many symbols; unwatched ones from retention or the source",
                "parameters": [
                    _param(
                        "symbols",
                        f"comma-separated, at most {cfg.max_symbols}",
                        {"type": "string"},
                        required=True,
                    ),
                    _param("types", f"comma-separated of {', '.join(DATA_TYPES)}; default quote", {"type": "string"}),
                    _param(
                        "periods",
                        f"kline periods, comma-separated of {', '.join(PERIODS)}; default 1m",
                        {"type": "string"},
                    ),
                ],
                "responses": {"200": _ok("Snapshot", "newest events by symbol and stream"), **_errors(400)},
            }
        },
        "/v1/calendar": {
            get: {
                "operationId": "calendar",
                "summary": "Trading days and sessions (holidays and make-up working days from exchange_calendars)",
                "parameters": [
                    _param("market", "SH, SZ, BJ, HK or US", {"type": "string"}, required=True),
                    _param("start", "YYYY-MM-DD; default today", {"type": "string", "format": "date"}),
                    _param(
                        "end",
                        f"YYYY-MM-DD; default start; at most {cfg.max_calendar_days} days",
                        {"type": "string", "format": "date"},
                    ),
                ],
                "responses": {"200": _ok("CalendarBody", "one entry per date"), **_errors(400)},
            }
        },
        "/v1/openapi.json": {
            get: {
                "operationId": "openapi",
                "summary": "This document",
                "security": [],
                "responses": {
                    "200": {
                        "description": "OpenAPI 3.1",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    }
                },
            }
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Argus HTTP API",
            "version": "1",
            "description": "History, snapshots and trading calendars beside the WebSocket stream. JSON by default, "
            "MessagePack with `Accept: application/msgpack`. Errors are the WebSocket's ERROR envelope with an HTTP status.",
        },
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "schemas": _schemas(),
            "responses": {
                "Error": {
                    "description": "ERROR envelope: {type: ERROR, data: {code, message}, timestamp}",
                    "content": {
                        "application/json": {"schema": {"$ref": _REF.format(name="ErrorBody")}},
                        "application/msgpack": {"schema": {"$ref": _REF.format(name="ErrorBody")}},
                    },
                }
            },
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "API key or HS256 JWT (security.enable_auth)",
                },
                "token": {"type": "apiKey", "in": "query", "name": "token"},
            },
        },
        "security": [{"bearer": []}, {"token": []}, {}],
    }
