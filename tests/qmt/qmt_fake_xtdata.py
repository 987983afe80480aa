"""A stand-in for `xtquant.xtdata` with MiniQMT behind it, for the QMT ingestor tests.

Same function names and call shapes as the real module (checked against the wheel's xtdata.py),
same payload shapes as MiniQMT pushes them, and callbacks fire from the fake's own thread, as
QMT's do; exceptions raised by a callback are swallowed and printed, as xtdata's wrapper does.
Tests drive it with `push_ticks`, `push_bars`, `push_l2`, `kill` and `revive`.
"""

from __future__ import annotations

import itertools
import queue
import threading
import traceback
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

from argus_protocol import BEIJING

Row = dict[str, Any]
NOT_RUNNING = "无法连接xtquant服务，请检查QMT-投研版或QMT-极简版是否开启"
LOST = "行情服务连接断开"


def ms(day: str, hhmmss: str) -> int:
    """'20250815', '10:00:03' -> epoch ms of that Beijing time."""
    return int(datetime.strptime(f"{day} {hhmmss}", "%Y%m%d %H:%M:%S").replace(tzinfo=BEIJING).timestamp() * 1000)


def tick(
    t: int,
    price: float,
    *,
    last_close: float | None = None,
    volume: int = 758613,
    status: int = 13,
    amount: float | None = None,
    pvolume: int | None = None,
    step: float = 0.01,
) -> Row:
    """A whole-quote / get_full_tick dict as MiniQMT sends it (volume in lots, pvolume in shares)."""
    lc = round(price - 0.05, 2) if last_close is None else last_close
    return {
        "time": t,
        "lastPrice": price,
        "open": round(lc + 0.01, 2) if price else 0.0,
        "high": round(price + 0.05, 2) if price else 0.0,
        "low": round(price - 0.08, 2) if price else 0.0,
        "lastClose": lc,
        "amount": amount if amount is not None else round(volume * 100 * price, 2),
        "volume": volume,
        "pvolume": pvolume if pvolume is not None else volume * 100,
        "stockStatus": status,
        "openInt": 13,
        "transactionNum": 37062,
        "lastSettlementPrice": lc,
        "settlementPrice": 0.0,
        "pe": 0.0,
        "askPrice": [round(price + step * i, 2) for i in range(1, 6)] if price else [0.0] * 5,
        "bidPrice": [round(price - step * (i - 1), 2) for i in range(1, 6)] if price else [0.0] * 5,
        "askVol": [10929, 12401, 6671, 4555, 6708] if price else [0] * 5,
        "bidVol": [2429, 7127, 7146, 9111, 12189] if price else [0] * 5,
        "volRatio": 0.0,
        "speed1Min": 0.0,
        "speed5Min": 0.0,
    }


def timetag_tick(tag: str, price: float, volume: int = 1000) -> Row:
    """The shape some QMT paths push: `timetag` (Beijing) instead of `time`, no pvolume."""
    row = tick(0, price, volume=volume)
    del row["time"], row["pvolume"]
    row["timetag"] = tag
    return row


def bar(t: int, o: float, h: float, low: float, c: float, volume: int, *, suspend: int = 0, pre: float = 0.0) -> Row:
    """A 1m/5m/1d bar dict (volume in lots for stocks); `t` is QMT's label."""
    return {
        "time": t,
        "open": o,
        "high": h,
        "low": low,
        "close": c,
        "volume": volume,
        "amount": round(volume * 100 * (o + c) / 2, 2),
        "settelementPrice": 0.0,
        "openInterest": 0,
        "preClose": pre or o,
        "suspendFlag": suspend,
    }


def l2(t: int, price: float, volume: int, flag: int, index: int, *, shares: bool = True) -> Row:
    """An l2transaction record; Shenzhen cancels are flag 3 with price 0."""
    return {
        "time": t,
        "price": price,
        "volume": volume,
        "amount": round(price * volume * (1 if shares else 100), 2),
        "tradeIndex": index,
        "buyNo": 1000 + index,
        "sellNo": 2000 + index,
        "tradeType": 0,
        "tradeFlag": flag,
    }


class Records(list):
    """What get_market_data_ex hands back per code, reduced to the one DataFrame method we use."""

    def to_dict(self, orient: str = "dict") -> list[Row]:
        assert orient == "records"
        return [dict(r) for r in self]


