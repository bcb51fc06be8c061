"""Mandarin TN: chorus's rules around the WFST grammar, long input, and what reaches the grammar.

The whole table (tests/data/normalisation/zh.tsv) runs in test_normalisation_table; these
cases pin the rules one by one, with the reading a listener expects.
"""

from __future__ import annotations

import re

import pytest

import workers.normalize_zh as tn
from tests.helpers import growth
from workers.normalize_zh import MAX_WFST_CHARS, fold, normalize_zh, read_digits

PI_DIGITS = "1415926535"


def _plain(text: str) -> str:
    return re.sub(r"[\s,，]", "", text)


def test_a_long_decimal_is_read_digit_by_digit_in_full() -> None:
    assert normalize_zh("3." + PI_DIGITS * 500) == "三点" + "一四一五九二六五三五" * 500


def test_a_long_integer_next_to_a_point_is_read_digit_by_digit() -> None:
    assert normalize_zh("12345678901234567.5") == "一二三四五六七八九零一二三四五六七点五"
    assert _plain(normalize_zh("1" * 5000 + "。")) == "一" * 5000 + "。"


def test_thousands_groups_past_the_place_values_are_read_digit_by_digit() -> None:
    assert _plain(normalize_zh("1" + ",000" * 6 + "人，共12.5%")) == "一" + "零" * 18 + "人共百分之十二点五"


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("电话13812345678", "电话幺三八，幺二三四，五六七八"),  # 幺, grouped 3-4-4 with pauses
        ("+86 138 1234 5678", "加八六，幺三八，幺二三四，五六七八"),
        ("(010)62345678", "零幺零，六二三四，五六七八"),
        ("验证码是123456", "验证码是幺二三四五六"),
        ("增长3-5%", "增长百分之三到百分之五"),
        ("增长3～5％", "增长百分之三到百分之五"),
        ("每箱3公斤-5公斤", "每箱三公斤到五公斤"),
        ("气温-5℃~-1℃", "气温零下五摄氏度到零下一摄氏度"),
        ("票价¥10-20", "票价十到二十元"),
        ("跌幅-3.5%", "跌幅负百分之三点五"),
        ("最终3-2击败对手", "最终三比二击败对手"),
        ("按1:10稀释", "按一比十稀释"),
        ("这座桥有100年历史", "这座桥有一百年历史"),
        ("1990-1995年", "一九九零到一九九五年"),
        ("v2.1.3版本", "v二点一点三版本"),
        ("GPT-4", "GPT 四"),
        ("50m²", "五十平方米"),
        ("120km/h", "一百二十公里每小时"),
        ("¥1,299", "一千二百九十九元"),
        ("¥12.50", "十二点五元"),
        ("不良率3‰", "不良率千分之三"),
        ("➀准备 ❷切菜", "一准备二切菜"),
        ("第Ⅳ章", "第四章"),
        ("銀行行長說還錢", "银行行长说还钱"),
        ("去过2次", "去过两次"),
        ("2月2日", "二月二日"),
        ("第2季", "第二季"),
        ("下午2点开会", "下午两点开会"),
        ("哪儿好啊", "哪儿好啊"),  # the speech build keeps erhua and interjections
        ("在2030年前实现", "在二零三零年前实现"),  # before the year 2030 ...
        ("约2000年前的遗址", "约两千年前的遗址"),  # ... but 2000 years ago
        ("我们3/5那天见", "我们三月五日那天见"),  # a date, not three fifths
        ("房租每月¥3,500，押一付三", "房租每月三千五百元押一付三"),
        ("升级到Chrome 120", "升级到Chrome一百二十"),  # not the service number 幺二零
    ],
)
def test_rules_read_what_the_grammar_gets_wrong(text: str, words: str) -> None:
    assert _plain(normalize_zh(text)) == _plain(words)


def test_phone_groups_are_separated_by_pauses() -> None:
    assert normalize_zh("13800138000") == "幺三八，零零幺三，八零零零"


def test_fold_maps_width_enclosed_roman_and_script() -> None:
    assert fold("１２：３０") == "12:30"
    assert fold("⑳") == " 20 "
    assert fold("½") == "二分之一"
    assert fold("後面") == "后面"
    assert fold("−5") == "-5"


def test_read_digits() -> None:
    assert read_digits("0123456789") == "零一二三四五六七八九"
    assert read_digits("110", yao=True) == "幺幺零"


@pytest.mark.parametrize(
    "text",
    [
        "3." + "1" * 5000,
        "1" * 5000 + ".",
        "1" * 2500 + "." + "2" * 2500,
        "1" + ",000" * 1250,
        "价格" + "7" * 3000 + ".5元，" + "8" * 3000 + "%",
        "第3-5章，" * 300,
        "共" + "12a" * 1000,
    ],
)
def test_long_input_reaches_the_grammar_in_short_pieces(text: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Linear: the grammar's cost grows with its input, so no piece handed to it is long."""
    grammar = tn._GRAMMAR.get()
    longest = 0

    class Recording:
        def normalize(self, piece: str) -> str:
            nonlocal longest
            longest = max(longest, len(piece))
            return grammar.normalize(piece)

    monkeypatch.setattr(tn._GRAMMAR, "grammar", Recording())
    tn.cardinal.cache_clear()
    out = normalize_zh(text)
    assert longest <= MAX_WFST_CHARS
    assert not re.search(r"\d", out), "every digit read"


def test_cost_grows_linearly_with_length() -> None:
    """Ten times the text costs about ten times as much, not a hundred (a ratio in one run, not a timing)."""
    unit = "会议在2024年3月5日下午3:05开始，预算¥1,299，增长3-5%。"
    assert growth(normalize_zh, unit) < 25
