"""Mandarin G2P for Kokoro v1.0: TN, jieba words, pinyin in context, erhua, tone sandhi, IPA.

Text is normalised first (:mod:`workers.normalize_zh`: numbers, symbols, traditional
script). Pinyin comes from pypinyin with chorus's polyphone rules in context
(:mod:`workers.polyphones`: 还钱 huán, 总行 háng, 调低 tiáo, 我得去 děi); the
pinyin->IPA table from misaki 0.9.4 (the mapping Kokoro v1.0 was trained with).
On top of that: 儿 merged into the syllable before it (哪儿 nǎr: na↓ɚ, no tone of
its own; not in 女儿), and the tone changes a listener expects: third-tone sandhi
(你好 ni2 hao3, 展览馆 zhan2 lan2 guan3, across a monosyllabic word boundary too),
一 and 不 (一样 yi2, 一起 yi4, 看一看 yi5, 不是 bu2; 一 as a digit stays yi1:
一月一日, 第一, 一点五; before 百/千 yì, before 万/亿 yí). English words inside Mandarin are read through espeak-ng's
English IPA in Kokoro's symbols (iPhone); acronyms letter by letter (CEO, GPU).
"""

from __future__ import annotations

import logging
import re
import threading
import unicodedata

import jieba
from misaki.transcription import pinyin_to_ipa

from shared.text import HAN as _HAN
from workers import espeak
from workers.normalize_zh import load_grammar, normalize_zh
from workers.polyphones import word_pinyin

__all__ = ["MandarinFrontend", "apply_sandhi", "merge_erhua", "read_latin", "silent_on_purpose", "spell_latin"]

log = logging.getLogger(__name__)
jieba.setLogLevel(logging.WARNING)

_LATIN = re.compile(r"[A-Za-z]+")
_PUNCT = {
    "、": ", ", "，": ", ", "。": ". ", "．": ". ", "！": "! ", "：": ": ", "；": "; ", "？": "? ",
    "«": " “", "»": "” ", "《": " “", "》": "” ", "「": " “", "」": "” ", "【": " “", "】": "” ",
    "（": " (", "）": ") ", "…": "… ", "—": "—",
}  # fmt: skip
# Letter names in the Kokoro/misaki symbol set (A=eɪ, I=aɪ, O=oʊ).
_LETTERS = {
    "a": "ˈA", "b": "bˈi", "c": "sˈi", "d": "dˈi", "e": "ˈi", "f": "ˈɛf", "g": "ʤˈi", "h": "ˈAʧ",
    "i": "ˈI", "j": "ʤˈA", "k": "kˈA", "l": "ˈɛl", "m": "ˈɛm", "n": "ˈɛn", "o": "ˈO", "p": "pˈi",
    "q": "kjˈu", "r": "ˈɑɹ", "s": "ˈɛs", "t": "tˈi", "u": "jˈu", "v": "vˈi", "w": "dˈʌbəlju",
    "x": "ˈɛks", "y": "wˈI", "z": "zˈi",
}  # fmt: skip


_TONES = frozenset("↓→↗↘")
_NUMERALS = set("零一二三四五六七八九十百千万亿点幺两")
_PLACES = set("百千万亿")
"""一 before a place value takes the ordinary sandhi (yì bǎi, yí wàn); as a digit it stays yī."""
_DATE_UNITS = set("月日号")
_CLOCK_AFTER = set("整半刻钟分")


def silent_on_purpose(char: str) -> bool:
    """Characters dropped without a word: emoji and pictographs (So), control and format characters
    (Cc, Cf: zero-width joiners, BOM), private use and unassigned code points (Co, Cn), surrogates (Cs)."""
    return unicodedata.category(char) in ("So", "Sk", "Cc", "Cf", "Co", "Cn", "Cs")


def spell_latin(word: str) -> str:
    """Letter names in Kokoro's symbols: ``GPU`` -> ``ʤˈi pˈi jˈu``."""
    return " ".join(_LETTERS[c] for c in word.lower() if c in _LETTERS)


ACRONYM_WORDS = frozenset({"NASA", "NATO", "COVID", "UNESCO", "UNICEF", "OPEC", "FIFA", "ASEAN", "LASER", "RADAR"})
"""All-capital words read as words, not letter by letter."""


