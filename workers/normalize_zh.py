"""Mandarin text normalisation (TN): digits, symbols and written forms into the words people say.

The reading comes from WeTextProcessing's WFST grammar (:mod:`workers.grammars`),
behind a thin layer of chorus's own rules for what that grammar gets wrong
(measured on ``tests/data/normalisation/zh.tsv``; docs/NORMALISATION.md):

- **before it** (:func:`fold`): full-width forms to ASCII, enclosed and dingbat
  digits (① ❷ ⑴ ⒈ ㈠) and Roman numerals (Ⅳ) to cardinals, vulgar fractions,
  U+2212 to a minus sign, and traditional to simplified script (OpenCC ``t2s``);
- **before it** (:func:`rewrite`): phone numbers, codes and room numbers read digit
  by digit with 1 as 幺, grouped with short pauses (138 1234 5678); versions
  (v2.1.3 -> 二点一点三); ranges read 到 with the unit where it is written (3-5% ->
  百分之三到百分之五); signed percentages (负百分之三点五); scores (3-2击败 ->
  三比二); year ranges and durations (3000年历史 is a cardinal); ‰, ¥1,299, HK$;
  units it does not know (g, t, Hz, V, kWh, mAh); maths signs; ASCII Roman numerals
  after 第;
- **after it** (:func:`retouch`): 两 and 二 where the grammar picks the other one
  (两次, 两点 as a clock hour, 第二, 二月二日).

Cost: the grammar costs 1-9 ms even for one number on this machine (it grows
steeply with its input), against a budget of 5 ms per sentence at p99. So the
common forms are read by rule too: dates, clock times, money, percentages,
fractions, calendar years, and plain cardinals and decimals (:func:`cardinal`,
checked against the grammar's own reading on 1,884 numbers). The grammar reads
what is left (maths, and whatever these rules do not know), in windows of
:data:`CONTEXT_BEFORE` / :data:`CONTEXT_AFTER` characters around it, at most
:data:`MAX_WFST_CHARS` long; plain Mandarin never reaches it. Digit runs longer
than :data:`MAX_PLACE_DIGITS` (integer) or :data:`MAX_FRACTION_DIGITS` (fraction)
are read digit by digit, which keeps the whole pass linear in the length of the
text.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from functools import lru_cache

from shared.text import HAN
from workers.grammars import load_zh
from workers.tn_rules import LazyGrammar, Rules, fold_table

__all__ = [
    "MAX_FRACTION_DIGITS",
    "MAX_PLACE_DIGITS",
    "MAX_WFST_CHARS",
    "cardinal",
    "fold",
    "load_grammar",
    "normalize_zh",
    "read_digits",
    "retouch",
    "rewrite",
]

MAX_PLACE_DIGITS = 16
"""Longest integer part read with place values (千万亿 is 10^15); longer ones are read digit by digit."""
MAX_FRACTION_DIGITS = 16
"""Longest fractional part handed to the grammar; a longer one is read digit by digit here."""
MAX_WFST_CHARS = 48
"""Longest piece of text given to the grammar at once: its cost grows with the length of its input."""

_DIGITS = "零一二三四五六七八九"
_HAN_DIGIT = "零一二三四五六七八九十百千万亿两"

_GRAMMAR = LazyGrammar(load_zh)


def load_grammar() -> None:
    """Load the grammar now (a frontend does it at start-up), not at the first number."""
    _GRAMMAR.get()


def read_digits(digits: str, *, yao: bool = False) -> str:
    """Read a digit string one digit at a time; ``yao`` reads 1 as 幺, as in phone numbers and codes.

    Characters other than ASCII digits are dropped.
    """
    words = "".join(_DIGITS[int(d)] for d in digits if "0" <= d <= "9")
    return words.replace("一", "幺") if yao else words


def _below_10000(n: int, leading: bool) -> str:
    """1..9999 in Mandarin; ``leading``: the number's first group (十二, not 一十二; 两百, 两千)."""
    out: list[str] = []
    units = [(1000, "千"), (100, "百"), (10, "十"), (1, "")]
    zero = False
    started = False
    for size, name in units:
        d = n // size % 10
        if d == 0:
            if started:
                zero = True
            continue
        if zero:
            out.append("零")
            zero = False
        if size == 10 and d == 1 and not started and leading:
            out.append("十")
        elif d == 2 and name in ("千", "百") and not started and leading:
            out.append("两" + name)
        else:
            out.append(_DIGITS[d] + name)
        started = True
    return "".join(out)


