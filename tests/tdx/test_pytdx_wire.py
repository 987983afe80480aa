"""The fake server speaks TDX well enough that the real pytdx client decodes it (and shows its defects)."""

from __future__ import annotations

import socket

import pytest
from argus_ingestor_tdx.client import EmptyAnswer, TdxConnection, TdxError
from fake_tdx import FakeTdxServer
from fixtures_tdx import ETF, HALTED_0, HALTED_100, PING_AN, THIN
from pytdx.hq import TdxHq_API


def pytdx(server: FakeTdxServer) -> TdxHq_API:
    api = TdxHq_API()
    assert api.connect("127.0.0.1", server.port, time_out=2)
    return api


def test_setup_then_quotes_bars_minutes_transactions_decode(tdx_server) -> None:
    server = tdx_server()
    api = pytdx(server)
    assert server.requests["setup"] == 3
    q = api.get_security_quotes([PING_AN])[0]
    assert (q["code"], q["price"], q["last_close"], q["vol"]) == ("000001", 10.5, 10.4, 12345)
    assert q["bid1"] == 10.49 and q["ask5"] == 10.55 and q["servertime"] == "10:00:15.000"
    bars = api.get_security_bars(0, 0, "000001", 0, 3)
    assert [b["datetime"] for b in bars] == ["2026-11-23 09:50", "2026-11-23 09:55", "2026-11-23 10:00"]
    assert bars[-1]["close"] == 10.44 and bars[-1]["vol"] == 1502.0
    days = api.get_security_bars(9, 0, "000001", 0, 2)
    assert [b["datetime"] for b in days] == ["2026-11-22 15:00", "2026-11-23 15:00"]
    minutes = api.get_minute_time_data(0, "000001")
    assert len(minutes) == 31 and minutes[0]["price"] == 10.4 and minutes[30]["vol"] == 130
    ticks = api.get_transaction_data(0, "000001", 0, 5)
    assert [t["vol"] for t in ticks] == [35, 36, 37, 38, 39]
    older = api.get_transaction_data(0, "000001", 25, 100)  # start counts back from the newest
    assert [t["vol"] for t in older] == [10, 11, 12, 13, 14]
    api.disconnect()


def test_large_answers_travel_zlib_compressed(tdx_server) -> None:
    server = tdx_server()
    api = pytdx(server)
    many = api.get_transaction_data(0, "000001", 0, 30)
    assert len(many) == 30  # a >64-byte body: the server compressed it and pytdx inflated it
    api.disconnect()


def test_pytdx_defects_the_ingestor_handles(tdx_server) -> None:
    api = pytdx(tdx_server())
    # suspended servertime 0 or 100: pytdx drops the whole batch
    assert api.get_security_quotes([PING_AN, HALTED_0]) is None
    assert api.get_security_quotes([PING_AN, HALTED_100]) is None
    # ETF prices divided by 100 instead of 1000
    assert api.get_security_quotes([ETF])[0]["price"] == 39.12
    # float32 volumes/amounts below 64 decode wrongly
    assert api.get_security_bars(8, 0, "000004", 0, 1)[0]["vol"] != 14.0
    assert api.get_security_quotes([THIN])[0]["amount"] != 60.0
    api.disconnect()


def test_our_connection_fixes_what_pytdx_gets_wrong(tdx_server) -> None:
    conn = TdxConnection("127.0.0.1", tdx_server().port, 2)
    rows = conn.quotes([PING_AN, HALTED_0, HALTED_100, THIN])
    by_code = {r["code"]: r for r in rows}
    assert by_code["000001"]["servertime"] == "10:00:15.000"
    assert by_code["600001"]["servertime"] == "" and by_code["000005"]["servertime"] == ""
    assert by_code["000004"]["amount"] == 60.0
    assert [b["vol"] for b in conn.bars(8, 0, "000004", 0, 3)] == [12.0, 13.0, 14.0]
    conn.close()


def test_empty_body_is_an_error_not_no_data(tdx_server) -> None:
    server = tdx_server()
    server.empty = {"quotes", "minutes"}
    conn = TdxConnection("127.0.0.1", server.port, 2)
    with pytest.raises(EmptyAnswer, match="empty body"):
        conn.quotes([PING_AN])
    conn = TdxConnection("127.0.0.1", server.port, 2)
    assert conn.bars(9, 0, "000001", 0, 1)  # other commands still answer
    with pytest.raises(EmptyAnswer):
        conn.minutes(0, "000001")


def test_refused_login_and_dead_host_are_errors_with_reasons(tdx_server) -> None:
    server = tdx_server()
    server.refuse_login = True
    with pytest.raises(TdxError, match="closed"):
        TdxConnection("127.0.0.1", server.port, 2)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        free = s.getsockname()[1]
    with pytest.raises(TdxError) as refused:
        TdxConnection("127.0.0.1", free, 2)
    assert refused.value.reason == "connection refused"  # not pytdx's "cannot connect (other errors)"


def test_host_dying_mid_answer_is_a_closed_connection(tdx_server) -> None:
    server = tdx_server()
    server.die_after = 1
    conn = TdxConnection("127.0.0.1", server.port, 2)
    assert conn.quotes([PING_AN])
    with pytest.raises(TdxError, match="connection closed"):
        conn.transactions(0, "000001", 0, 30)
