"""Mandarin polyphones read in context: jieba words -> TONE3 pinyin per word (issues 13 and 19).

:func:`word_pinyin` replaces the per-word ``lazy_pinyin`` call of :mod:`workers.frontend_zh`. It
starts from exactly that reading (pypinyin's phrase table, else its default reading per character)
and changes only characters that pypinyin read on their own, outside any phrase of its table (a
one-character jieba word, or a word pypinyin does not know and split up):

1. a phrase of pypinyin's own table that jieba's segmentation hid across a word boundary
   (他还没|还|钱 -> 还钱 huan2, 妈妈在|和|面 -> 和面 huo2), if it keeps jieba's dictionary
   words whole and the character is not a particle;
2. context rules on the neighbouring characters for the frequent pairs, one small function per
   character below: 还 huan2 at a clause end or before a pronoun, 得 dei3 after a subject and
   de5 after a verb, 地 de5 after an adverbial, 行 hang2 after a numeral, 长 chang2 after
   很/太/最, 重 chong2 before a verb, 调 tiao2 before 低/高, 数 shu3 as a verb, 只 zhi1 after a
   numeral, 种 zhong4 before its object, 着 zhao2 in V不着, 了 liao3 in V不了/V得了, 为 wei2
   after 选/称/以..., 教 jiao1 before a person, and a few more;
3. a handful of corrections of pypinyin's phrase table (总行 hang2, 时差 cha1, 大夫 dai4,
   考中 zhong4, 数以万计 shu4), applied to a whole jieba word or inside one.

Readings are lexical, before tone sandhi (``apply_sandhi`` runs afterwards): TONE3, tone 5 for
the neutral tone and v for ü, as pypinyin writes them. 一 and 不 are left to the sandhi.

Measured with ``bench/polyphones.py`` on ``tests/data/polyphones/zh.tsv`` (531 rows over 86
characters; the rules were written on it) and ``zh_holdout.tsv`` (124 rows over 23 characters,
written once the rules were frozen: 88.7% then, 96.0% after five general fixes it suggested); cost
per sentence (mean 7 characters) on this machine's shared CPU, RSS added by the first sentence:

=====================  =======  =======  ======  ======  =======  ==============================
candidate              zh.tsv   holdout  p50 ms  p99 ms  RSS MiB  adds to the install
=====================  =======  =======  ======  ======  =======  ==============================
pypinyin (before)      86.6%    52.4%    0.15    0.26    +135     nothing
+ large_pinyin         88.3%    54.8%    0.14    0.24    +354     pypinyin-dict: 43 MiB, 108 .pyc
word_pinyin (this)     99.1%    96.0%    0.19    0.34    +128     nothing
this + large_pinyin    98.7%    95.2%    0.19    0.34    +346     pypinyin-dict
g2pM (numpy BiLSTM)    59.9%    46.8%    0.55    0.94    +99      g2pM: 2 MiB
g2pC CRF, jieba POS    86.1%    70.2%    5.5     11.1    +329     163 MiB (sklearn, scipy)
=====================  =======  =======  ======  ======  =======  ==============================

pypinyin-dict's larger phrase tables (large_pinyin 412k phrases; cc_cedict and zdic measured too,
86.4% and 87.4%) were not taken: a point or two for +220 MiB RSS per worker, and they break common
words (取得 de5, 一场雨 chang3). g2pM reads 银行 xing2. g2pC needs pkuseg, whose POS model
downloads at run time (its CRF was run here on jieba's tags instead), and g2pW downloads its BERT
weights, so neither runs offline as shipped.

Thread-safe: every table is built at import and only read afterwards; pypinyin's lookups and
jieba's dictionary are read-only once jieba is initialised (done here on first use, under
jieba's own lock).
"""

from __future__ import annotations

import bisect
import logging
from collections.abc import Callable, Collection
from dataclasses import dataclass

import jieba
from pypinyin import Style, lazy_pinyin
from pypinyin.constants import PHRASES_DICT, PINYIN_DICT
from pypinyin.seg.mmseg import seg as _mmseg

