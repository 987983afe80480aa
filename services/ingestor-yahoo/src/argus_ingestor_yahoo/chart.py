"""yfinance's `Ticker.history()` for one symbol, with every HTTP request kept on the configured endpoint.

yfinance hard-codes its hosts: the chart API (`const._BASE_URL_`), and for cookie and crumb
fc.yahoo.com, query1/query2 `/v1/test/getcrumb`, guce/consent.yahoo.com. Instead of patching
module globals, `RedirectSession` (a curl_cffi Session, the type yfinance expects) rewrites the
scheme, host and port of *every* request it sends to `chart_url` (keeping path and query) and
never follows redirects, so nothing leaves for another host. The session is handed to yfinance
through its public `session=` argument. With the default `chart_url` the stock session is used.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import msgspec
from curl_cffi import requests as curl_requests

from .options import DEFAULT_CHART_URL

log = logging.getLogger("argus.yahoo")


class Bar(msgspec.Struct, frozen=True):
    """One 1-minute bar from the chart: epoch ms of its start, prices, shares."""

    ts_ms: int
    open: float
    high: float
    low: float
    close: float
    volume: int


class AdjBar(Bar, frozen=True):
    """One bar of any interval with Yahoo's adjusted close (dividends and splits)."""

    adj_close: float


class ChartDay(msgspec.Struct):
    """What one chart request gives: the latest day's 1m bars and the meta Argus uses."""

    bars: list[Bar]
    tz: str  # meta.exchangeTimezoneName
    day_high: float | None = None
    day_low: float | None = None
    day_volume: int | None = None
    price: float | None = None
    market_time_ms: int | None = None
    prev_close: float | None = None  # the close of the trading day before the chart's


class RedirectSession(curl_requests.Session):  # type: ignore[misc]
    """Sends every request to one base URL, whatever host yfinance names; never follows redirects."""

    def __init__(self, base_url: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        parts = urlsplit(base_url)
        self._scheme, self._netloc, self._prefix = parts.scheme, parts.netloc, parts.path.rstrip("/")
        self.requested: list[str] = []  # the rewritten URLs, newest last (bounded), for logs and tests

    def rewrite(self, url: str) -> str:
        p = urlsplit(url)
        return urlunsplit((self._scheme, self._netloc, self._prefix + (p.path or "/"), p.query, ""))

    def request(self, method: Any, url: str, *args: Any, **kwargs: Any) -> Any:
        target = self.rewrite(url)
        self.requested.append(target)
        del self.requested[:-100]
        kwargs["allow_redirects"] = False  # a redirect to yahoo.com must not be followed
        return super().request(method, target, *args, **kwargs)


def make_session(chart_url: str, cache_dir: str) -> Any:
    """The session to give yfinance (None: its own default), after pointing its disk caches."""
    import yfinance as yf

    redirected = chart_url.rstrip("/") != DEFAULT_CHART_URL
    if redirected and not cache_dir:
        # the endpoint's cookies must not land in (or come from) the cache used for real Yahoo
        cache_dir = tempfile.mkdtemp(prefix="argus-yfinance-")
    if cache_dir:
        yf.set_tz_cache_location(cache_dir)  # also moves the cookie and ISIN caches
    return RedirectSession(chart_url, impersonate="chrome") if redirected else None


class ChartClient:
    """One yfinance Ticker per symbol; `fetch()` blocks (run it in a thread) and raises on failure."""

    def __init__(self, session: Any, timeout: float) -> None:
        self.session = session
        self.timeout = timeout
        self._tickers: dict[str, Any] = {}

    def fetch(self, ticker: str, tz: str | None) -> ChartDay:
        import yfinance as yf
        from yfinance.config import YfConfig

        YfConfig.debug.hide_exceptions = False  # errors as exceptions, not log lines and empty frames
        t = self._tickers.get(ticker)
        if t is None:
            t = self._tickers[ticker] = yf.Ticker(ticker, session=self.session)
            if tz:
                t._tz = tz  # known zone: skips yfinance's extra chart request that only looks it up
        df = t.history(period="1d", interval="1m", prepost=False, auto_adjust=False, timeout=self.timeout)
        meta = t.get_history_metadata()
        zone = _meta(meta, "exchangeTimezoneName")
        return ChartDay(bars=_bars_of(df), tz=str(zone or tz or ""), **_day_of(meta))

    def series(
        self, ticker: str, tz: str | None, interval: str, start: Any, end: Any, period: str | None = None
    ) -> list[AdjBar]:
        """Bars of any interval over a range (or `period`, e.g. "max"), with Yahoo's adjusted close."""
        import yfinance as yf
        from yfinance.config import YfConfig

        YfConfig.debug.hide_exceptions = False
        t = self._tickers.get(ticker)
        if t is None:
            t = self._tickers[ticker] = yf.Ticker(ticker, session=self.session)
            if tz:
                t._tz = tz
        if period:
            df = t.history(period=period, interval=interval, auto_adjust=False, actions=False, timeout=self.timeout)
        else:
            df = t.history(
                start=start, end=end, interval=interval, auto_adjust=False, actions=False, timeout=self.timeout
            )
        out: list[AdjBar] = []
        if df is None or df.empty:
            return out
        df = df.dropna(subset=["Open", "High", "Low", "Close"])
        stamps = df.index.tz_convert("UTC").as_unit("ms").asi8
        adj = df["Adj Close"] if "Adj Close" in df.columns else df["Close"]
        for ts, o, h, lo, c, a, v in zip(
            stamps, df["Open"], df["High"], df["Low"], df["Close"], adj, df["Volume"].fillna(0), strict=True
        ):
            out.append(AdjBar(int(ts), float(o), float(h), float(lo), float(c), int(v), float(a)))
        return out

    def forget(self, tickers: Sequence[str]) -> None:
        for t in tickers:
            self._tickers.pop(t, None)


def _bars_of(df: Any) -> list[Bar]:
    out: list[Bar] = []
    if df is None or df.empty:
        return out
    df = df.dropna(subset=["Open", "High", "Low", "Close"])
    stamps = df.index.tz_convert("UTC").as_unit("ms").asi8 if hasattr(df.index, "as_unit") else df.index.asi8
    for ts, o, h, lo, c, v in zip(
        stamps, df["Open"], df["High"], df["Low"], df["Close"], df["Volume"].fillna(0), strict=True
    ):
        out.append(Bar(int(ts), float(o), float(h), float(lo), float(c), int(v)))
    if out:  # the chart returns the last trading day; keep only its bars
        last_day = df.index[-1].date()
        out = [b for b, d in zip(out, df.index, strict=True) if d.date() == last_day]
    return out


def _meta(meta: Any, key: str) -> Any:
    """yfinance's metadata mapping has no .get(), and some keys load lazily (another request)."""
    return meta[key] if key in meta and key != "tradingPeriods" else None


def _day_of(meta: Any) -> dict[str, Any]:
    def num(key: str) -> float | None:
        v = _meta(meta, key)
        return float(v) if isinstance(v, int | float) else None

    volume = _meta(meta, "regularMarketVolume")
    mtime = _meta(meta, "regularMarketTime")
    ms = None
    if mtime is not None:
        ms = int(mtime.timestamp() * 1000) if hasattr(mtime, "timestamp") else int(mtime) * 1000
    return {
        "day_high": num("regularMarketDayHigh"),
        "day_low": num("regularMarketDayLow"),
        "day_volume": int(volume) if isinstance(volume, int | float) else None,
        "price": num("regularMarketPrice"),
        "market_time_ms": ms,
        "prev_close": num("chartPreviousClose") or num("previousClose"),
    }