def read_latin(word: str) -> str:
    """An English word inside Mandarin, for the same voice: acronyms by letter (CEO, GPU), other words
    through espeak-ng's English IPA in Kokoro's symbols (iPhone -> ˈI fˈOn); spelled when there is no espeak-ng.
    """
    if len(word) == 1 or (word.isupper() and word not in ACRONYM_WORDS):
        return spell_latin(word)
    phonemes = espeak.ipa(word)
    return spell_latin(word) if phonemes is None else phonemes


NOT_ERHUA = frozenset(
    "虐儿 为儿 护儿 瞒儿 救儿 替儿 有儿 一儿 我儿 俺儿 妻儿 拐儿 聋儿 乞儿 患儿 幼儿 孤儿 婴儿 婴幼儿 连体儿 "
    "脑瘫儿 流浪儿 体弱儿 混血儿 蜜雪儿 舫儿 祖儿 美儿 应采儿 可儿 侄儿 孙儿 侄孙儿 女儿 男儿 红孩儿 虫儿 "
    "马儿 鸟儿 猪儿 猫儿 狗儿 少儿 健儿 胎儿 育儿 托儿 儿女 宠儿 新生儿 早产儿 弃儿 孤儿院".split()
)
"""Words ending in 儿 that keep it as a syllable (misaki's list, from PaddleSpeech, and a few more)."""


def merge_erhua(words: list[str], pinyin: list[list[str]]) -> list[list[str]]:
    """儿 at the end of a word joins the syllable before it (哪儿 nǎr, 一会儿 yíhuìr), marked ``R``
    after the tone digit (``na3R``); words in :data:`NOT_ERHUA` (女儿, 婴儿) keep two syllables."""
    out = []
    for word, pys in zip(words, pinyin, strict=True):
        if (
            len(word) >= 2
            and word[-1] == "儿"
            and len(pys) == len(word)
            and pys[-1] in ("er2", "er5")
            and word not in NOT_ERHUA
            and word[-2:] not in NOT_ERHUA
        ):
            pys = [*pys[:-2], pys[-2] + "R"]
        out.append(pys)
    return out


def _tone(py: str) -> int:
    py = py.rstrip("R")
    return int(py[-1]) if py and py[-1].isdigit() else 5


def _set_tone(py: str, tone: int) -> str:
    erhua = "R" if py.endswith("R") else ""
    py = py.removesuffix("R")
    return (py[:-1] if py[-1].isdigit() else py) + str(tone) + erhua


def apply_sandhi(words: list[tuple[str, list[str]]]) -> list[list[str]]:
    """Tone sandhi over (word, TONE3 pinyin) pairs; returns the changed pinyin per word."""
    flat: list[str] = []
    chars: list[str] = []
    bounds: list[int] = []
    for word, pys in words:
        bounds.append(len(flat))
        flat.extend(pys)
        if len(word) == len(pys) + 1 and word.endswith("儿") and pys and pys[-1].endswith("R"):
            word = word[:-1]  # erhua merged: 一会儿 is yi1 hui4R
        chars.extend(word if len(word) == len(pys) else ["?"] * len(pys))
    n = len(flat)
    for i in range(n):
        c = chars[i]
        nxt = _tone(flat[i + 1]) if i + 1 < n else 0
        if c == "一" and flat[i].startswith("yi"):
            prev_c = chars[i - 1] if i > 0 else ""
            next_c = chars[i + 1] if i + 1 < n else ""
            after = chars[i + 2] if i + 2 < n else ""
            if next_c in _PLACES:
                pass  # 一百 yì bǎi, 一千 yì qiān, 一万 yí wàn: the ordinary sandhi below
            elif (
                prev_c == "第"
                or prev_c in _NUMERALS
                or (next_c in _NUMERALS and next_c != "点")
                or next_c in _DATE_UNITS
                or (next_c == "点" and (after in _NUMERALS or after in _CLOCK_AFTER))
                or i + 1 >= n
            ):
                flat[i] = "yi1"  # a digit is yī, whatever a phrase table says: 第一, 十一, 一月一日, 一点五, 一点整
                continue
            if 0 < i < n - 1 and chars[i - 1] == chars[i + 1] and _HAN.match(prev_c):
                flat[i] = "yi5"  # 看一看
            elif nxt in (4, 5):
                flat[i] = "yi2"
            elif nxt in (1, 2, 3):
                flat[i] = "yi4"
        elif c == "不" and flat[i].startswith("bu"):
            if 0 < i < n - 1 and chars[i - 1] == chars[i + 1]:
                flat[i] = "bu5"  # 是不是
            elif nxt == 4:
                flat[i] = "bu2"
    # Third tone: in a run of third tones every syllable but the last rises, within a
    # word; across a word boundary only when one side is a single syllable.
    ends = {b - 1 for b in bounds[1:]}
    for i in range(n - 1):
        if _tone(flat[i]) == 3 and _tone(flat[i + 1]) == 3:
            if i in ends:
                word_i = max(b for b in bounds if b <= i)
                word_next_len = (min([b for b in bounds if b > i + 1], default=n)) - (i + 1)
                if i - word_i + 1 > 1 and word_next_len > 1:
                    continue
            flat[i] = _set_tone(flat[i], 2)
    out: list[list[str]] = []
    for k, start in enumerate(bounds):
        end = bounds[k + 1] if k + 1 < len(bounds) else n
        out.append(flat[start:end])
    return out