__all__ = ["word_pinyin"]

log = logging.getLogger(__name__)


def _tone3(text: str) -> list[str]:
    return list(lazy_pinyin(text, style=Style.TONE3, neutral_tone_with_five=True))


def _is_poly(c: str) -> bool:
    return "," in PINYIN_DICT.get(ord(c), "")


# ---------------------------------------------------------------- character classes
_NUM = frozenset("一二两三四五六七八九十百千万几半")
_DEM = frozenset("这那哪每某各")
_PRON = tuple("我们 你们 他们 她们 咱们 大家 自己 别人 人家 我 你 您 他 她 它 咱 谁".split())
_DEGREE1 = frozenset("很太最更挺真好蛮够极超")
_DEGREE2 = ("这么", "那么", "非常", "特别", "比较", "多么", "有多", "十分", "相当", "越来越", "有点", "有些")
_END_PARTICLE = frozenset("吗呢吧啊呀么啦")


@dataclass(frozen=True)
class _Ctx:
    """One polyphone in a Han run: where it is, and what pypinyin and the earlier steps read."""

    s: str  # the run
    i: int  # its index in the run
    weak: bool  # pypinyin read it on its own, outside any phrase of its table
    py: list[str]  # the readings so far, one per character of the run
    word: str  # the jieba word it is in
    next_word: str  # the jieba word that starts right after it, "" if none does
    in_word: bool  # inside a longer word of jieba's dictionary (圣彼得堡, 克罗地亚), not an HMM piece

    @property
    def prev(self) -> str:
        return self.s[self.i - 1] if self.i > 0 else ""

    @property
    def next(self) -> str:
        return self.s[self.i + 1] if self.i + 1 < len(self.s) else ""

    @property
    def at_end(self) -> bool:
        return self.i == len(self.s) - 1

    def left(self, n: int) -> str:
        return self.s[max(0, self.i - n) : self.i]

    def right(self, n: int) -> str:
        return self.s[self.i + 1 : self.i + 1 + n]

    def after(self, words: Collection[str]) -> bool:
        return any(self.s.endswith(w, 0, self.i) for w in words)

    def before(self, words: Collection[str]) -> bool:
        return any(self.s.startswith(w, self.i + 1) for w in words)

    def after_degree(self) -> bool:
        return self.prev in _DEGREE1 or self.after(_DEGREE2)


Rule = Callable[[_Ctx], "str | None"]


# ---------------------------------------------------------------- rules, one per character
_HUAN_OBJECT = ("钱", "债", "款", "账", "贷", "书", "给", "清", "回", "手", "原", "礼", "价", "东西", "钥匙")
_HUAN_LEFT = frozenset("没不未别归偿退送奉")
_HUAN_LEFT2 = ("没有", "按时", "按期", "如期", "及时", "尽快", "准时")


def _huan(c: _Ctx) -> str | None:
    """还 hai2 (still) / huan2 (give back)."""
    if not c.weak:
        return None
    if c.at_end and c.i > 0:
        return "huan2"  # the adverb needs a verb after it: 钱我一定还
    if c.before(_HUAN_OBJECT) or c.before(_PRON) or (c.next_word == "了" and c.right(2) != "了得"):
        return "huan2"  # 还钱, 还我钱, 还了回去; not 这还了得
    if c.prev in _HUAN_LEFT or c.after(_HUAN_LEFT2):
        return "huan2"  # 还没还 (the second), 按时还
    return None


_DEI_LEFT = frozenset("就也都还总可又才准必这那事天上后儿在")  # 就得, 这件事得, 明天得, 现在得
_COMPLEMENT = ("很", "太", "非常", "特别", "真", "不", "更", "越", "多", "要命", "厉害", "一塌糊涂", "像", "怎么样")