def _integer(n: int) -> str:
    """A non-negative integer in Mandarin words, as the grammar reads a cardinal (checked against it on
    1,884 numbers up to 10^12): 十二, 一百一十, 两千, 一万零一十, 两亿."""
    if n == 0:
        return "零"
    groups: list[int] = []
    m = n
    while m:
        groups.append(m % 10000)
        m //= 10000
    names = ["", "万", "亿", "万亿"]
    out: list[str] = []
    need_zero = False
    for i in range(len(groups) - 1, -1, -1):
        g = groups[i]
        if g == 0:
            need_zero = True
            continue
        leading = not out
        if out and (need_zero or g < 1000):
            out.append("零")
        words = _below_10000(g, leading)
        if leading and g == 2 and names[i]:
            words = "两"
        out.append(words + names[i])
        need_zero = False
    return "".join(out)


@lru_cache(maxsize=4096)
def cardinal(number: str) -> str:
    """A number written in ASCII digits (optionally signed, with a fraction) read as a cardinal (3000 -> 三千)."""
    sign = "负" if number.startswith("-") else ""
    whole, _, fraction = number.lstrip("+-").partition(".")
    if len(whole) > MAX_PLACE_DIGITS:
        words = read_digits(whole)
    else:
        words = _integer(int(whole or "0"))
    if fraction:
        words += "点" + read_digits(fraction)
    return sign + words


# ----------------------------------------------------------------------------- folding
def _build_fold() -> dict[int, str]:
    table = fold_table()
    table.update({0x301C: "~", 0x2215: "/"})
    for start, first, count in ((0x3251, 21, 15), (0x32B1, 36, 15)):  # ㉑ … ㉟, ㊱ … ㊿
        for i in range(count):
            table[start + i] = f" {first + i} "
    table[0x24EA] = table[0x24FF] = " 0 "
    for i in range(10):
        table[0x3220 + i] = "一二三四五六七八九十"[i]  # ㈠ … ㈩
        table[0x3280 + i] = "一二三四五六七八九十"[i]  # ㊀ … ㊉
    for i in range(12):
        table[0x2160 + i] = f" {i + 1} "  # Ⅰ … Ⅻ
        table[0x2170 + i] = f" {i + 1} "  # ⅰ … ⅻ
    for c in range(0x00BC, 0x00BF):  # ¼ ½ ¾
        table[c] = "{" + unicodedata.decomposition(chr(c)) + "}"
    for c in range(0x2150, 0x215F):  # ⅐ … ⅞
        table[c] = "{" + unicodedata.decomposition(chr(c)) + "}"
    return table


_FOLD = _build_fold()
_VULGAR = re.compile(r"\{<fraction> ([0-9A-F ]+) 2044 ([0-9A-F ]+)\}")
_t2s_lock = threading.Lock()
_t2s_converter = None


def _t2s(text: str) -> str:
    global _t2s_converter
    if _t2s_converter is None:
        import opencc  # OpenCC's own dictionaries: phrase-level, so 皇后 stays and 後面 becomes 后面

        with _t2s_lock:
            _t2s_converter = _t2s_converter or opencc.OpenCC("t2s")
    out: str = _t2s_converter.convert(text)
    return out


def _vulgar(m: re.Match[str]) -> str:
    num = "".join(chr(int(h, 16)) for h in m.group(1).split())
    den = "".join(chr(int(h, 16)) for h in m.group(2).split())
    return f"{cardinal(den)}分之{cardinal(num)}"


def fold(text: str) -> str:
    """One written form per character: full width, enclosed digits, Roman numerals, fractions, script.

    Enclosed digits and Roman numerals come out as spaced ASCII numbers (read as
    cardinals), vulgar fractions as words, traditional characters as simplified.
    """
    text = unicodedata.normalize("NFC", text).translate(_FOLD)
    text = _VULGAR.sub(_vulgar, text)
    return _t2s(text)


# ----------------------------------------------------------------------------- rewriting
_NUM = r"\d+(?:\.\d+)?"
_PHONE_WORDS = ["电话", "手机", "号码", "热线", "拨打", "致电", "呼叫", "客服", "验证码", "密码", "编号", "工号"]
_PHONE_WORDS += ["学号", "邮编", "尾号", "车牌", "账号", "卡号", "单号", "房号", "门牌", "分机", "传真"]
_PHONE_CONTEXT = "|".join(_PHONE_WORDS)
_RULES = Rules()
_rule = _RULES.rule


