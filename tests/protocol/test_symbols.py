"""Symbol validation is the guard between client input and NATS subject syntax."""

from __future__ import annotations

import string

import pytest
from argus_protocol import (
    MARKETS,
    InvalidSymbol,
    Stream,
    Subjects,
    canonical_symbol,
    is_valid_symbol,
    parse_symbol,
    validate_stream,
)
from hypothesis import given
from hypothesis import strategies as st

CODE_CHARS = string.ascii_letters + string.digits + "_-"
codes = st.text(alphabet=CODE_CHARS, min_size=1, max_size=32)
markets = st.sampled_from(sorted(MARKETS))


@pytest.mark.parametrize(
    "symbol",
    ["000001.SZ", "600000.SH", "430047.BJ", "00700.HK", "AAPL.US", "BRK-B.US", "IF2412.IF", "rb2501.SF", "GSPC.IDX"],
)
def test_canonical_symbols_pass(symbol: str) -> None:
    code, market = parse_symbol(symbol)
    assert f"{code}.{market}" == symbol


@pytest.mark.parametrize(
    "symbol",
    [
        "",
        "000001",
        "000001.",
        ".SZ",
        "000001.sz",
        "000001.XX",
        "0000 1.SZ",
        "*.SZ",
        ">.SZ",
        "000001.SZ.SZ",
        "a.b.SZ",
        "000001.S*",
        "x" * 33 + ".SZ",
        "000001.SZ ",
        "\t.SZ",
        "宁德.SZ",
        None,
        123,
        ["000001.SZ"],
    ],
)
def test_bad_symbols_are_refused(symbol: object) -> None:
    with pytest.raises(InvalidSymbol):
        parse_symbol(symbol)
    assert not is_valid_symbol(symbol)


@given(codes, markets)
def test_every_valid_symbol_makes_a_well_formed_subject(code: str, market: str) -> None:
    symbol = f"{code}.{market}"
    assert is_valid_symbol(symbol)
    subjects = Subjects()
    for dtype in ("quote", "trade"):
        subject = subjects.publish(validate_stream(dtype, symbol))
        tokens = subject.split(".")
        assert len(tokens) == 3 and all(tokens)
        assert not any(c in subject for c in "*> \t\r\n")
        assert (
            subjects.parse_data(subject)
            == Stream(dtype, symbol)
            == subjects.parse_data(subjects.data(Stream(dtype, symbol)))
        )
    # a bar or minute's versions: forming and closed on subjects of their own, one wildcard for both
    for stream in (validate_stream("tick", symbol), validate_stream("kline", symbol, "5m")):
        forming, closed = subjects.publish(stream), subjects.publish(stream, closed=True)
        assert forming.endswith(".forming") and closed.endswith(".closed")
        assert not any(c in forming + closed for c in "*> \t\r\n")
        assert subjects.data(stream) == forming.rpartition(".")[0] + ".*"
        assert (
            subjects.parse_data(forming)
            == subjects.parse_data(closed)
            == subjects.parse_data(subjects.data(stream))
            == stream
        )


@given(st.text(max_size=48))
def test_no_accepted_string_can_inject_subject_syntax(text: str) -> None:
    """Whatever a client sends, an accepted symbol has exactly two clean tokens."""
    if not is_valid_symbol(text):
        return
    code, _, market = text.partition(".")
    assert code and market and market in MARKETS
    for bad in "*> \t\r\n\x00.":
        assert bad not in code
    assert text.count(".") == 1


@given(st.text(alphabet=string.printable + "中文", min_size=1, max_size=40), markets)
def test_codes_with_forbidden_characters_are_refused(code: str, market: str) -> None:
    symbol = f"{code}.{market}"
    if any(c not in CODE_CHARS for c in code) or len(code) > 32:
        assert not is_valid_symbol(symbol)


def test_bad_prefix_refused_and_prefix_applied() -> None:
    for bad in ("a b", "x.*", "x.>", ".x", "x."):
        with pytest.raises(ValueError):
            Subjects(bad)
    s = Subjects("prod")
    subject = s.data(Stream("quote", "000001.SZ"))
    assert subject == "prod.quote.000001.SZ"
    assert s.parse_data(subject) == Stream("quote", "000001.SZ")
    with pytest.raises(ValueError):
        s.parse_data("quote.000001.SZ")


def test_stream_validation() -> None:
    assert validate_stream("kline", "000001.SZ", "1d").key == "kline:000001.SZ:1d"
    with pytest.raises(ValueError):
        validate_stream("kline", "000001.SZ", "2m")
    with pytest.raises(ValueError):
        validate_stream("quote", "000001.SZ", "1m")
    with pytest.raises(ValueError):
        validate_stream("depth", "000001.SZ")
    with pytest.raises(ValueError):
        Subjects().demand("gw.1")


@pytest.mark.parametrize(
    ("spelling", "canonical"),
    [
        ("700.HK", "00700.HK"),
        ("0700.HK", "00700.HK"),
        ("000700.HK", "00700.HK"),
        ("aapl.US", "AAPL.US"),
        ("brk-b.US", "BRK-B.US"),
        ("1.SZ", "000001.SZ"),
        ("RB2501.SF", "rb2501.SF"),
        ("M2501.DF", "m2501.DF"),
        ("SC2501.INE", "sc2501.INE"),
        ("if2412.IF", "IF2412.IF"),
        ("sr501.ZF", "SR501.ZF"),
        ("gspc.IDX", "GSPC.IDX"),
    ],
)
def test_every_spelling_has_one_canonical_form(spelling: str, canonical: str) -> None:
    assert canonical_symbol(spelling) == canonical
    assert canonical_symbol(canonical) == canonical


@given(codes, markets)
def test_canonical_form_is_valid_idempotent_and_shared_by_case_and_zero_variants(code: str, market: str) -> None:
    symbol = f"{code}.{market}"
    canon = canonical_symbol(symbol)
    assert is_valid_symbol(canon) and canonical_symbol(canon) == canon
    assert canonical_symbol(f"{code.swapcase()}.{market}") == canon  # two cases: one instrument
    if code.isdigit() and len(code) < 32:
        assert canonical_symbol(f"0{code}.{market}") == canon or market not in ("SZ", "SH", "BJ", "HK")