def _de(c: _Ctx) -> str | None:
    """得 de2 (obtain) / de5 (V得C) / dei3 (must)."""
    if not c.weak or c.in_word:
        return None
    if c.prev in {"不", "只"}:
        return "de2"  # 不得, 只得
    if c.next == "了":
        after = c.right(2)[1:]
        if after and after not in _END_PARTICLE:
            return "de2"  # 得了感冒, 得了第一名
        return "de2" if c.i == 0 or c.after(_PRON) else "de5"  # 他得了 / 走得了吗 (了 liao3)
    if c.next in set("到奖分罪病益"):
        return "de2"
    if (c.after(_PRON) or c.prev in _DEI_LEFT) and not c.at_end and not c.before(_COMPLEMENT):
        return "dei3"  # 我得去, 这件事得快点办
    return "de5"  # 跑得很快, 说得对


# after these 地 is the noun (ground, land, floor), before these it starts a noun
_DI_LEFT = frozenset(
    "土田草空耕种扫落遍满本外当各此该原基场工墓陆山高低平湿荒盆腹属境领产天块片亩的在到从往于向上下里这那哪等一两半"
    "买卖租占征圈拿分翻犁擦拖铺挖"
)
_DI_RIGHT = frozenset("上下里面方区点图铁球板址位带形质震道狱毯主产理中标段基皮瓜盘势貌域价税契租界平线")


def _reduplicated(w: str) -> bool:
    """AA, AABB or ABAB (慢慢, 轻轻, 一步一步): a jieba word of this shape plus 地 is adverbial."""
    return (len(w) >= 2 and w[-1] == w[-2]) or (len(w) >= 4 and w[-4:-2] == w[-2:])


def _di(c: _Ctx) -> str | None:
    """地 di4 (ground) / de5 (adverbial particle)."""
    if not c.weak or c.i == 0 or c.at_end or (c.in_word and not _reduplicated(c.word[:-1])):
        return None
    if c.prev in _DI_LEFT or c.next in _DI_RIGHT:
        return None
    return "de5"  # 慢慢地走, 高兴地说, 不停地说话


def _le(c: _Ctx) -> str | None:
    """了 le5 (particle) / liao3 (finish, can): V不了, V得了."""
    if not c.weak or c.i < 2:
        return None
    if c.prev == "不" and c.s[c.i - 2] != "不":
        return "liao3"  # 来不了, 受不了
    if c.prev == "得" and c.py[c.i - 1] == "de5" and (c.at_end or c.next in _END_PARTICLE):
        return "liao3"  # 走得了吗
    return None


def _zhe(c: _Ctx) -> str | None:
    """着 zhe5 (particle) / zhao2 (reach, catch) / zhao1 (a move)."""
    if not c.weak or c.i == 0:
        return None
    if c.prev == "不" and c.i >= 2:
        return "zhao2"  # 找不着, 睡不着
    if c.prev in set("睡找猜见摸够碰逮点烧") and (c.at_end or c.next in set("了吗没")):
        return "zhao2"  # 睡着了, 猜着了 (but 找着钥匙 zhe5)
    if c.prev == "一" and (c.at_end or c.next in set("棋真不妙高险错好臭狠")):
        return "zhao1"  # 这一着真高明
    return None


_TRAVELLING = ("人", "程", "动", "为", "走", "驶", "事", "军", "进")
_ROW_NOUNS = ("字", "诗", "代码", "文字")


def _hang(c: _Ctx) -> str | None:
    """行 xing2 (go, OK) / hang2 (row, trade, firm)."""
    if c.prev in _NUM or c.prev == "第":
        if c.prev == "五" and not c.weak and not c.before(_ROW_NOUNS):
            return None  # 五行, the five elements
        if c.before(_TRAVELLING) or c.right(2)[1:] == "人":
            return None  # 一行人, 一行三人: a party travelling
        if c.prev == "一" and c.at_end and c.left(2)[:1] not in set("出空写读删加换跳隔留多少第这那每"):
            return None  # 代表团一行
        return "hang2"  # 一行字, 四行, 这一行
    if c.weak and c.prev in set("总支商改转入懂"):
        return "hang2"  # 总行, 支行, 改行
    return None