def _groups(*parts: str) -> str:
    return "，".join(read_digits(p, yao=True) for p in parts if p)


@_rule(r"(?<![\d.])(\d{1,3}(?:,\d{3})+)(?!\d|,\d)")
def _thousands(m: re.Match[str]) -> str:
    return m.group(1).replace(",", "")


@_rule(rf"(?<![\d.])(\d{{{MAX_PLACE_DIGITS + 1},}})(?:\.(\d+))?|(?<![\d.])(\d+)\.(\d{{{MAX_FRACTION_DIGITS + 1},}})")
def _long_number(m: re.Match[str]) -> str:
    whole, fraction = (m.group(1), m.group(2)) if m.group(1) else (m.group(3), m.group(4))
    words = read_digits(whole) if len(whole) > MAX_PLACE_DIGITS else cardinal(whole)
    return words + ("点" + read_digits(fraction) if fraction else "")


@_rule(r"\+\s?(\d{1,3})[\s-]?(1[3-9]\d)[\s-]?(\d{4})[\s-]?(\d{4})(?!\d)")
def _intl_mobile(m: re.Match[str]) -> str:
    return f"加{read_digits(m.group(1))}，{_groups(m.group(2), m.group(3), m.group(4))}"


@_rule(r"(?<![\d.])(1[3-9]\d)[\s-]?(\d{4})[\s-]?(\d{4})(?![\d.])")
def _mobile(m: re.Match[str]) -> str:
    return _groups(m.group(1), m.group(2), m.group(3))


@_rule(r"(?<![\d.])(\(0\d{2,3}\)|0\d{2,3}-)\s?(\d{3,4})-?(\d{4})(?![\d.])")
def _landline(m: re.Match[str]) -> str:
    return _groups(m.group(1), m.group(2), m.group(3))


@_rule(r"(?<![\d.])([48]00)[\s-]?(\d{3})[\s-]?(\d{4})(?![\d.])")
def _service(m: re.Match[str]) -> str:
    return _groups(m.group(1), m.group(2), m.group(3))


@_rule(rf"({_PHONE_CONTEXT})(是|为|:|：)?\s*(\d{{3,}})(?![\d.])")
def _code_after_word(m: re.Match[str]) -> str:
    return m.group(1) + (m.group(2) or "") + read_digits(m.group(3), yao=True)


@_rule(r"(?<![\d.])(\d{3,})(?=热线|房间|号房|室|客服)")
def _code_before_word(m: re.Match[str]) -> str:
    return read_digits(m.group(1), yao=True)


@_rule(r"(?i)(?<![a-z0-9])(v|version|python|ios|android|windows|macos|java|node|chrome|版本|版本号)\s?(\d+(?:\.\d+)+)")
def _version(m: re.Match[str]) -> str:
    return m.group(1) + "点".join(cardinal(part) for part in m.group(2).split("."))


@_rule(r"(?<![\d.])([12]\d{3})(?:年|-|/)(0?[1-9]|1[0-2])(?:月|-|/)(0?[1-9]|[12]\d|3[01])([日号]?)(?![\d.])")
def _full_date(m: re.Match[str]) -> str:  # 2024年3月5日, 2024-03-05, 2024/3/5 (the grammar takes 5 ms on one)
    day = "号" if m.group(4) == "号" else "日"
    return f"{read_digits(m.group(1))}年{cardinal(str(int(m.group(2))))}月{cardinal(str(int(m.group(3))))}{day}"


@_rule(r"(?<![\d.])([12]\d{3})\.(0?[1-9]|1[0-2])\.(0?[1-9]|[12]\d|3[01])(?![\d.])")
def _dotted_date(m: re.Match[str]) -> str:  # 2024.11.22
    return f"{m.group(1)}年{int(m.group(2))}月{int(m.group(3))}日"


@_rule(r"(?<![\d.])(\d+(?:\.\d+){2,})(?![\d.])")
def _dotted(m: re.Match[str]) -> str:  # 1.2.3: a version or a section number, never a decimal
    return "点".join(cardinal(part) for part in m.group(1).split("."))


