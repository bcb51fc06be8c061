"""Mandarin G2P for Kokoro v1.0: normalisation, jieba words, pinyin with tone sandhi, IPA.

Pinyin comes from pypinyin, the pinyin->IPA table from misaki 0.9.4 (the
mapping Kokoro v1.0 was trained with). On top of misaki's legacy path this adds
the tone changes a listener expects: third-tone sandhi (你好 ni2 hao3,
展览馆 zhan2 lan2 guan3, across a monosyllabic word boundary too), 一 and 不
(一样 yi2, 一起 yi4, 看一看 yi5, 不是 bu2). Latin letters inside Chinese text
are spelled out letter by letter rather than dropped or crashing.
"""

from __future__ import annotations

import logging
import re
import threading
import unicodedata

import jieba
from misaki.transcription import pinyin_to_ipa
from pypinyin import Style, lazy_pinyin

from shared.text import HAN as _HAN
from workers.normalize_zh import normalize_zh

__all__ = ["MandarinFrontend", "apply_sandhi", "spell_latin"]

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
_NUMERALS = set("零一二三四五六七八九十百千万亿点")


def spell_latin(word: str) -> str:
    return " ".join(_LETTERS[c] for c in word.lower() if c in _LETTERS)


def _tone(py: str) -> int:
    return int(py[-1]) if py and py[-1].isdigit() else 5


def _set_tone(py: str, tone: int) -> str:
    return (py[:-1] if py[-1].isdigit() else py) + str(tone)


def apply_sandhi(words: list[tuple[str, list[str]]]) -> list[list[str]]:
    """Tone sandhi over (word, TONE3 pinyin) pairs; returns the changed pinyin per word."""
    flat: list[str] = []
    chars: list[str] = []
    bounds: list[int] = []
    for word, pys in words:
        bounds.append(len(flat))
        flat.extend(pys)
        chars.extend(word if len(word) == len(pys) else ["?"] * len(pys))
    n = len(flat)
    for i in range(n):
        c = chars[i]
        nxt = _tone(flat[i + 1]) if i + 1 < n else 0
        if c == "一" and flat[i].startswith("yi"):
            prev_c = chars[i - 1] if i > 0 else ""
            next_c = chars[i + 1] if i + 1 < n else ""
            if prev_c == "第" or prev_c in _NUMERALS or next_c in _NUMERALS or i + 1 >= n:
                continue  # a numeral keeps yi1: 第一, 一二三, 十一
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

    def _han(self, run: str) -> str:
        with self._lock:  # jieba's tokenizer is not documented as thread-safe
            words = jieba.lcut(run, cut_all=False)
        pairs = [(w, lazy_pinyin(w, style=Style.TONE3, neutral_tone_with_five=True)) for w in words]
        return " ".join("".join(_py2ipa(p) for p in pys) for pys in apply_sandhi(pairs))

    def phonemize(self, text: str) -> str:
        text = normalize_zh(text)
        for k, v in _PUNCT.items():
            text = text.replace(k, v)
        text = re.sub(r"([,.!?;:])\s*", r"\1 ", text)  # NFKC turned ，into a bare comma
        parts: list[str] = []
        pos = 0
        for m in re.finditer(rf"{_HAN.pattern}|{_LATIN.pattern}", text):
            parts.append(text[pos : m.start()])
            run = m.group(0)
            parts.append(self._han(run) if _HAN.match(run) else f" {spell_latin(run)} ")
            pos = m.end()
        parts.append(text[pos:])
        # drop what cannot be spoken (emoji, format characters) before the model sees it
        spoken = "".join(c for c in "".join(parts) if c in _TONES or unicodedata.category(c)[0] in "LMPZ")
        return re.sub(r"\s+", " ", spoken).strip()