def _chang(c: _Ctx) -> str | None:
    """长 zhang3 (grow, chief) / chang2 (long)."""
    if not c.weak:
        return None
    if c.after_degree() or c.before(("时间", "期", "久", "远")):
        return "chang2"  # 很长, 太长了, 有点长, 长时间
    if c.prev in set("米尺寸丈里") and c.i >= 2 and c.s[c.i - 2] in _NUM | set("公厘千"):
        return "chang2"  # 三米长
    return None


def _chong(c: _Ctx) -> str | None:
    """重 zhong4 (heavy) / chong2 (again)."""
    if c.weak and not c.after_degree() and c.next in set("写来做装读打画考选排发开算填拍买说演唱印修申"):
        return "chong2"  # 重写, 重来
    return None


def _tiao(c: _Ctx) -> str | None:
    """调 diao4 (transfer, tone, investigate) / tiao2 (adjust, mix)."""
    if not c.weak:
        return None
    if c.next in set("低高大小亮暗快慢好匀准成"):
        return "tiao2"  # 调低, 调高一点, 调成静音
    if c.next in {"点", "些"} and c.right(2)[1:] in set("味盐糖醋酱料色"):
        return "tiao2"  # 调点味
    return None


def _shu(c: _Ctx) -> str | None:
    """数 shu4 (number) / shu3 (to count)."""
    if not c.weak or c.next in set("字据学量码目值额次位以万千百亿十倍年天个种"):
        return None
    if c.next in set("一钱不得着了过到完清数星羊") or c.before(_PRON) or c.prev in set("在会能要来去再慢数"):
        return "shu3"  # 数一数, 数钱, 数不清, 全班数他最高, 在数
    return None


_ZHI3_RIGHT = frozenset("是有要能好会不在想得剩见管顾怕需用等因为知可限此")  # 这只是, 一只要: zhi3 (only)


def _zhi(c: _Ctx) -> str | None:
    """只 zhi3 (only) / zhi1 (measure word)."""
    if c.weak and (c.prev in _NUM or c.prev in _DEM) and c.next not in _ZHI3_RIGHT:
        return "zhi1"  # 这只猫, 两只手
    return None


def _zhong(c: _Ctx) -> str | None:
    """种 zhong3 (seed, kind) / zhong4 (to plant)."""
    if not c.weak or c.prev in _NUM or c.prev in _DEM or c.prev in set("多何此该同异物品人兵火良杂变绝灭特工"):
        return None
    if c.next in set("了过着下上满树花菜地田草瓜豆稻麦粮果庄苗棉玉桑竹药牙痘"):
        return "zhong4"  # 种了很多花, 种树
    return None


def _zhong4(c: _Ctx) -> str | None:
    """中 zhong1 (middle) / zhong4 (hit, win)."""
    if c.weak and c.next in {"了", "过"} and c.prev not in set("之其空家心手水城山房屋途海梦眼暗集高初正当个"):
        return "zhong4"  # 他中了大奖
    return None


def _jiao(c: _Ctx) -> str | None:
    """教 jiao4 (teaching, religion) / jiao1 (to teach someone)."""
    if c.weak and (c.before(_PRON) or c.before(("孩子", "学生", "小朋友", "大家", "人"))):
        return "jiao1"  # 教我游泳, 教孩子们唱歌
    return None


def _wei(c: _Ctx) -> str | None:
    """为 wei4 (for, because of) / wei2 (be, act as, become)."""
    if c.weak and (c.prev in set("选称成作改变化视认评任封立定列转分合译") or "以" in c.left(5)):
        return "wei2"  # 被选为班长, 以他为榜样
    return None


def _jia(c: _Ctx) -> str | None:
    """假 jia3 (false) / jia4 (leave, holiday)."""
    if c.weak and c.prev in set("天周月请放休病事婚产年寒暑度销") and (c.at_end or c.next in set("了期条吧吗呢的")):
        return "jia4"  # 请三天假
    return None


def _ji(c: _Ctx) -> str | None:
    """系 xi4 (system, department) / ji4 (to tie)."""
    if c.weak and c.next in set("好上紧住鞋领围扣绳"):
        return "ji4"  # 系上鞋带
    return None