@_rule(r"(?<![A-Za-z])([A-Za-z]{2,})\s(\d{1,4})(?![\d.:%/])")
def _name_and_number(m: re.Match[str]) -> str:  # Chrome 120, Windows 7: a cardinal, not a service number
    return f"{m.group(1)} {cardinal(m.group(2))}"


@_rule(r"([A-Za-z]+)-(?=\d)")
def _model_number(m: re.Match[str]) -> str:  # GPT-4, COVID-19: the hyphen is no minus sign
    return m.group(1) + " "


@_rule(r"(?<![\d.])([12]\d{3})\s*(?:-|~|–|—|到)\s*([12]\d{3})(?=\s*(?:年|赛季|学年|财年|年度))")
def _year_range(m: re.Match[str]) -> str:
    return f"{read_digits(m.group(1))}到{read_digits(m.group(2))}"


@_rule(r"(?<![\d.])([12]\d{3})年?\s*至\s*([12]\d{3})(?=年)")
def _year_range_zhi(m: re.Match[str]) -> str:
    return f"{read_digits(m.group(1))}至{read_digits(m.group(2))}"


@_rule(r"(?<![\d.])(\d{2})(?=年(?:出生|毕业|入学|生|参加|加入|结婚))")
def _short_year(m: re.Match[str]) -> str:
    return read_digits(m.group(1))


@_rule(
    r"(学了|做了|干了|用了|住了|等了|过了|活了|有了|持续|长达|将近|大约|过去|已有|共有|前后|工作了)"
    rf"({_NUM})(?=年)|(?<![\d.])()({_NUM})(?=年(?:多|半|历史|之久|时间|以来|左右|来|后|前))"
)
def _duration_years(m: re.Match[str]) -> str:
    number = m.group(2) or m.group(4)
    after = m.string[m.end() + 1 : m.end() + 2]
    before = m.string[m.start() - 1 : m.start()]
    if not m.group(1) and after in "前后" and re.fullmatch(r"1\d{3}|20\d{2}", number) and before not in "约近":
        return read_digits(number)  # 2030年前 is before the year 2030; 约2000年前 is 2000 years ago
    return (m.group(1) or "") + cardinal(number)


@_rule(
    r"(?<![\d:])()(\d{1,3})\s?[-:]\s?(\d{1,3})(?=\s?(?:击败|战胜|获胜|取胜|告负|落败|战平|赢|输|的比分|的比例|稀释|混合|配比|兑))"
)
@_rule(r"(比分|比分是|最终|比例|比例尺|以|按|按照)\s?(\d{1,3})\s?[-:]\s?(\d{1,7})(?![\d.])")
def _score(m: re.Match[str]) -> str:
    return f"{m.group(1)}{cardinal(m.group(2))}比{cardinal(m.group(3))}"


@_rule(
    r"(?<![\d./])(1[0-2]|0?[1-9])/(3[01]|[12]\d|0?[1-9])(?![\d./])"
    r"(?=那天|这天|当天|前|后|之前|之后|起|开始|上午|下午|早上|晚上|晚|到|至|当日)"
)
def _slash_date(m: re.Match[str]) -> str:  # 3/5那天: a date, not a fraction
    return f"{int(m.group(1))}月{int(m.group(2))}日"


@_rule(r"(?<![\d.])(\d{1,2})·(\d{1,2})(?![\d.])")
def _event_date(m: re.Match[str]) -> str:  # 3·15, 9·11
    return read_digits(m.group(1)) + read_digits(m.group(2))


@_rule(r"(?<![\d.:])0:([0-5]\d)(?![\d:])")
def _half_past_midnight(m: re.Match[str]) -> str:
    minutes = int(m.group(1))
    return "零点" + ("整" if not minutes else ("零" if minutes < 10 else "") + cardinal(str(minutes)) + "分")


@_rule(r"(?i)(HK|US|NT|A|C|S)\$\s?(" + _NUM + ")")
def _dollars(m: re.Match[str]) -> str:
    unit = {"hk": "港元", "us": "美元", "nt": "新台币", "a": "澳元", "c": "加元", "s": "新加坡元"}[m.group(1).lower()]
    return m.group(2) + unit


@_rule(r"([¥$€£])?\s?(\d+)\.(\d*?)0+(?![\d.])(?(1)|(?=\s?(?:元|美元|欧元|英镑|港元|块)))")
def _money_zeros(m: re.Match[str]) -> str:  # ¥12.50 and 12.50元 are 十二点五元
    return f"{m.group(1) or ''}{m.group(2)}" + (f".{m.group(3)}" if m.group(3) else "")


