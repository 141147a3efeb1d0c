"""No wrong number: every price and count the APIs publish parses back exactly, anything else is an error.

The formats are the ones the reference documents and its verbatim rows show: JSON numbers and numeric strings
("3", 1.2, "0051228"), thousands separators ("1,234.5"), the null sentinels ("-", blank), circled digits, KSPO
dividend texts ("(2-7-5)3.4", "(2)1.2 (7)2.1", "①-②-⑥3.4").
"""

from __future__ import annotations

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from processors.errors import NormalizeError
from processors.normalize import common as c

TENTHS = st.integers(min_value=10, max_value=999_999)  # prices 1.0 to 99,999.9, in tenths
CIRCLED = "⓪①②③④⑤⑥⑦⑧⑨⑩⑪⑫⑬⑭⑮⑯⑰⑱⑲⑳"


def written(tenths: int) -> list[str]:
    """Every way the APIs write a price of ``tenths / 10``."""
    whole, fraction = divmod(tenths, 10)
    out = [f"{whole}.{fraction}", f"{whole:,}.{fraction}"]
    if fraction == 0:
        out += [str(whole), f"{whole:,}"]
    return out


@settings(max_examples=2000, deadline=None)
@given(TENTHS)
@example(12345)  # 1,234.5: read as 1.0 before
@example(10)
@example(999_999)
def test_every_price_format_parses_back_exactly(tenths):
    expected = tenths / 10
    whole, fraction = divmod(tenths, 10)
    assert c.number(expected) == expected
    if fraction == 0:
        assert c.number(whole) == expected
    for text in written(tenths):
        assert c.number(text) == expected, text
        assert c.number(f" {text} ") == expected, text
        assert c.combos(f"(2-7-5){text}") == [([2, 7, 5], expected)], text
        assert c.combos(f"(3){text} (7){text}") == [([3], expected), ([7], expected)], text
        assert c.combos(f"①-②-⑥{text}") == [([1, 2, 6], expected)], text
        assert c.combos(f"{CIRCLED[12]}{text}") == [([12], expected)], text


@pytest.mark.parametrize(
    ("text", "expected"),
    [  # verbatim values of the reference's rows
        ("(2-7)5.6", [([2, 7], 5.6)]),
        ("①-②1.9", [([1, 2], 1.9)]),
        ("①-②-⑥3.4", [([1, 2, 6], 3.4)]),
        ("①1.1", [([1], 1.1)]),
        ("②1.4", [([2], 1.4)]),
        ("(2)1.2 (7)2.1", [([2], 1.2), ([7], 2.1)]),
        ("(2-7-5)1,234.5", [([2, 7, 5], 1234.5)]),
        ("-", []),
        ("", []),
    ],
)
def test_dividend_texts(text, expected):
    assert c.combos(text) == expected


@pytest.mark.parametrize(
    "text",
    ["(2-7-5)3.4 extra", "(2-7)1,2,3", "(2-7)1.2.3", "(2-7)", "①-②", "3.4", "(2-7)nan", "①-②1e3", "(a-b)3.4"],
)
def test_dividend_texts_not_understood_are_errors(text):
    with pytest.raises(NormalizeError, match="dividend text not understood"):
        c.combos(text)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0051228", 51228),
        (118011, 118011),
        ("1,200", 1200),
        (1200.0, 1200),
        ("75.0", 75),
        ("③", 3),
        (" 57 ", 57),
        ("-", None),
        ("", None),
        (None, None),
    ],
)
def test_integers_in_the_published_formats(value, expected):
    assert c.integer(value) == expected


@pytest.mark.parametrize("value", ["52.5", 52.5, "1e5", "nan", "1_000", "1,2,3", "12,00", "5kg", "+-3", True])
def test_numbers_not_read_exactly_are_errors(value):
    with pytest.raises(NormalizeError):
        c.integer(value)


@pytest.mark.parametrize("value", ["1e5", "nan", "inf", float("nan"), float("inf"), "1_000", "1,2,3", "1.2.3", "x1"])
def test_prices_not_read_exactly_are_errors(value):
    with pytest.raises(NormalizeError):
        c.number(value)


def test_zero_as_null_where_asked():
    assert c.integer("0", zero_is_null=True) is None and c.integer(0) == 0
    assert c.number("0.0", zero_is_null=True) is None and c.number("1,000.0") == 1000.0