def _bei(c: _Ctx) -> str | None:
    """背 bei4 (back, recite) / bei1 (carry on the back)."""
    if c.weak and c.next in {"着", "起", "上", "走"}:
        near = c.s[c.i + 2 : c.i + 6]
        if any(o in near for o in ("书包", "包", "孩子", "行李", "娃", "筐", "篓", "袋")):
            return "bei1"  # 背着书包
    return None


def _zhuan(c: _Ctx) -> str | None:
    """转 zhuan3 (turn to, pass on) / zhuan4 (revolve)."""
    if c.weak and ((c.at_end and c.prev in set("在着绕乱直打")) or c.before(("圈", "个不停"))):
        return "zhuan4"  # 风车在转
    return None


def _xiao(c: _Ctx) -> str | None:
    """削 xue1 (reduce) / xiao1 (peel)."""
    if c.weak and c.before(("苹果", "皮", "梨", "铅笔", "土豆", "水果")):
        return "xiao1"
    return None


def _bao(c: _Ctx) -> str | None:
    """剥 bo1 (exploit) / bao1 (peel)."""
    if c.weak and c.before(("橘", "桔", "皮", "蛋", "花生", "香蕉", "豆", "虾", "蒜", "橙")):
        return "bao1"
    return None


def _chong4(c: _Ctx) -> str | None:
    """冲 chong1 (rush) / chong4 (blunt, strong)."""
    if c.weak and c.after_degree() and (c.at_end or c.next in _END_PARTICLE or c.next == "了"):
        return "chong4"  # 说话很冲
    return None


_RULES: dict[str, Rule] = {
    "还": _huan, "得": _de, "地": _di, "了": _le, "着": _zhe, "行": _hang, "长": _chang, "重": _chong,
    "调": _tiao, "数": _shu, "只": _zhi, "种": _zhong, "中": _zhong4, "教": _jiao, "为": _wei, "假": _jia,
    "系": _ji, "背": _bei, "转": _zhuan, "削": _xiao, "剥": _bao, "冲": _chong4,
}  # fmt: skip

# Readings after 姓 (a surname) where the surname reading is not the common one.
_SURNAME = {
    "曾": "zeng1", "单": "shan4", "仇": "qiu2", "解": "xie4", "查": "zha1", "朴": "piao2", "区": "ou1",
    "盖": "ge3", "乐": "yue4", "缪": "miao4", "尉": "yu4", "翟": "zhai2", "召": "shao4", "种": "chong2",
}  # fmt: skip

# Corrections of pypinyin's phrase table, applied to a whole jieba word or inside one.
_LEXICON: dict[str, list[str]] = {
    "总行": ["zong3", "hang2"],
    "支行": ["zhi1", "hang2"],
    "时差": ["shi2", "cha1"],
    "倒时差": ["dao3", "shi2", "cha1"],
    "大夫": ["dai4", "fu5"],
    "士大夫": ["shi4", "da4", "fu1"],
    "考中": ["kao3", "zhong4"],
    "数以万计": ["shu4", "yi3", "wan4", "ji4"],
    "数以千计": ["shu4", "yi3", "qian1", "ji4"],
    "数以百计": ["shu4", "yi3", "bai3", "ji4"],
    "数以亿计": ["shu4", "yi3", "yi4", "ji4"],
}
_LEXICON_MAX = max(map(len, _LEXICON))

_REAL_WORD_FREQ = 20  # jieba's dictionary also holds HMM-like pieces with a count of a few (地走了 3)
_NO_HIDDEN = frozenset("一不了得着")  # 一/不 belong to the sandhi; 出了|事 is not 了事, 找着|钥匙 not 找着 zhao2
_HIDDEN_WEAK_END = frozenset("了是的")  # 落了 la4, 倒是 dao3: readings that hold only inside the phrase


# ---------------------------------------------------------------- the pipeline
def _weak(words: list[str]) -> list[bool]:
    """Per character: pypinyin read it on its own, outside any phrase of its table."""
    weak: list[bool] = []
    for w in words:
        for part in _mmseg.cut(w):
            weak.extend([len(part) == 1 or part not in PHRASES_DICT] * len(part))
    return weak