_DEGREES = r"\s?(?:℃|°C|°F|℉|摄氏度|华氏度)"


@_rule(rf"(?<![\d.])-(?=\d+(?:\.\d+)?(?:{_DEGREES}|\s?[~–—-]\s?-?\d+(?:\.\d+)?{_DEGREES}))")
def _below_zero(m: re.Match[str]) -> str:  # -5℃ is 零下五摄氏度
    return "零下"


_CURRENCY = {"¥": "元", "$": "美元", "€": "欧元", "£": "英镑"}


@_rule(rf"([¥$€£])\s?({_NUM})\s?(?:-|~|–|—|到|至)\s?[¥$€£]?({_NUM})")
def _money_range(m: re.Match[str]) -> str:
    return f"{m.group(2)}到{m.group(3)}{_CURRENCY[m.group(1)]}"


@_rule(r"(?<![\d.])(\d{1,2}:\d{2})\s?(?:-|~|–|—)\s?(\d{1,2}:\d{2})(?![\d])")
def _clock_range(m: re.Match[str]) -> str:
    return f"{m.group(1)}到{m.group(2)}"


@_rule(r"(?<![\d.:])([01]?\d|2[0-4]):([0-5]\d)(?::([0-5]\d))?(?![\d:])")
def _clock(m: re.Match[str]) -> str:  # 9:05 九点零五分, 8:00 八点, 12:30:45 … 四十五秒
    hour, minute, second = int(m.group(1)), int(m.group(2)), m.group(3)
    words = f"{cardinal(str(hour))}点"
    if minute or second:
        words += ("零" if minute < 10 else "") + cardinal(str(minute)) + "分"
    if second:
        words += cardinal(str(int(second))) + "秒"
    return words


@_rule(rf"(?<![\d.])([-+]?{_NUM})(%?)\s?(?:-|~|–|—)\s?(?=-?{_NUM}%)")
def _percent_range(m: re.Match[str]) -> str:  # 3-5%, 3%-5%: the percent on both sides
    return f"{m.group(1)}%到"


@_rule(
    rf"(?<![\d.:\-])([-+]?{_NUM})([^\d\s\-~–—,，。;；:：!！?？]{{0,4}}?)\s?(?:-|~|–|—)\s?(?=(?:-|零下)?{_NUM}(?![\d.]*[-=]))"
)
def _range(m: re.Match[str]) -> str:  # 3-5公斤, 3公斤-5公斤, 第3-5章, -5~3℃
    return f"{m.group(1)}{m.group(2)}到"


@_rule(r"(?<![\d.])100%")
def _hundred_percent(m: re.Match[str]) -> str:
    return "百分之百"


@_rule(r"(公元前?)\s?(\d+)(?=\s?年)")
def _era_year(m: re.Match[str]) -> str:
    return m.group(1) + read_digits(m.group(2))


@_rule(r"(?<![\d.])(\d+(?:\.\d+)+)(?=\s?版)")
def _version_before(m: re.Match[str]) -> str:
    return "点".join(cardinal(part) for part in m.group(1).split("."))


@_rule(rf"(?<![\d.])([-+])({_NUM})%")
def _signed_percent(m: re.Match[str]) -> str:
    return ("负" if m.group(1) == "-" else "正") + m.group(2) + "%"


@_rule(rf"({_NUM})‰")
def _per_mille(m: re.Match[str]) -> str:
    return "千分之" + cardinal(m.group(1))


_UNITS = {
    "g": "克", "t": "吨", "Hz": "赫兹", "kHz": "千赫", "MHz": "兆赫", "GHz": "吉赫", "V": "伏", "mV": "毫伏",
    "kV": "千伏", "W": "瓦", "kW": "千瓦", "kWh": "千瓦时", "mAh": "毫安时", "mA": "毫安", "kg": "公斤",
    "km/h": "公里每小时", "m/s": "米每秒", "km²": "平方公里", "min": "分钟", "h": "小时", "ms": "毫秒",
    "dB": "分贝", "Mbps": "兆比特每秒", "km": "公里", "cm": "厘米", "mm": "毫米", "nm": "纳米", "μm": "微米",
    "ml": "毫升", "mg": "毫克", "m": "米", "L": "升", "m²": "平方米", "m³": "立方米", "cm²": "平方厘米",
    "℃": "摄氏度", "°C": "摄氏度", "°F": "华氏度", "℉": "华氏度", "°": "度",
}  # fmt: skip
"""Units the grammar leaves in letters (not A or s: 5A级景区, iPhone 6s)."""
_UNIT_NAMES = "|".join(sorted(_UNITS, key=len, reverse=True))


