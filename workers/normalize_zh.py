"""Mandarin text normalisation: numbers, dates, times, money, units and phone numbers in words.

Patterns cn2an gets wrong or does not know (ISO dates, clock times, currency
signs, long digit strings) are rewritten first; cn2an then reads the remaining
numbers, percentages and fractions.
"""

from __future__ import annotations

import re
import unicodedata

import cn2an

__all__ = ["normalize_zh", "read_digits"]

_DIGITS = "零一二三四五六七八九"
_CURRENCY = {"¥": "元", "￥": "元", "$": "美元", "€": "欧元", "£": "英镑"}
_UNITS = {
    "km": "公里", "kg": "公斤", "cm": "厘米", "mm": "毫米", "ml": "毫升", "m": "米", "g": "克",
    "℃": "摄氏度", "°C": "摄氏度", "°": "度", "GB": "G B", "MB": "M B",
}  # fmt: skip

_ISO_DATE = re.compile(r"(?<!\d)(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})(?!\d)")
_CLOCK = re.compile(r"(?<!\d)(\d{1,2}):(\d{2})(?::(\d{2}))?(?!\d)")
_MONEY = re.compile(r"([¥￥$€£])\s?(\d+(?:,\d{3})*(?:\.\d+)?)")
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")
_LONG_DIGITS = re.compile(r"(?<![\d.])\d{7,}(?![\d.])")
_UNIT = re.compile(r"(\d)\s?(km|kg|cm|mm|ml|GB|MB|°C|℃|°|m|g)(?![A-Za-z])")


def read_digits(digits: str) -> str:
    """Read a digit string one digit at a time (phone numbers, codes)."""
    return "".join(_DIGITS[int(d)] for d in digits)


def _number(s: str) -> str:
    out: str = cn2an.an2cn(s, "low")
    return out


def _clock(m: re.Match[str]) -> str:
    h, mi, sec = int(m.group(1)), int(m.group(2)), m.group(3)
    if h > 24 or mi > 59:
        return m.group(0)
    text = f"{_number(str(h))}点"
    if mi == 0 and not sec:
        return text + "整"
    text += ("零" + _number(str(mi)) if mi < 10 else _number(str(mi))) + "分"
    if sec:
        text += _number(str(int(sec))) + "秒"
    return text


def _date(m: re.Match[str]) -> str:
    y, mo, d = m.group(1), int(m.group(2)), int(m.group(3))
    if not (1 <= mo <= 12 and 1 <= d <= 31):
        return m.group(0)
    return f"{read_digits(y)}年{_number(str(mo))}月{_number(str(d))}日"


def _money(m: re.Match[str]) -> str:
    return f"{m.group(2).replace(',', '')}{_CURRENCY[m.group(1)]}"


def normalize_zh(text: str) -> str:
    """Rewrite everything written in digits and symbols into Chinese words."""
    text = unicodedata.normalize("NFKC", text)
    text = _ISO_DATE.sub(_date, text)
    text = _CLOCK.sub(_clock, text)
    text = _MONEY.sub(_money, text)
    text = _LONG_DIGITS.sub(lambda m: read_digits(m.group(0)), text)
    text = _THOUSANDS.sub("", text)
    text = _UNIT.sub(lambda m: m.group(1) + _UNITS[m.group(2)], text)
    try:
        out: str = cn2an.transform(text, "an2cn")
    except (ValueError, KeyError, IndexError):  # cn2an rejects some odd digit runs
        out = re.sub(r"\d+", lambda m: read_digits(m.group(0)), text)
    return re.sub(r"\d", lambda m: _DIGITS[int(m.group(0))], out)