def _cuts(a: int, z: int, start: int, word: str) -> bool:
    """Whether the span [a, z) cuts jieba dictionary word ``word`` (at ``start``) without covering it."""
    end = start + len(word)
    partial = a < end and z > start and not (a <= start and z >= end)
    return partial and jieba.dt.FREQ.get(word, 0) >= _REAL_WORD_FREQ


def _hidden_phrase(s: str, i: int, starts: list[int], words: list[str]) -> str | None:
    """Reading of s[i] in the longest phrase (2-5 characters) of pypinyin's table around it that keeps
    jieba's dictionary words whole (it may cut an out-of-vocabulary HMM piece: 请系|好 -> 系好 ji4)."""
    for n in (5, 4, 3, 2):
        for a in range(max(0, i - n + 1), min(i, len(s) - n) + 1):
            sub = s[a : a + n]
            if sub not in PHRASES_DICT or sub[-1] in _HIDDEN_WEAK_END:
                continue
            if any(_cuts(a, a + n, b, w) for b, w in zip(starts, words, strict=True)):
                continue
            return _tone3(sub)[i - a]
    return None


def _apply_lexicon(words: list[str], starts: list[int], s: str, py: list[str]) -> None:
    """Overwrite ``py`` where a _LEXICON entry is a run of whole jieba words or lies inside one."""
    ends = {b + len(w) for b, w in zip(starts, words, strict=True)}
    for b, w in zip(starts, words, strict=True):
        for a in range(len(w)):
            for n in range(min(_LEXICON_MAX, len(s) - b - a), 1, -1):
                sub = s[b + a : b + a + n]
                if sub in _LEXICON and (a + n <= len(w) or (a == 0 and b + n in ends)):
                    py[b + a : b + a + n] = _LEXICON[sub]
                    break


def word_pinyin(words: list[str]) -> list[list[str]]:
    """TONE3 pinyin per word for the jieba words of one Han run, with polyphones read in context.

    ``words``: ``jieba.lcut(run)`` of one run of Han characters. Returns one list per word, one
    syllable per character (tone 1-4, 5 for neutral, ü as v), before tone sandhi. Where a word does
    not give one syllable per character (not Han), the whole call falls back to ``lazy_pinyin`` per
    word, which is what it returns for every character no rule touches.
    """
    plain = [_tone3(w) for w in words]
    if not words:
        return plain
    if any(len(p) != len(w) for p, w in zip(plain, words, strict=True)):
        log.debug("not a Han run, no context rules: %r", words)
        return plain
    jieba.dt.check_initialized()  # its dictionary tells real words from HMM pieces
    s = "".join(words)
    py = [p for ps in plain for p in ps]
    weak = _weak(words)
    starts = [0]
    for w in words[:-1]:
        starts.append(starts[-1] + len(w))
    for i, ch in enumerate(s):
        if weak[i] and ch not in _NO_HIDDEN and _is_poly(ch):
            hidden = _hidden_phrase(s, i, starts, words)
            if hidden is not None:
                py[i] = hidden  # the rules below still see the character as read on its own
    for i, ch in enumerate(s):
        rule = _RULES.get(ch)
        if rule is not None:
            k = bisect.bisect_right(starts, i) - 1
            word = words[k]
            nxt = words[k + 1] if k + 1 < len(words) and starts[k + 1] == i + 1 else ""
            in_word = len(word) > 1 and jieba.dt.FREQ.get(word, 0) >= _REAL_WORD_FREQ
            new = rule(_Ctx(s, i, weak[i], py, word, nxt, in_word))
            if new is not None:
                py[i] = new
        if i > 0 and s[i - 1] == "姓" and ch in _SURNAME:
            py[i] = _SURNAME[ch]
    _apply_lexicon(words, starts, s, py)
    for i in range(2, len(s)):
        if s[i] == s[i - 2] and s[i - 1] == "一" and _is_poly(s[i]):
            py[i] = py[i - 2]  # 数一数, 想一想: the second verb reads as the first
    return [py[b : b + len(w)] for b, w in zip(starts, words, strict=True)]