@_rule(rf"(?<=\d)\s?({_UNIT_NAMES})(?![A-Za-z²³/]|(?<=°)[CF])")
def _unit(m: re.Match[str]) -> str:
    return _UNITS[m.group(1)]


@_rule(r"(?<=[\u4e00-\u9fff])/(?=[\u4e00-\u9fff])")
def _per(m: re.Match[str]) -> str:  # 10元/斤 is 十元每斤, in written order
    return "每"


_MATH = {"÷": "除以", ">": "大于", "<": "小于", "≥": "大于等于", "≤": "小于等于", "≠": "不等于", "≈": "约等于"}


@_rule(r"(?<=[\dA-Za-z)\s])\s?([÷<>≥≤≠≈])\s?(?=[\dA-Za-z(-])")
def _math(m: re.Match[str]) -> str:
    return _MATH[m.group(1)]


@_rule(r"(?<=\d)(?:\^(\d+)|([²³]))(=?)")
def _power(m: re.Match[str]) -> str:
    power = f"的{cardinal(m.group(1))}次方" if m.group(1) else ("的平方" if m.group(2) == "²" else "的立方")
    return power + ("等于" if m.group(3) else "")


@_rule(r"(?<=第)\s?([IVXLC]+)(?![A-Za-z])|(?<![A-Za-z])([IVX]+)(?=型|期|级)")
def _roman(m: re.Match[str]) -> str:
    letters = m.group(1) or m.group(2)
    values = {"I": 1, "V": 5, "X": 10, "L": 50, "C": 100}
    total = 0
    for i, ch in enumerate(letters):
        v = values[ch]
        total += -v if i + 1 < len(letters) and values[letters[i + 1]] > v else v
    return str(total)


@_rule(rf"([¥$€£])\s?({_NUM})")
def _money(m: re.Match[str]) -> str:
    return cardinal(m.group(2)) + _CURRENCY[m.group(1)]


@_rule(r"(?<![\d.])(\d0)(?=后)")
def _generation(m: re.Match[str]) -> str:  # 80后, 00后
    return read_digits(m.group(1))


@_rule(r"(?<![\d.])(\d{1,2})点0(\d)分")
def _written_clock(m: re.Match[str]) -> str:  # 9点05分
    return f"{cardinal(m.group(1))}点零{cardinal(m.group(2))}分"


@_rule(r"(?<=[\u4e00-\u9fff][A-Z])(\d{4,6})(?![\d.])")
def _plate(m: re.Match[str]) -> str:  # 京A12345
    return read_digits(m.group(1), yao=True)


@_rule(rf"(?<![\d.])({_NUM})%")
def _percent(m: re.Match[str]) -> str:
    return "百分之" + cardinal(m.group(1))


@_rule(r"(?<![\d.])(1\d{3}|20\d{2})(?=年)")
def _calendar_year(m: re.Match[str]) -> str:  # durations were read above
    return read_digits(m.group(1))


@_rule(r"(?<![\d./])(\d{1,3})/(\d{1,3})(?![\d./])")
def _fraction(m: re.Match[str]) -> str:
    return f"{cardinal(m.group(2))}分之{cardinal(m.group(1))}"


@_rule(r"(?<![\w.)])-(?=\d+(?:\.\d+)?(?![\d.]*\s?[+\-=×*/^<>]))")
def _negative(m: re.Match[str]) -> str:  # -154米 (not 5-3=2, which is maths)
    return "负"


@_rule(r"(?<![\d.+\-=×*/^<>:])(\d+(?:\.\d+)?)(?![\d.+\-=×*/^<>:%‰]|\.\d)")
def _plain_number(m: re.Match[str]) -> str:
    """What is left, read here rather than by the grammar, whose cost is 1-9 ms even for one number:
    a cardinal or a decimal. Numbers inside maths and anything this layer does not know stay for it."""
    return cardinal(m.group(1))


def rewrite(text: str) -> str:
    """Chorus's rules, in order, on folded text: what the grammar reads wrong, written the way it reads right
    (or already in words)."""
    return _RULES.apply(text)


