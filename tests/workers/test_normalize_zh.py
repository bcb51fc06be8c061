"""Mandarin number reading: numbers too long for cn2an are read digit by digit, others as before."""

from __future__ import annotations

import re

import cn2an
import pytest

from workers.normalize_zh import MAX_FRACTION_DIGITS, MAX_PLACE_DIGITS, normalize_zh, read_digits

PI_DIGITS = "1415926535"


def test_a_long_decimal_is_read_digit_by_digit_in_full() -> None:
    # cn2an kept only the first 16 fraction digits (and took quadratic time to get there).
    assert normalize_zh("3." + PI_DIGITS * 500) == "三点" + "一四一五九二六五三五" * 500


def test_a_long_integer_next_to_a_point_is_read_digit_by_digit() -> None:
    # cn2an cannot place 17 digits; the old fallback read "…七.五", dropping the 点.
    assert normalize_zh("12345678901234567.5") == "一二三四五六七八九零一二三四五六七点五"
    assert normalize_zh("1" * 5000 + ".") == "一" * 5000 + "."


def test_thousands_groups_past_the_place_values_are_read_digit_by_digit() -> None:
    assert normalize_zh("1" + ",000" * 6 + "人，共12.5%") == "一" + "零" * 18 + "人,共百分之十二点五"


def test_a_long_negative_percentage_keeps_its_sign_and_percent() -> None:
    assert normalize_zh("-3." + "9" * 20 + "%") == "百分之负三点" + "九" * 20


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("3.14159265358979", "三点一四一五九二六五三五八九七九"),
        ("0." + "5" * MAX_FRACTION_DIGITS, "零点" + "五" * MAX_FRACTION_DIGITS),
        ("1234567890123456.5", "一千二百三十四万五千六百七十八亿九千零一十二万三千四百五十六点五"),
        ("1,000,000人", "一百万人"),
        ("-3.5", "负三点五"),
        ("-12.5%", "百分之负十二点五"),
        ("1/3", "三分之一"),
        ("共5个", "共五个"),
        ("电话13812345678", "电话一三八一二三四五六七八"),
    ],
)
def test_numbers_within_cn2an_limits_read_as_before(text: str, words: str) -> None:
    assert normalize_zh(text) == words


@pytest.mark.parametrize(
    "text",
    [
        "3." + "1" * 5000,
        "1" * 5000 + ".",
        "1" * 2500 + "." + "2" * 2500,
        "1" + ",000" * 1250,
        "价格" + "7" * 3000 + ".5元，" + "8" * 3000 + "%",
    ],
)
def test_no_long_digit_run_reaches_cn2an(text: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Linear, by bounding cn2an's input: its patterns retry a digit run from every digit (quadratic)."""
    longest = 0
    transform = cn2an.transform

    def recording(inputs: str, method: str = "cn2an") -> str:
        nonlocal longest
        longest = max([longest, *(len(run) for run in re.findall(r"[\d.]+", inputs))])
        out: str = transform(inputs, method)
        return out

    monkeypatch.setattr(cn2an, "transform", recording)
    out = normalize_zh(text)
    assert longest <= MAX_PLACE_DIGITS + 1 + MAX_FRACTION_DIGITS
    assert not re.search(r"\d", out)
    assert sum(map(out.count, "零一二三四五六七八九")) == sum(map(str.isdigit, text)), "every digit read, none dropped"


def test_read_digits() -> None:
    assert read_digits("0123456789") == "零一二三四五六七八九"
