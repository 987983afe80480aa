"""Blocking TDX calls through pytdx, one connection per worker thread, with pytdx's defects fixed.

pytdx defects handled here rather than inherited:
- `get_volume` mis-decodes float32 values below 128 (volumes/amounts ≤ 64 come out as thousands);
  the bar and quote parsers run with an exact IEEE-754 decode in its place.
- a quote whose `servertime` is 0 or 100 (suspended) raises inside the parser, and pytdx's API then
  returns None for the whole batch; our quote parser leaves that row's `servertime` empty instead.
- pytdx's API swallows errors into None and may retry by sleeping; we call the parsers directly so
  every failure surfaces as a `TdxError` with a reason, and failover is ours to decide.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import types
import zlib
from typing import Any

from pytdx.errors import TdxConnectionError
from pytdx.hq import TdxHq_API
from pytdx.parser.base import BaseParser, ResponseHeaderRecvFails, ResponseRecvFails, SendRequestPkgFails
from pytdx.parser.get_history_minute_time_data import GetHistoryMinuteTimeData
from pytdx.parser.get_history_transaction_data import GetHistoryTransactionData
from pytdx.parser.get_minute_time_data import GetMinuteTimeData
from pytdx.parser.get_security_bars import GetSecurityBarsCmd
from pytdx.parser.get_security_quotes import GetSecurityQuotesCmd
from pytdx.parser.get_transaction_data import GetTransactionData
from pytdx.parser.get_xdxr_info import GetXdXrInfo

Row = dict[str, Any]


class TdxError(Exception):
    """A host failed to answer usefully; `reason` is what STATUS and logs show."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class EmptyAnswer(TdxError):
    pass


def exact_float32(raw: int) -> float:
    return struct.unpack("<f", struct.pack("<I", raw & 0xFFFFFFFF))[0]


def _with_exact_volume(cls: type[BaseParser]) -> type[BaseParser]:
    # Same compiled parser, but its global `get_volume` resolves to the exact decode; pytdx itself stays untouched.
    parse = cls.parseResponse
    fixed = types.FunctionType(
        parse.__code__, {**parse.__globals__, "get_volume": exact_float32}, parse.__name__, parse.__defaults__
    )
    return type(cls.__name__, (cls,), {"parseResponse": fixed})


_Bars = _with_exact_volume(GetSecurityBarsCmd)


class _Quotes(_with_exact_volume(GetSecurityQuotesCmd)):  # type: ignore[misc]
    def _format_time(self, time_stamp: str) -> str:
        try:
            return str(super()._format_time(time_stamp))
        except (ValueError, IndexError):
            return ""  # suspended: servertime 0/100 is no time of day


class TdxConnection:
    """One TCP connection to one TDX server. Not thread-safe: its worker thread owns it."""

    def __init__(self, host: str, port: int, timeout: float) -> None:
        self.host = host
        self.port = port
        self.name = f"{host}:{port}"
        self.api = TdxHq_API(raise_exception=True)
        try:
            self.api.connect(host, port, time_out=timeout)
        except Exception as e:  # noqa: BLE001 - every connect/setup failure is a host failure
            self.close()
            raise TdxError(_reason(e, self.api)) from None
        if self.api.client is None:
            raise TdxError("connect failed")

    def close(self) -> None:
        client = self.api.client
        self.api.client = None
        if client is not None:
            with contextlib.suppress(OSError):
                client.shutdown(socket.SHUT_RDWR)  # wakes a recv blocked in the worker thread
            with contextlib.suppress(OSError):
                client.close()

    def _call(self, cmd_cls: type[BaseParser], *params: Any) -> Any:
        if self.api.client is None:
            raise TdxError("not connected")
        cmd = cmd_cls(self.api.client)
        cmd.setParams(*params)
        try:
            return cmd.call_api()
        except Exception as e:  # noqa: BLE001 - socket, protocol and parse errors all mean: try another host
            reason = _reason(e, self.api)
            self.close()
            if reason == "empty body":
                raise EmptyAnswer(reason) from None
            raise TdxError(reason) from None

    def quotes(self, stocks: list[tuple[int, str]]) -> list[Row]:
        return list(self._call(_Quotes, stocks) or [])

    def bars(self, category: int, market: int, code: str, start: int, count: int) -> list[Row]:
        return list(self._call(_Bars, category, market, code, start, count) or [])

    def minutes(self, market: int, code: str) -> list[Row]:
        return list(self._call(GetMinuteTimeData, market, code) or [])

    def transactions(self, market: int, code: str, start: int, count: int) -> list[Row]:
        return list(self._call(GetTransactionData, market, code, start, count) or [])

    # history (tdx/history.py) ----------------------------------------------------------------
    def xdxr(self, market: int, code: str) -> list[Row]:
        """除权除息 and share-capital records, oldest first (category 1: cash, bonus and rights per 10 shares)."""
        return list(self._call(GetXdXrInfo, market, code) or [])

    def history_minutes(self, market: int, code: str, yyyymmdd: int) -> list[Row]:
        return list(self._call(GetHistoryMinuteTimeData, market, code, yyyymmdd) or [])

    def history_transactions(self, market: int, code: str, start: int, count: int, yyyymmdd: int) -> list[Row]:
        return list(self._call(GetHistoryTransactionData, market, code, start, count, yyyymmdd) or [])


def _reason(e: BaseException, api: TdxHq_API) -> str:
    if isinstance(e, TimeoutError | socket.timeout):
        return "timeout"
    if isinstance(e, TdxConnectionError):
        # pytdx re-raises every connect failure as "other errors"; the socket's own error says which
        cause = e.__cause__ or e.__context__
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused"
        if isinstance(cause, TimeoutError | socket.timeout) or "timeout" in str(e):
            return "connect timeout"
        if isinstance(cause, OSError):
            return f"cannot connect: {cause.strerror or cause}"
        return f"cannot connect ({e})"
    if isinstance(e, ResponseRecvFails):
        # pytdx raises the same error for a zero-length body and for a peer that hung up; peek to tell.
        return "empty body" if _still_open(api) else "connection closed"
    if isinstance(e, ResponseHeaderRecvFails | SendRequestPkgFails):
        return "connection closed"
    if isinstance(e, ConnectionRefusedError):
        return "connection refused"
    if isinstance(e, OSError):
        return f"socket error: {e.strerror or e}"
    if isinstance(e, zlib.error | struct.error | IndexError | ValueError | UnicodeDecodeError):
        return f"malformed answer: {type(e).__name__}"
    original = getattr(e, "original_exception", None)
    if original is not None:
        return _reason(original, api)
    return f"{type(e).__name__}: {e}"


def _still_open(api: TdxHq_API) -> bool:
    sock = api.client
    if sock is None:
        return False
    timeout = sock.gettimeout()
    try:
        sock.settimeout(0)  # with a timeout set, Python would wait for readability instead of peeking
        return sock.recv(1, socket.MSG_PEEK) != b""
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        with contextlib.suppress(OSError):
            sock.settimeout(timeout)