def _retone(p: str) -> str:
    p = p.replace("˧˩˧", "↓").replace("˧˥", "↗").replace("˥˩", "↘").replace("˥", "→")
    return p.replace(chr(635) + chr(809), "ɨ").replace(chr(633) + chr(809), "ɨ").replace(chr(809), "")


def _py2ipa(py: str) -> str:
    if py.endswith("R"):
        # erhua: the syllable, then an r-coloured vowel with no tone of its own (哪儿 na↓ɚ, not na↓ ɚ↗).
        # Measured with Whisper on the hard set's erhua sentences (Kokoro jm_kumo, in process): 11.5 %
        # CER, against 19.2 % for an ɻ inside the syllable (naɻ↓), which Kokoro v1.0 never saw in training.
        return _py2ipa(py[:-1]) + "ɚ"
    try:
        options = pinyin_to_ipa(py)
    except (ValueError, KeyError, IndexError):
        log.debug("no IPA for pinyin %r", py)
        return ""
    return "".join(_retone(p) for p in options[0]).replace(chr(815), "")


class MandarinFrontend:
    """Mandarin text -> Kokoro v1.0 phonemes. Thread-safe after construction."""

    lang = "zh"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        jieba.initialize()
        load_grammar()  # the TN grammar at start-up (about 0.3 s), not in the first request with a number

    def _han(self, run: str) -> str:
        with self._lock:  # jieba's tokenizer is not documented as thread-safe
            words = jieba.lcut(run, cut_all=False)
        pairs = list(zip(words, word_pinyin(words), strict=True))
        merged = merge_erhua(words, [pys for _, pys in pairs])
        syllables = apply_sandhi(list(zip(words, merged, strict=True)))
        return " ".join("".join(_py2ipa(p) for p in pys) for pys in syllables)

    @staticmethod
    def _between(text: str, unread: set[str]) -> str:
        """What lies between Han and Latin runs: punctuation and spaces are kept (the model pauses on
        them); anything else is dropped, and noted in ``unread`` unless it is dropped on purpose."""
        kept = "".join(c for c in text if unicodedata.category(c)[0] in "PZ")
        if len(kept) < len(text):
            unread.update(c for c in text if unicodedata.category(c)[0] not in "PZ" and not silent_on_purpose(c))
        return kept

    def phonemize(self, text: str) -> str:
        text = normalize_zh(text)
        for k, v in _PUNCT.items():
            text = text.replace(k, v)
        text = re.sub(r"([,.!?;:])\s*", r"\1 ", text)  # NFKC turned ，into a bare comma
        parts: list[str] = []
        unread: set[str] = set()
        pos = 0
        for m in re.finditer(rf"{_HAN.pattern}|{_LATIN.pattern}", text):
            parts.append(self._between(text[pos : m.start()], unread))
            run = m.group(0)
            parts.append(self._han(run) if _HAN.match(run) else f" {read_latin(run)} ")
            pos = m.end()
        parts.append(self._between(text[pos:], unread))
        if unread:
            log.warning(
                "dropped characters the frontend cannot read: %s", " ".join(f"U+{ord(c):04X}" for c in sorted(unread))
            )
        spoken = "".join(parts)
        return re.sub(r"\s+", " ", spoken).strip()
