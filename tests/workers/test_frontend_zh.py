"""Mandarin frontend: numbers in words, tone sandhi, Latin letters, symbols in Kokoro's set."""

from __future__ import annotations

import pytest

from tests.helpers import SYMBOLS
from workers.frontend_zh import MandarinFrontend, apply_sandhi
from workers.normalize_zh import normalize_zh


@pytest.fixture(scope="module")
def fe() -> MandarinFrontend:
    return MandarinFrontend()


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("价格是¥12.5", "价格是十二点五元"),
        ("增长了50%", "增长了百分之五十"),
        ("2024-03-05", "二零二四年三月五日"),
        ("2024年3月5日", "二零二四年三月五日"),
        ("下午3:05", "下午三点零五分"),
        ("8:00", "八点整"),
        ("电话13812345678", "电话一三八一二三四五六七八"),
        ("1,000,000人", "一百万人"),
        ("25℃", "二十五摄氏度"),
        ("１２３", "一百二十三"),
        ("$5", "五美元"),
    ],
)
def test_numbers_are_read_out(text: str, words: str) -> None:
    assert normalize_zh(text) == words


def _sandhi(*words: tuple[str, list[str]]) -> list[list[str]]:
    return apply_sandhi(list(words))


def test_third_tone_sandhi() -> None:
    assert _sandhi(("你好", ["ni3", "hao3"])) == [["ni2", "hao3"]]
    assert _sandhi(("展览馆", ["zhan3", "lan3", "guan3"])) == [["zhan2", "lan2", "guan3"]]
    assert _sandhi(("我", ["wo3"]), ("很", ["hen3"]), ("好", ["hao3"])) == [["wo2"], ["hen2"], ["hao3"]]


def test_yi_and_bu() -> None:
    assert _sandhi(("一样", ["yi1", "yang4"])) == [["yi2", "yang4"]]
    assert _sandhi(("一起", ["yi1", "qi3"])) == [["yi4", "qi3"]]
    assert _sandhi(("看一看", ["kan4", "yi1", "kan4"])) == [["kan4", "yi5", "kan4"]]
    assert _sandhi(("第一", ["di4", "yi1"])) == [["di4", "yi1"]]
    assert _sandhi(("不是", ["bu4", "shi4"])) == [["bu2", "shi4"]]


def test_phonemes_use_only_kokoro_symbols(fe: MandarinFrontend) -> None:
    ph = fe.phonemize("你好，世界！今天天气很好，我们一起去公园散步吧。价格是12.5元。")
    assert set(ph) <= set(SYMBOLS)
    assert ph.startswith("ni↗xau↓, ")


def test_english_inside_chinese_is_spelled_not_dropped(fe: MandarinFrontend) -> None:
    ph = fe.phonemize("我在用GPU和Python写code")
    assert "ʤˈi pˈi jˈu" in ph
    assert set(ph) <= set(SYMBOLS)


@pytest.mark.parametrize("text", ["", "   ", "！？。", "🙂🙂", "\u200b", "a", "123456789012345678901234567890"])
def test_odd_input_does_not_crash(fe: MandarinFrontend, text: str) -> None:
    assert set(fe.phonemize(text)) <= set(SYMBOLS)
