"""Mandarin frontend: numbers in words, tone sandhi, Latin letters, symbols in Kokoro's set."""

from __future__ import annotations

import pytest

from tests.helpers import SYMBOLS
from workers import espeak
from workers.frontend_zh import MandarinFrontend, apply_sandhi, merge_erhua, read_latin, silent_on_purpose, spell_latin
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
        ("8:00", "八点"),
        ("电话13812345678", "电话幺三八，幺二三四，五六七八"),
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


@pytest.mark.parametrize(
    ("words", "tones"),
    [
        ((("一百", ["yi1", "bai3"]),), [["yi4", "bai3"]]),  # before 百/千: yì
        ((("一千", ["yi1", "qian1"]),), [["yi4", "qian1"]]),
        ((("一万", ["yi1", "wan4"]),), [["yi2", "wan4"]]),  # before 万/亿: yí
        ((("一月", ["yi2", "yue4"]),), [["yi1", "yue4"]]),  # a date digit is yī, whatever the phrase table says
        ((("第一名", ["di4", "yi4", "ming2"]),), [["di4", "yi1", "ming2"]]),
        ((("一点五", ["yi4", "dian3", "wu3"]),), [["yi1", "dian2", "wu3"]]),  # a decimal (and 3-3 sandhi)
        ((("一点儿", ["yi4", "dian3R"]),), [["yi4", "dian3R"]]),  # "a little" keeps yì
        ((("十一", ["shi2", "yi1"]),), [["shi2", "yi1"]]),
        ((("不要", ["bu4", "yao4"]),), [["bu2", "yao4"]]),
        ((("不好", ["bu4", "hao3"]),), [["bu4", "hao3"]]),
        ((("老", ["lao3"]), ("李", ["li3"]), ("买", ["mai3"]), ("好", ["hao3"]), ("酒", ["jiu3"])),
         [["lao2"], ["li2"], ["mai2"], ["hao2"], ["jiu3"]]),  # a run of monosyllables
        ((("小", ["xiao3"]), ("老虎", ["lao3", "hu3"])), [["xiao2"], ["lao2", "hu3"]]),
    ],
)  # fmt: skip
def test_textbook_sandhi_and_yi_in_numbers(words: tuple[tuple[str, list[str]], ...], tones: list[list[str]]) -> None:
    assert apply_sandhi(list(words)) == tones


def test_erhua_joins_the_syllable_before_it(fe: MandarinFrontend) -> None:
    words = ["哪儿", "一会儿", "女儿", "婴儿"]
    pinyin = [["na3", "er5"], ["yi1", "hui4", "er5"], ["nv3", "er2"], ["ying1", "er2"]]
    assert merge_erhua(words, pinyin) == [["na3R"], ["yi1", "hui4R"], ["nv3", "er2"], ["ying1", "er2"]]
    assert fe.phonemize("哪儿") == "na↓ɚ"  # no tone of its own: not the syllable ɚ↗
    assert fe.phonemize("一会儿").endswith("xwei↘ɚ")
    assert "ɚ↗" in fe.phonemize("女儿")  # 女儿 and 婴儿 keep two syllables


@pytest.mark.skipif(not espeak.available(), reason="needs espeak-ng, which bin/test installs")
def test_an_english_word_inside_mandarin_is_read_in_english(fe: MandarinFrontend) -> None:
    ph = fe.phonemize("我们明天用iPhone开会")
    assert "ˈI fˈOn" in ph  # espeak-ng's /ˈaɪfoʊn/ in Kokoro's symbols, not the letters i-p-h-o-n-e
    assert "pˈi" not in ph and set(ph) <= set(SYMBOLS)
    assert read_latin("CEO") == spell_latin("CEO")  # acronyms by letter
    assert read_latin("WiFi") == "wˈI fˌI"


def test_dropped_characters_are_logged_unless_dropped_on_purpose(
    fe: MandarinFrontend, caplog: pytest.LogCaptureFixture
) -> None:
    on_purpose = ["🙂", "★", "\u200b", "\x07", "\ufeff", "\ue000"]  # emoji, symbols, format, control, private use
    assert all(silent_on_purpose(c) for c in on_purpose)
    with caplog.at_level("WARNING", logger="workers.frontend_zh"):
        assert fe.phonemize("你好" + "".join(on_purpose)) == "ni↗xau↓"
    assert not caplog.records
    with caplog.at_level("WARNING", logger="workers.frontend_zh"):
        fe.phonemize("你好ㄅ\u0e01")  # bopomofo and Thai: letters this frontend has no reading for
    assert caplog.records and "U+0E01" in caplog.text