class FakeXtData:
    def __init__(self) -> None:
        self.running = True  # is MiniQMT up?
        self.connected = False
        self.enable_hello = True
        self.full_tick: dict[str, Row] = {}
        self.history: dict[tuple[str, str], list[Row]] = {}
        self.dividends: dict[str, list[tuple[str, float]]] = {}  # code -> (ex-date YYYYMMDD, dr), MiniQMT's factors
        self.subs: dict[int, tuple[str, Any, Callable[[Any], None] | None]] = {}
        self.status_cb: Callable[[Any], None] | None = None
        self.calls: list[tuple[Any, ...]] = []
        self.connect_attempts = 0
        self.deliveries = 0
        self.fail_connects = 0  # the next n connects fail although running
        self.lock = threading.RLock()
        self._seq = itertools.count(1)
        self._q: queue.Queue[tuple[Callable[[Any], None], Any] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._deliver, name="fake-qmt-callbacks", daemon=True)
        self._thread.start()

    # --- the xtdata API ------------------------------------------------------------------
    def connect(self, ip: str = "", port: int | None = None, remember_if_success: bool = True) -> FakeXtData:
        with self.lock:
            self.connect_attempts += 1
            self.calls.append(("connect", ip, port))
            if not self.running or self.fail_connects > 0:
                self.fail_connects = max(0, self.fail_connects - 1)
                raise Exception(NOT_RUNNING)
            self.connected = True
            return self

    def disconnect(self) -> None:
        self.connected = False

    def watch_xtquant_status(self, callback: Callable[[Any], None]) -> None:
        self.status_cb = callback

    def subscribe_quote(
        self,
        stock_code: str,
        period: str = "1d",
        start_time: str = "",
        end_time: str = "",
        count: int = 0,
        callback: Callable[[Any], None] | None = None,
    ) -> int:
        with self.lock:
            self._check()
            seq = next(self._seq)
            self.subs[seq] = (period, stock_code, callback)
            self.calls.append(("subscribe_quote", stock_code, period, count))
            return seq

    def subscribe_whole_quote(self, code_list: list[str], callback: Callable[[Any], None] | None = None) -> int:
        with self.lock:
            self._check()
            seq = next(self._seq)
            self.subs[seq] = ("whole", list(code_list), callback)
            self.calls.append(("subscribe_whole_quote", list(code_list)))
            snapshot = {c: dict(r) for c, r in self.full_tick.items() if _covers(code_list, c)}
            if callback is not None and snapshot:
                self._q.put((callback, snapshot))  # whole quote starts with a full snapshot
            return seq

    def unsubscribe_quote(self, seq: int) -> None:
        with self.lock:
            self._check()
            self.calls.append(("unsubscribe_quote", seq))
            self.subs.pop(seq, None)

    def get_full_tick(self, code_list: list[str]) -> dict[str, Row]:
        with self.lock:
            self._check()
            return {c: dict(r) for c, r in self.full_tick.items() if _covers(code_list, c)}

    def get_market_data_ex(
        self,
        field_list: list[str] | None = None,
        stock_list: list[str] | None = None,
        period: str = "1d",
        start_time: str = "",
        end_time: str = "",
        count: int = -1,
        dividend_type: str = "none",
        fill_data: bool = True,
    ) -> dict[str, Any]:
        """{code: DataFrame} as xtdata returns it: one row per bar, indexed by its time as text
        ('20251124' for 1d, '20251124093100' intraday), `time` in epoch ms; prices adjusted by
        MiniQMT's dividend factors (`dividends`) for dividend_type front/back."""
        import pandas as pd

        with self.lock:
            self._check()
            self.calls.append(
                ("get_market_data_ex", tuple(stock_list or []), period, start_time, end_time, count, dividend_type)
            )
            out = {}
            for code in stock_list or []:
                rows = [dict(r) for r in self.history.get((code, period), [])]
                lo, hi = _bound(start_time, False), _bound(end_time, True)
                rows = [r for r in rows if (lo is None or r["time"] >= lo) and (hi is None or r["time"] <= hi)]
                if count > 0:
                    rows = rows[-count:]
                if dividend_type in ("front", "back"):
                    rows = [self._adjusted(code, r, dividend_type) for r in rows]
                fmt = "%Y%m%d" if period == "1d" else "%Y%m%d%H%M%S"
                index = [datetime.fromtimestamp(r["time"] / 1000, BEIJING).strftime(fmt) for r in rows]
                out[code] = pd.DataFrame(rows, index=index)
            return out

    def _adjusted(self, code: str, row: Row, how: str) -> Row:
        day = datetime.fromtimestamp(row["time"] / 1000, BEIJING).strftime("%Y%m%d")
        f = 1.0
        for ex, dr in self.dividends.get(code, []):  # dr: prev close / ex-rights price (> 1)
            if how == "front" and ex > day:
                f /= dr
            elif how == "back" and ex <= day:
                f *= dr
        for k in ("open", "high", "low", "close", "preClose"):
            if k in row:
                row[k] = round(row[k] * f, 3)
        return row

    def _check(self) -> None:
        if not (self.running and self.connected):
            raise Exception(LOST)

    # --- test controls -------------------------------------------------------------------
    def push_ticks(self, rows: Mapping[str, Row]) -> None:
        """MiniQMT saw these ticks: whole-quote subscribers get {code: dict}, per-code ones {code: [dict]}."""
        with self.lock:
            for code, row in rows.items():
                self.full_tick[code] = dict(row)
            for period, target, cb in list(self.subs.values()):
                if cb is None:
                    continue
                if period == "whole":
                    sel = {c: dict(r) for c, r in rows.items() if _covers(target, c)}
                    if sel:
                        self._q.put((cb, sel))
                elif period == "tick" and target in rows:
                    self._q.put((cb, {target: [dict(rows[target])]}))

    def push_bars(self, code: str, period: str, rows: Iterable[Row]) -> None:
        rows = [dict(r) for r in rows]
        with self.lock:
            hist = self.history.setdefault((code, period), [])
            for r in rows:
                if hist and hist[-1]["time"] == r["time"]:
                    hist[-1] = r  # a forming bar re-sent with the same time
                else:
                    hist.append(r)
            for p, target, cb in list(self.subs.values()):
                if cb is not None and p == period and target == code:
                    self._q.put((cb, {code: [dict(r) for r in rows]}))

    def push_l2(self, code: str, rows: Iterable[Row]) -> None:
        rows = [dict(r) for r in rows]
        with self.lock:
            for p, target, cb in list(self.subs.values()):
                if cb is not None and p == "l2transaction" and target == code:
                    self._q.put((cb, {code: rows}))

    def push_raw(self, period: str, target: str, datas: Any) -> None:
        """Deliver `datas` as is to the subscribers of (period, target): for malformed pushes."""
        with self.lock:
            for p, t, cb in list(self.subs.values()):
                if cb is not None and p == period and t == target:
                    self._q.put((cb, datas))

    def kill(self) -> None:
        """MiniQMT exits mid-stream: subscriptions are gone and xtquant reports the disconnect."""
        with self.lock:
            self.running = False
            self.connected = False
            self.subs.clear()
            if self.status_cb is not None:
                self._q.put((self.status_cb, {"address": "127.0.0.1:58610", "status": "disconnected"}))

    def revive(self) -> None:
        with self.lock:
            self.running = True

    def subscribed(self, period: str | None = None) -> list[Any]:
        with self.lock:
            return [t for p, t, _ in self.subs.values() if period in (None, p)]

    def idle(self, timeout: float = 5.0) -> None:
        """Block until every queued callback has run."""
        done = threading.Event()
        self._q.put((lambda _: done.set(), None))
        done.wait(timeout)

    def close(self) -> None:
        self._q.put(None)

    def _deliver(self) -> None:
        while True:
            item = self._q.get()
            if item is None:
                return
            cb, datas = item
            try:
                cb(datas)
                self.deliveries += 1
            except Exception:  # noqa: BLE001 - xtdata's subscribe_callback_wrapper prints and carries on
                print("subscribe callback error:", cb)
                traceback.print_exc()


def _bound(text: str, end: bool) -> int | None:
    """xtdata's start_time/end_time ('YYYYMMDD' or 'YYYYMMDDHHMMSS', Beijing) as epoch ms."""
    if not text:
        return None
    if len(text) == 8:
        text += "235959" if end else "000000"
    return ms(text[:8], f"{text[8:10]}:{text[10:12]}:{text[12:14]}") + (999 if end else 0)


def _covers(targets: Iterable[str], code: str) -> bool:
    market = code.rpartition(".")[2]
    return any(t == code or t == market for t in targets)
