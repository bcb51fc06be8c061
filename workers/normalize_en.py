"""English text normalisation (TN): numbers, money, dates, units and abbreviations into words for espeak-ng.

The reading comes from WeTextProcessing's English WFST grammar (shipped prebuilt in
its wheel, ``tn/en_tn_*.fst``; :func:`workers.grammars.load_en`), behind a thin
layer of chorus's own rules for what it gets wrong (measured on
``tests/data/normalisation/en.tsv``; docs/NORMALISATION.md):

- **before it** (:func:`rewrite`): full-width forms and enclosed digits; abbreviations
  by context (St. Louis is Saint, Main St. is Street; Dr., Prof., etc., e.g., vs.);
  dotted initials (U.S.); Roman numerals (Henry VIII -> the eighth, chapter IV ->
  four); money with cents ($7667.47 -> … dollars and forty seven cents); ranges
  read "to" with the unit where it is written; years, year ranges and decades
  (1990s -> nineteen nineties); phone numbers digit by digit in groups; versions
  (v2.1.3); units it lacks; minus signs; 4x4, 2x, 24/7;
- **after it** (:func:`retouch`): US cardinals without "and" (one hundred one),
  "zero" in decimals, month before day (November twenty second), a m / p m.

Only windows of :data:`CONTEXT_WORDS` words around digits and symbols reach the
grammar (its cost grows with its input); plain English passes through as it is.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from workers.grammars import load_en
from workers.tn_rules import LazyGrammar, Rewrite, Rules, fold_table

__all__ = ["CONTEXT_WORDS", "cardinal", "load_grammar", "normalize_en", "retouch", "rewrite", "year_words"]

CONTEXT_WORDS = 2
"""Words either side of a number or symbol that the grammar sees with it."""
MAX_WFST_WORDS = 12
"""Longest run of words handed to the grammar at once."""

_GRAMMAR = LazyGrammar(load_en)


def load_grammar() -> None:
    """Load the grammar now (a frontend does it at start-up), not at the first number."""
    _GRAMMAR.get()


_ONES = "zero one two three four five six seven eight nine".split()
_TEENS = "ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen".split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_NUMBER_WORDS = set(_ONES + _TEENS + _TENS[2:] + ["hundred", "thousand", "million", "billion", "trillion"])


def _below_100(n: int) -> str:
    if n < 10:
        return _ONES[n]
    if n < 20:
        return _TEENS[n - 10]
    return _TENS[n // 10] + ("" if n % 10 == 0 else " " + _ONES[n % 10])


def _int_words(n: int) -> str:
    if n < 100:
        return _below_100(n)
    if n < 1000:
        head = f"{_ONES[n // 100]} hundred"
        return head if n % 100 == 0 else f"{head} {_below_100(n % 100)}"
    for size, name in ((10**12, "trillion"), (10**9, "billion"), (10**6, "million"), (1000, "thousand")):
        if n >= size:
            head = f"{_int_words(n // size)} {name}"
            return head if n % size == 0 else f"{head} {_int_words(n % size)}"
    raise AssertionError(n)


@lru_cache(maxsize=4096)
def cardinal(number: str) -> str:
    """ASCII digits read as a US cardinal, no "and": ``101`` -> ``one hundred one``; a fraction digit by digit."""
    whole, _, fraction = number.partition(".")
    if not whole and fraction:
        return "point " + " ".join(_ONES[int(d)] for d in fraction)
    if len(whole) > 15:
        words = " ".join(_ONES[int(d)] for d in whole)
    else:
        words = _int_words(int(whole or "0"))
    if fraction:
        words += " point " + " ".join(_ONES[int(d)] for d in fraction)
    return words


def year_words(year: int) -> str:
    """A calendar year as people say it: 1990 nineteen ninety, 1905 nineteen oh five, 2005 two thousand five,
    1800 eighteen hundred, 2024 twenty twenty four, 79 seventy nine."""
    if year < 100 or year >= 10000:
        return cardinal(str(year))
    if 2000 <= year <= 2009:
        return "two thousand" + ("" if year == 2000 else " " + _ONES[year - 2000])
    high, low = divmod(year, 100)
    head = _below_100(high)
    if low == 0:
        return f"{head} hundred"
    return f"{head} {'oh ' + _ONES[low] if low < 10 else _below_100(low)}"


def _plural(words: str) -> str:
    """nineteen ninety -> nineteen nineties, eighteen hundred -> eighteen hundreds, twenty ten -> twenty tens."""
    head, _, last = words.rpartition(" ")
    last = last[:-1] + "ies" if last.endswith("y") else last + ("es" if last.endswith("x") else "s")
    return f"{head} {last}".strip()


# ----------------------------------------------------------------------------- folding
def _build_fold() -> dict[int, str]:
    table = fold_table()
    table.update({0xBD: " one half ", 0xBC: " one quarter ", 0xBE: " three quarters ", 0x2153: " one third ",
                  0x2154: " two thirds ", 0x215B: " one eighth "})  # fmt: skip
    return table


_FOLD = _build_fold()

# ----------------------------------------------------------------------------- rules
_RULES = Rules()
_rule = _RULES.rule


def _fixed(words: str) -> Rewrite:
    return lambda m: words


_ABBREVIATIONS = {
    r"\bProf\.": "Professor", r"\bMrs\.": "Missus", r"\bMr\.": "Mister", r"\bMs\.": "Miz", r"\bJr\.": "Junior",
    r"\bSr\.": "Senior", r"\betc\.": "et cetera", r"\be\.g\.": "for example", r"\bi\.e\.": "that is",
    r"\bvs\.": "versus", r"\bAve\.": "Avenue", r"\bFig\.": "figure", r"\bapprox\.": "approximately",
    r"\bext\.": "extension", r"\bMt\.": "Mount", r"\bDept\.": "Department", r"\bNo\.(?=\s?\d)": "number",
    r"\bCo\.": "Company", r"\bInc\.": "Incorporated", r"\bLtd\.": "Limited", r"\bCorp\.": "Corporation",
    r"\bSgt\.": "Sergeant", r"\bCapt\.": "Captain", r"\bCol\.": "Colonel", r"\bGen\.": "General",
    r"\bLt\.": "Lieutenant", r"\bGov\.": "Governor", r"\bSen\.": "Senator", r"\bRep\.": "Representative",
}  # fmt: skip
for _pattern, _words in _ABBREVIATIONS.items():
    _RULES.add(_pattern, _fixed(_words))


@_rule(r"\b(St|Dr)\.(?=\s+[A-Z])")
def _title_before_name(m: re.Match[str]) -> str:  # St. Louis, Dr. Brown
    return "Saint" if m.group(1) == "St" else "Doctor"


@_rule(r"(?<=[A-Za-z] )(St|Dr)(?:\.|(?=[\s,;!?]|$))")
def _street(m: re.Match[str]) -> str:  # Main St., Mulholland Dr.
    return "Street" if m.group(1) == "St" else "Drive"


@_rule(r"\b((?:[A-Z]\.){2,})")
def _initials(m: re.Match[str]) -> str:  # U.S., U.K.: letters
    return " ".join(m.group(1).replace(".", "")) + " "


_ROMAN = {"I": 1, "V": 5, "X": 10, "L": 50, "C": 100, "D": 500, "M": 1000}
_NUMERAL = r"(?=[IVXLC])(C{0,3})(XC|XL|L?X{0,3})(IX|IV|V?I{0,3})"
_CARDINAL_BEFORE = (
    "chapter part episode type book volume act scene phase stage apollo bowl war class grade level section "
    "article appendix season round game world gemini vatican"
).split()
_REGNAL = ("henry louis elizabeth george charles edward richard william james john paul benedict pius leo "
           "napoleon philip frederick ferdinand alexander nicholas peter catherine mary victoria gregory "
           "innocent clement urban boniface constantine ptolemy ramesses").split()  # fmt: skip
_ORDINAL = {1: "first", 2: "second", 3: "third", 5: "fifth", 8: "eighth", 9: "ninth", 12: "twelfth"}


def _roman_value(numeral: str) -> int:
    total = 0
    for i, ch in enumerate(numeral):
        v = _ROMAN[ch]
        total += -v if i + 1 < len(numeral) and _ROMAN[numeral[i + 1]] > v else v
    return total


def ordinal(n: int) -> str:
    """1 -> first, 8 -> eighth, 14 -> fourteenth, 21 -> twenty first."""
    if n in _ORDINAL:
        return _ORDINAL[n]
    words = cardinal(str(n))
    head, _, last = words.rpartition(" ")
    if last in ("one", "two", "three", "five", "eight", "nine", "twelve"):
        last = {"one": "first", "two": "second", "three": "third", "five": "fifth", "eight": "eighth",
                "nine": "ninth", "twelve": "twelfth"}[last]  # fmt: skip
    elif last.endswith("y"):
        last = last[:-1] + "ieth"
    else:
        last += "th"
    return f"{head} {last}".strip()


@_rule(rf"\b([A-Za-z]+) ({_NUMERAL})\b")
def _roman(m: re.Match[str]) -> str:
    word, numeral = m.group(1), m.group(2)
    value = _roman_value(numeral)
    if word.lower() in _CARDINAL_BEFORE:
        return f"{word} {cardinal(str(value))}"
    if word[0].isupper() and (word.lower() in _REGNAL or len(numeral) > 1) and word.lower() not in ("i", "a"):
        return f"{word} the {ordinal(value)}"
    return m.group(0)


@_rule(r"(?<![\w.])(US|NZ|HK|A|C|S)\$(\d+(?:\.\d+)?)(?![\d.])")
def _prefixed_dollars(m: re.Match[str]) -> str:  # US$100: one hundred US dollars
    return f"{cardinal(m.group(2))} {m.group(1)} dollars"


_CURRENCIES = {"$": ("dollar", "dollars"), "€": ("euro", "euros"), "£": ("pound", "pounds"), "¥": ("yen", "yen"),
               "₹": ("rupee", "rupees")}  # fmt: skip
_SCALES = {"k": "thousand", "m": "million", "b": "billion", "bn": "billion", "t": "trillion"}


@_rule(r"([$€£¥₹])(\d+(?:\.\d+)?)\s?(?:-|–|—|~|to)\s?(?:([$€£¥₹])?)(\d+(?:\.\d+)?)(?![\d.])")
def _money_range(m: re.Match[str]) -> str:
    name = _CURRENCIES[m.group(1)][1]
    if m.group(3):
        return f"{cardinal(m.group(2))} {name} to {cardinal(m.group(4))} {name}"
    return f"{cardinal(m.group(2))} to {cardinal(m.group(4))} {name}"


@_rule(
    r"(?<![\w.])(-)?([$€£¥₹])(\d+(?:,\d{3})*)(?:\.(\d+))?(?![\d.])"
    r"(?:\s?(thousand|million|billion|trillion)\b|(?i:(k|m|bn|b|t))\b)?"
)
def _money(m: re.Match[str]) -> str:
    sign, symbol, whole, fraction = m.group(1), m.group(2), m.group(3).replace(",", ""), m.group(4)
    scale = m.group(5) or _SCALES.get((m.group(6) or "").lower(), "")
    one, many = _CURRENCIES[symbol]
    minus = "minus " if sign else ""
    amount = cardinal(whole + (f".{fraction}" if fraction else ""))
    if scale:
        return f"{minus}{amount} {scale} {many}"
    if fraction is None or len(fraction) != 2:
        return f"{minus}{amount} {one if amount == 'one' else many}"
    major = f"{cardinal(whole)} {one if whole == '1' else many}"
    if fraction == "00":
        return minus + major
    cents = int(fraction)
    minor = f"{cardinal(str(cents))} " + (
        ("penny" if cents == 1 else "pence") if symbol == "£" else ("cent" if cents == 1 else "cents")
    )
    return minus + (minor if whole == "0" else f"{major} and {minor}")


@_rule(r"(?<![\w.])(\d+)¢")
def _cents(m: re.Match[str]) -> str:
    return f"{m.group(1)} cents"


@_rule(r"(?<![\w.])(?:\+(\d{1,3})\s)?(\(?\d{3}\)?[\s.-]\d{3}[\s.-]\d{4}|\d{2}\s\d{4}\s\d{4})(?![\w.])")
def _phone(m: re.Match[str]) -> str:
    groups = re.findall(r"\d+", m.group(2))
    spoken = ", ".join(" ".join(_ONES[int(d)] for d in g) for g in groups)
    return (f"plus {' '.join(_ONES[int(d)] for d in m.group(1))}, " if m.group(1) else "") + spoken


@_rule(r"(?i)\b(call|dial|extension|ext|code|pin|room)(\s+)(\d{3,})\b")
def _digits_after_word(m: re.Match[str]) -> str:
    return m.group(1) + m.group(2) + " ".join(_ONES[int(d)] for d in m.group(3))


@_rule(r"(?i)(?<![\w.])(?:(v)|(version|release|python|node|ios|android|java|windows)\s)(\d+(?:\.\d+)+)(?![\d.])")
def _version(m: re.Match[str]) -> str:
    head = "version" if m.group(1) else m.group(2)
    return head + " " + " point ".join(cardinal(part) for part in m.group(3).split("."))


@_rule(r"(?<![\d.])(\d+(?:\.\d+){2,})(?![\d.])")
def _dotted(m: re.Match[str]) -> str:
    return " point ".join(cardinal(part) for part in m.group(1).split("."))


@_rule(r"(?<![\w.])(1\d{3}|20\d{2})\s?(?:-|–|—|to)\s?(1\d{3}|20\d{2})(?![\d.])")
def _year_range(m: re.Match[str]) -> str:
    return f"{year_words(int(m.group(1)))} to {year_words(int(m.group(2)))}"


@_rule(r"(?<![\w.])(1\d|20)?(\d0)'?s\b")
def _decade(m: re.Match[str]) -> str:
    if m.group(1):
        return _plural(year_words(int(m.group(1) + m.group(2))))
    return _plural(_below_100(int(m.group(2))))


@_rule(
    r"(?i)\b(in|since|by|until|of|from|year|before|after|around|circa|c\.)(\s+)(1\d{3}|20\d{2})\b(?!\s?(?:%|people|[a-z]+s\b))"
)
def _year(m: re.Match[str]) -> str:
    return m.group(1) + m.group(2) + year_words(int(m.group(3)))


@_rule(r"\b(BC|AD|BCE|CE|AM|PM)\b|\b([ap])\.m\.|(?<=\d)\s?([ap])m\b")
def _letters(m: re.Match[str]) -> str:  # BC, AD, a.m.: letters (espeak reads "AM" as a word)
    word = m.group(1) or (m.group(2) or m.group(3)) + "m"
    return " " + " ".join(word.lower()) + " "


_MONTHS = "Jan January Feb February Mar March Apr April May Jun June Jul July Aug August".split()
_MONTHS += "Sep Sept September Oct October Nov November Dec December".split()
_MONTH = "|".join(sorted(_MONTHS, key=len, reverse=True))
_MONTH_NAMES = "January February March April May June July August September October November December".split()


def _month(name: str) -> str:
    return next(full for full in _MONTH_NAMES if full.startswith(name[:3]))


@_rule(rf"(?<![\w.])(\d{{1,2}})(?:st|nd|rd|th)?\s({_MONTH})\b\.?(?:,?\s(\d{{4}}))?")
def _day_month(m: re.Match[str]) -> str:  # 22 Nov 2024: day first stays day first
    year = f" {year_words(int(m.group(3)))}" if m.group(3) else ""
    return f"the {ordinal(int(m.group(1)))} of {_month(m.group(2))}{year}"


@_rule(rf"\b({_MONTH})\.?\s(\d{{1,2}})(?:st|nd|rd|th)?\s?(?:-|–|to)\s?(\d{{1,2}})(?:st|nd|rd|th)?\b")
def _day_range(m: re.Match[str]) -> str:
    return f"{_month(m.group(1))} {ordinal(int(m.group(2)))} to {ordinal(int(m.group(3)))}"


@_rule(rf"\b({_MONTH})\.?\s(\d{{1,2}})(?:st|nd|rd|th)?\b(?:,?\s(\d{{4}}))?")
def _month_day(m: re.Match[str]) -> str:
    year = f" {year_words(int(m.group(3)))}" if m.group(3) else ""
    return f"{_month(m.group(1))} {ordinal(int(m.group(2)))}{year}"


@_rule(r"(?<![\w.])(\d{4})-(\d{2})-(\d{2})(?![\w.])|(?<![\w./])(\d{1,2})/(\d{1,2})/(\d{4})(?![\w./])")
def _numeric_date(m: re.Match[str]) -> str:  # ISO, and US month/day/year
    year, month, day = (m.group(1), m.group(2), m.group(3)) if m.group(1) else (m.group(6), m.group(4), m.group(5))
    if not (1 <= int(month) <= 12 and 1 <= int(day) <= 31):
        return m.group(0)
    return f"{_MONTH_NAMES[int(month) - 1]} {ordinal(int(day))} {year_words(int(year))}"


@_rule(r"(?<![\w.])(\d{1,2}:\d{2})\s?(?:-|–|—|~)\s?(\d{1,2}:\d{2})(?![\d])")
def _clock_range(m: re.Match[str]) -> str:
    return f"{m.group(1)} to {m.group(2)}"


@_rule(r"(?<![\w.])(\d{1,2}):(\d{2})(?::(\d{2}))?(?![\d])")
def _clock(m: re.Match[str]) -> str:
    hour, minute = int(m.group(1)), int(m.group(2))
    if hour > 24 or minute > 59:
        return m.group(0)
    if minute == 0:
        return f"{_below_100(hour)} o'clock"
    return f"{_below_100(hour)} {'oh ' + _ONES[minute] if minute < 10 else _below_100(minute)}"


@_rule(r"\s?o'clock(?=\s+[ap] m\b)")
def _oclock_ampm(m: re.Match[str]) -> str:  # five p m, not five o'clock p m
    return ""


@_rule(r"(?<![\w.])(\d+)\s?x\s?(\d+)(?![\w.])")
def _by(m: re.Match[str]) -> str:  # a 4x4 truck
    return f"{m.group(1)} by {m.group(2)}"


@_rule(r"(?<![\w.])(\d+)x(?=\s)")
def _times(m: re.Match[str]) -> str:  # 2x faster
    return f"{m.group(1)} times"


@_rule(r"\b24/7\b")
def _always(m: re.Match[str]) -> str:
    return "twenty four seven"


_UNITS = {
    "m": ("meter", "meters"), "L": ("liter", "liters"), "V": ("volt", "volts"), "W": ("watt", "watts"),
    "mAh": ("milliampere hour", "milliampere hours"), "kWh": ("kilowatt hour", "kilowatt hours"),
    "Hz": ("hertz", "hertz"),
}  # fmt: skip


@_rule(r"(?<![\w.])(\d+(?:\.\d+)?)\s?(mAh|kWh|L|V|W|Hz|m)\b(?!\s?(?:/|²|³))")
def _unit(m: re.Match[str]) -> str:
    one, many = _UNITS[m.group(2)]
    return f"{m.group(1)} {one if m.group(1) == '1' else many}"


_NUM = r"\d+(?:\.\d+)?"


@_rule(rf"(?<![\w.])(-?{_NUM})(%|\s?(?!to\b|and\b|or\b)[a-zA-Z°]{{1,4}})?\s?(?:-|–|—|~)\s?(?=-?{_NUM})")
def _range(m: re.Match[str]) -> str:  # 3-5 kg, 3%-5%, 10~20, 1.5-2.5 m
    return f"{m.group(1)}{m.group(2) or ''} to "


@_rule(r"(?<![\w.])-(?=\$?\d)")
def _minus(m: re.Match[str]) -> str:
    return "minus "


@_rule(r"(?<![\w.])\+(?=\d)")
def _plus(m: re.Match[str]) -> str:
    return "plus "


@_rule(r"(?<![\w.,])(\d{1,3}(?:,\d{3})+)(\.\d+)?(?![\d,])")
def _grouping(m: re.Match[str]) -> str:  # 1,234 is a quantity, never a year
    return cardinal(m.group(1).replace(",", "") + (m.group(2) or ""))


@_rule(r"(?<![\w.])(-?)(\d+(?:\.\d+)?)\s?%")
def _percent(m: re.Match[str]) -> str:
    return ("minus " if m.group(1) else "") + cardinal(m.group(2)) + " percent"


@_rule(r"\b([A-Za-z]+)-(\d+)\b")
def _name_number(m: re.Match[str]) -> str:  # COVID-19
    return f"{m.group(1)} {m.group(2)}"


@_rule(r"(?<![\w.:])(\d+):(\d+)(?![\w:])")
def _ratio(m: re.Match[str]) -> str:  # a score or a ratio (clock times were read above)
    return f"{cardinal(m.group(1))} to {cardinal(m.group(2))}"


@_rule(r"(?<![\w.])(\d+)(?:st|nd|rd|th)\b")
def _ordinal(m: re.Match[str]) -> str:
    return ordinal(int(m.group(1)))


_HALVES = {2: ("half", "halves"), 4: ("quarter", "quarters")}


def _fraction_words(numerator: int, denominator: int) -> str:
    one, many = _HALVES.get(denominator) or (ordinal(denominator), ordinal(denominator) + "s")
    return f"{cardinal(str(numerator))} {one if numerator == 1 else many}"


@_rule(r"(?<![\w./])(\d+) (1)/(2|4)(?![\w./])")
def _mixed_fraction(m: re.Match[str]) -> str:  # 1 1/2 cups: one and a half
    return f"{cardinal(m.group(1))} and a {_HALVES[int(m.group(3))][0]}"


@_rule(r"(?<![\w./])(\d{1,3})/(\d{1,3})(?![\w./])")
def _fraction(m: re.Match[str]) -> str:
    numerator, denominator = int(m.group(1)), int(m.group(2))
    if denominator < 2:
        return m.group(0)
    return _fraction_words(numerator, denominator)


_MEASURES = {
    "km": ("kilometer", "kilometers"), "kg": ("kilogram", "kilograms"), "cm": ("centimeter", "centimeters"),
    "mm": ("millimeter", "millimeters"), "ml": ("milliliter", "milliliters"), "mg": ("milligram", "milligrams"),
    "g": ("gram", "grams"), "m²": ("square meter", "square meters"), "m³": ("cubic meter", "cubic meters"),
    "km²": ("square kilometer", "square kilometers"), "km/h": ("kilometer per hour", "kilometers per hour"),
    "mph": ("mile per hour", "miles per hour"), "°C": ("degree celsius", "degrees celsius"),
    "°F": ("degree fahrenheit", "degrees fahrenheit"), "°": ("degree", "degrees"), "GB": ("gigabyte", "gigabytes"),
    "MB": ("megabyte", "megabytes"), "TB": ("terabyte", "terabytes"), "KB": ("kilobyte", "kilobytes"),
    "GHz": ("gigahertz", "gigahertz"), "MHz": ("megahertz", "megahertz"), "min": ("minute", "minutes"),
    "ft": ("foot", "feet"), "lbs": ("pound", "pounds"), "lb": ("pound", "pounds"), "oz": ("ounce", "ounces"),
    "mi": ("mile", "miles"), "ms": ("millisecond", "milliseconds"), "sec": ("second", "seconds"),
    "hrs": ("hour", "hours"), "hr": ("hour", "hours"),
}  # fmt: skip
_MEASURE_NAMES = "|".join(re.escape(u) for u in sorted(_MEASURES, key=len, reverse=True))


@_rule(rf"(?<![\w.])(\d+(?:\.\d+)?)\s?({_MEASURE_NAMES})(?![\w²³/])")
def _measure(m: re.Match[str]) -> str:
    one, many = _MEASURES[m.group(2)]
    return f"{cardinal(m.group(1))} {one if m.group(1) == '1' else many}"


@_rule(r"(?<![\w.])(\d+)([A-Z])\b|\b([A-Z])(\d+)(?![\w.])")
def _letter_number(m: re.Match[str]) -> str:  # 5G, 3D, A4
    if m.group(1):
        return f"{cardinal(m.group(1))} {m.group(2).lower()}"
    return f"{m.group(3).lower()} {cardinal(m.group(4))}"


@_rule(r"(?<![\w.])(\d+(?:\.\d+)?|\.\d+)(?![\w])")
def _number(m: re.Match[str]) -> str:  # what is left: a cardinal or a decimal
    return cardinal(m.group(1))


def rewrite(text: str) -> str:
    """Chorus's rules, in order, on folded text."""
    return _RULES.apply(text)


