"""Mandarin polyphones in context (workers.polyphones): the issues' examples, each rule both ways, the
labelled lists' accuracy floors, and what the function leaves alone."""

from __future__ import annotations

import re
import threading
from pathlib import Path

import jieba
import pytest
from pypinyin import Style, lazy_pinyin

from workers.polyphones import word_pinyin

DATA = Path(__file__).resolve().parents[1] / "data" / "polyphones"
_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")

# Measured with bench/polyphones.py when the rules were last changed: zh.tsv 526/531 (99.1%; the
# rules were written on it), zh_holdout.tsv 119/124 (96.0%; written after they were frozen, 88.7%
# then). pypinyin alone: 86.6% and 52.4%. The floors leave a few rows of margin.
FLOORS = {"zh.tsv": 0.97, "zh_holdout.tsv": 0.93}


def read(sentence: str) -> list[str]:
    """One reading per character: word_pinyin over each Han run, the character itself elsewhere."""
    out = list(sentence)
    for m in _HAN.finditer(sentence):
        out[m.start() : m.end()] = [p for ps in word_pinyin(jieba.lcut(m.group(0))) for p in ps]
    return out


def rows(name: str) -> list[tuple[str, int, str]]:
    lines = (DATA / name).read_text(encoding="utf-8").splitlines()
    data = [ln.split("\t") for ln in lines if ln and not ln.startswith("#") and not ln.startswith("sentence\t")]
    return [(s, int(i), py) for s, i, py in data]


@pytest.mark.parametrize(
    ("sentence", "index", "pinyin"),
    [
        ("他还没还钱", 1, "hai2"),
        ("他还没还钱", 3, "huan2"),
        ("农业银行总行", 3, "hang2"),
        ("农业银行总行", 5, "hang2"),
        ("把音量调低", 3, "tiao2"),
        ("这一行字", 2, "hang2"),
        ("我得去", 1, "dei3"),
    ],
)
def test_issue_examples(sentence: str, index: int, pinyin: str) -> None:
    assert read(sentence)[index] == pinyin


@pytest.mark.parametrize(
    ("sentence", "index", "pinyin"),
    [
        ("钱我下个月一定还", 7, "huan2"),
        ("你什么时候还我钱", 5, "huan2"),
        ("你还是去吧", 1, "hai2"),
        ("他跑得很快", 2, "de5"),
        ("这件事得快点办", 3, "dei3"),
        ("她得了第一名", 1, "de2"),
        ("他慢慢地走了", 3, "de5"),
        ("书掉在地上", 3, "di4"),
        ("他在老家种地", 5, "di4"),
        ("你走得了吗", 3, "liao3"),
        ("他今天来不了", 5, "liao3"),
        ("下雨了", 2, "le5"),
        ("钥匙找不着了", 4, "zhao2"),
        ("他看着我", 2, "zhe5"),
        ("这首诗有四行", 5, "hang2"),
        ("一行人到达了北京", 1, "xing2"),
        ("你真行", 2, "xing2"),
        ("这条河很长", 4, "chang2"),
        ("校长在开会", 1, "zhang3"),
        ("这根绳子有三米长", 7, "chang2"),
        ("写错了就重写一份", 4, "chong2"),
        ("这个箱子太重了", 5, "zhong4"),
        ("警察正在调查", 4, "diao4"),
        ("把温度调高一点", 3, "tiao2"),
        ("你数一数有多少人", 1, "shu3"),
        ("你数一数有多少人", 3, "shu3"),
        ("这个数字很大", 2, "shu4"),
        ("这只猫很可爱", 1, "zhi1"),
        ("我只有一个苹果", 1, "zhi3"),
        ("他在院子里种了很多花", 5, "zhong4"),
        ("这种水果很甜", 1, "zhong3"),
        ("他中了大奖", 1, "zhong4"),
        ("你能教我游泳吗", 2, "jiao1"),
        ("他被选为班长", 3, "wei2"),
        ("我想请三天假", 5, "jia4"),
        ("他系上了鞋带", 1, "ji4"),
        ("我们班有个姓曾的同学", 6, "zeng1"),
        ("他去医院看大夫", 5, "dai4"),
        ("我还在倒时差", 5, "cha1"),
        ("妈妈在和面", 3, "huo2"),
        ("这件衣服很便宜", 5, "pian2"),
        ("祝你生日快乐", 5, "le4"),
        ("我喜欢听音乐", 5, "yue4"),
    ],
)
def test_reading_in_context(sentence: str, index: int, pinyin: str) -> None:
    assert read(sentence)[index] == pinyin


@pytest.mark.parametrize("name", sorted(FLOORS))
def test_labelled_list_accuracy_stays(name: str) -> None:
    data = rows(name)
    assert len(data) >= (150 if name == "zh.tsv" else 100)
    wrong = [(s, i, exp, got) for s, i, exp in data if (got := read(s)[i]) != exp]
    accuracy = 1 - len(wrong) / len(data)
    assert accuracy >= FLOORS[name], f"{accuracy:.1%} < {FLOORS[name]:.0%}: {wrong}"


def test_labelled_list_is_well_formed() -> None:
    data = rows("zh.tsv")
    by_char: dict[str, set[str]] = {}
    for s, i, py in data:
        assert 0 <= i < len(s) and _HAN.fullmatch(s[i]), (s, i)
        assert re.fullmatch(r"[a-z]+[1-5]", py), py
        assert s[i] not in "一不", "一/不 sandhi is not in scope"
        by_char.setdefault(s[i], set()).add(py)
    assert len(by_char) >= 25
    assert all(len(readings) >= 2 for readings in by_char.values())


@pytest.mark.parametrize(
    "text", ["今天天气很好，我们一起去公园散步", "展览馆里人很多", "我觉得你说得对", "中华人民共和国", "银行", "a"]
)
def test_shape_and_untouched_text(text: str) -> None:
    words = jieba.lcut(text)
    out = word_pinyin(words)
    assert [len(p) for p in out] == [len(lazy_pinyin(w)) for w in words]
    if "得" not in text:  # nothing polyphonic to read in context: exactly today's reading
        assert out == [lazy_pinyin(w, style=Style.TONE3, neutral_tone_with_five=True) for w in words]


def test_empty_and_non_han_words() -> None:
    assert word_pinyin([]) == []
    assert word_pinyin(["GPU", "还"]) == [["GPU"], ["hai2"]]  # not a Han run: today's per-word reading


def test_thread_safe() -> None:
    sentences = sorted({s for s, _, _ in rows("zh.tsv")})[:80]
    expected = [read(s) for s in sentences]
    got: dict[int, list[list[str]]] = {}

    def work(k: int) -> None:
        got[k] = [read(s) for s in sentences]

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(v == expected for v in got.values())