# ----------------------------------------------------------------------------- after the grammar
_CLASSIFIER = "个次年天位名块本件条张只辆岁周倍种层口头份台元斤米公里克秒分钟小时人家所间平立厘毫万亿"
_RETOUCH = [
    (re.compile(r"第两"), "第二"),
    (re.compile(r"(?<=月)两(?=日|号)"), "二"),
    (re.compile(rf"(?<![{_HAN_DIGIT}点第])二(?=[{_CLASSIFIER}])(?!年级|分之|元钱)"), "两"),
    (re.compile(rf"(?<![{_HAN_DIGIT}点第])二(?=到[{_HAN_DIGIT}]+[{_CLASSIFIER}])"), "两"),
    (re.compile(rf"(?<![{_HAN_DIGIT}点第])二(?=点(?:[{_HAN_DIGIT}]+分|整|钟|半|$|[^{_HAN_DIGIT}]))"), "两"),
]


def retouch(text: str) -> str:
    """两 and 二 after the grammar, as the table's conventions say (两个, 两点 as an hour, 第二, 二月二日)."""
    for pattern, repl in _RETOUCH:
        text = pattern.sub(repl, text)
    return text


# ----------------------------------------------------------------------------- the whole pass
_CLAUSE = re.compile(r"([，。！？；、\n]|[,;!?](?=\s|$|\D))")
_NEEDS_WFST = re.compile(r"[\dA-Za-z%‰℃℉°$¥€£+=×*/~\-]*\d[\dA-Za-z%‰℃℉°$¥€£+=×*/~:.\-]*|[%‰℃℉$¥€£=×]")
CONTEXT_BEFORE = 1
"""Characters before a number or symbol that the grammar sees with it (第)."""
CONTEXT_AFTER = 2
"""Characters after it (a unit or classifier: 公里, 小时, 个, 年). The grammar's cost grows steeply with
Han context (3.14159 alone: 3.7 ms; with three characters before it: 9 ms), so no more than it needs."""


def _pieces(clause: str) -> list[str]:
    """Cut a long clause between two Han characters, far from digits, into pieces the grammar reads fast."""
    if len(clause) <= MAX_WFST_CHARS:
        return [clause]
    out: list[str] = []
    start = 0
    while len(clause) - start > MAX_WFST_CHARS:
        cut = start + MAX_WFST_CHARS
        while cut > start + 1 and not (HAN.match(clause[cut - 1]) and HAN.match(clause[cut])):
            cut -= 1
        if cut <= start + 1:  # no Han pair to cut at: cut at the limit (a run of digits and letters this long)
            cut = start + MAX_WFST_CHARS
        out.append(clause[start:cut])
        start = cut
    out.append(clause[start:])
    return out


def _windows(clause: str) -> list[tuple[str, bool]]:
    """The clause as (text, needs the grammar) pieces: each span of digits and symbols with
    :data:`CONTEXT_BEFORE` and :data:`CONTEXT_AFTER` characters around it (what the grammar looks
    at: 第, 年, 元, 个 …); spans closer than that share one window. The rest passes through as it is."""
    spans: list[list[int]] = []
    for m in _NEEDS_WFST.finditer(clause):
        if m.group(0).isalpha():
            continue  # a Latin word alone (Google, iPhone): nothing for the grammar to read
        start, end = max(0, m.start() - CONTEXT_BEFORE), min(len(clause), m.end() + CONTEXT_AFTER)
        if spans and start <= spans[-1][1]:
            spans[-1][1] = max(spans[-1][1], end)
        else:
            spans.append([start, end])
    out: list[tuple[str, bool]] = []
    pos = 0
    for start, end in spans:
        if start > pos:
            out.append((clause[pos:start], False))
        out.extend((piece, True) for piece in _pieces(clause[start:end]))
        pos = end
    if pos < len(clause):
        out.append((clause[pos:], False))
    return out


def normalize_zh(text: str) -> str:
    """Mandarin text with every number, symbol and written form in words (simplified script).

    Linear in ``len(text)``. Loads the grammar on first use (:func:`workers.grammars.load_zh`).
    """
    text = rewrite(fold(text))
    out: list[str] = []
    for clause in _CLAUSE.split(text):
        for piece, needs in _windows(clause):
            out.append(_GRAMMAR.normalize(piece) if needs else piece)
    return retouch("".join(out))