# ----------------------------------------------------------------------------- after the grammar
_NUMW = "|".join(sorted(_NUMBER_WORDS, key=len, reverse=True))
_RETOUCH: list[tuple[re.Pattern[str], str | Rewrite]] = [
    (re.compile(rf"\b(hundred|thousand|million|billion|trillion) and (?=(?:{_NUMW})\b)"), r"\1 "),
    (re.compile(r"(?<=\bpoint)((?: (?:oh|zero|one|two|three|four|five|six|seven|eight|nine))+)"),
     lambda m: m.group(1).replace(" oh", " zero")),
    (re.compile(r"\b(?<!\w')o (?=(?:one|two|three|four|five|six|seven|eight|nine)\b)"), "oh "),
    (re.compile(r"\bnegative\b"), "minus"),
]  # fmt: skip


_STREET_ABBREVIATIONS = {"Drive": "Dr", "Street": "St", "Avenue": "Ave", "Road": "Rd", "Lane": "Ln",
                         "Boulevard": "Blvd", "Court": "Ct", "Place": "Pl"}  # fmt: skip


def _split_word(m: re.Match[str]) -> str:
    """Undo the grammar's address rule cutting a word after its first letters (upstream bug: ``12 Oak
    Driveway`` -> ``twelve Oak Drive iveway``, since the rule expands ``Dr`` with no word boundary)."""
    expansion, rest = m.group(1), m.group(2)
    word = _STREET_ABBREVIATIONS[expansion] + rest
    return word if word.startswith(expansion) else m.group(0)


