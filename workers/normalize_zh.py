"""Mandarin text normalisation: numbers, dates, times, money, units and phone numbers in words.

Patterns cn2an gets wrong or does not know (ISO dates, clock times, currency
signs, long digit strings) are rewritten first; cn2an then reads the remaining
numbers, percentages and fractions.

Numbers cn2an cannot read are read digit by digit before it sees them: an
integer part over 16 digits (its largest unit is 千万亿, so it fails on more) and
a fractional part over 16 digits (it reads fractions digit by digit anyway, but
silently drops the digits past the 16th). This also keeps the whole pass linear
in the text length: cn2an's patterns (percent, fraction, range) retry a digit
run from each of its digits, quadratic in the run's length.
"""

from __future__ import annotations

import re
import unicodedata

import cn2an

__all__ = ["MAX_FRACTION_DIGITS", "MAX_PLACE_DIGITS", "normalize_zh", "read_digits"]

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
# A number as cn2an's own pattern cuts it (sign, integer part, fraction, percent). The
# look-behind only starts it at the first digit of a run, so no run is scanned twice.
_NUMBER = re.compile(r"(?<!\d)(-?)(\d+)(?:\.(\d+))?(%?)")
MAX_PLACE_DIGITS = 16
"""Longest integer part read with place values (cn2an's limit: 千万亿 is 10^15)."""
MAX_FRACTION_DIGITS = 16
"""Longest fractional part passed to cn2an, which drops the digits after the 16th."""
_UNIT = re.compile(r"(\d)\s?(km|kg|cm|mm|ml|GB|MB|°C|℃|°|m|g)(?![A-Za-z])")


def read_digits(digits: str) -> str:
    """Read a digit string one digit at a time (phone numbers, codes)."""
    return "".join(_DIGITS[int(d)] for d in digits)


def _number(s: str) -> str:
    out: str = cn2an.an2cn(s, "low")
    return out


def _long_number(m: re.Match[str]) -> str:
    """Read a number too long for cn2an; one within both limits comes back unchanged, for cn2an.

    An integer part over :data:`MAX_PLACE_DIGITS` digits is read digit by digit; a
    fractional part over :data:`MAX_FRACTION_DIGITS` digits is read digit by digit
    after 点, as cn2an reads fractions, but in full.
    """
    sign, whole, fraction, percent = m.group(1), m.group(2), m.group(3), m.group(4)
    if len(whole) <= MAX_PLACE_DIGITS and (fraction is None or len(fraction) <= MAX_FRACTION_DIGITS):
        return m.group(0)
    words = read_digits(whole) if len(whole) > MAX_PLACE_DIGITS else _number(whole)
    if fraction is not None:
        words += "点" + read_digits(fraction)
    # Same words cn2an gives a short number: "-5%" is 百分之负五.
    return ("百分之" if percent else "") + ("负" if sign else "") + words


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
    """Rewrite everything written in digits and symbols into Chinese words.

    Linear in ``len(text)``: no digit run over :data:`MAX_PLACE_DIGITS` +
    :data:`MAX_FRACTION_DIGITS` characters reaches cn2an.
    """
    text = unicodedata.normalize("NFKC", text)
    text = _ISO_DATE.sub(_date, text)
    text = _CLOCK.sub(_clock, text)
    text = _MONEY.sub(_money, text)
    text = _LONG_DIGITS.sub(lambda m: read_digits(m.group(0)), text)
    text = _THOUSANDS.sub("", text)
    text = _UNIT.sub(lambda m: m.group(1) + _UNITS[m.group(2)], text)
    text = _NUMBER.sub(_long_number, text)  # after _THOUSANDS, which joins digit groups into longer runs
    try:
        out: str = cn2an.transform(text, "an2cn")
    except (ValueError, KeyError, IndexError):  # cn2an rejects some odd digit runs
        out = re.sub(r"\d+", lambda m: read_digits(m.group(0)), text)
    return re.sub(r"\d", lambda m: _DIGITS[int(m.group(0))], out)