_RETOUCH.append((re.compile(rf"\b({'|'.join(_STREET_ABBREVIATIONS)}) (\w+)"), _split_word))


def retouch(text: str) -> str:
    """After the grammar: no "and" inside cardinals, zero in decimals, month before day, minus."""
    for pattern, repl in _RETOUCH:
        text = pattern.sub(repl, text)
    return text


_NEEDS_WFST = re.compile(r"[\d%$€£¥₹°²³/&@#+=]")


def _windows(text: str) -> list[tuple[str, bool]]:
    words = text.split(" ")
    marks = [bool(_NEEDS_WFST.search(w)) for w in words]
    out: list[tuple[str, bool]] = []
    i = 0
    while i < len(words):
        if not any(marks[max(0, i - CONTEXT_WORDS) : i + CONTEXT_WORDS + 1]):
            j = i
            while j < len(words) and not any(marks[max(0, j - CONTEXT_WORDS) : j + CONTEXT_WORDS + 1]):
                j += 1
            out.append((" ".join(words[i:j]), False))
        else:
            j = i
            while (
                j < len(words)
                and j - i < MAX_WFST_WORDS
                and any(marks[max(0, j - CONTEXT_WORDS) : j + CONTEXT_WORDS + 1])
            ):
                j += 1
            out.append((" ".join(words[i:j]), True))
        i = j
    return out


def normalize_en(text: str) -> str:
    """English text with numbers, money, dates, units and abbreviations in words, for espeak-ng."""
    text = unicodedata.normalize("NFC", text).translate(_FOLD)
    text = re.sub(r"[ \t]+", " ", rewrite(text)).strip()
    out = []
    for piece, needs in _windows(text):
        out.append(retouch(_GRAMMAR.normalize(piece)) if needs else piece)
    return " ".join(p for p in out if p)
