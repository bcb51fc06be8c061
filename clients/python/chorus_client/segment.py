"""Text segmentation: NFC, clause splitting, ``<break>`` pauses, growing segment sizes.

The first segment is the first clause alone, so first audio comes as early as
the model allows. Later segments merge clauses under a budget that doubles
(32, 64, then 100 weighted characters): each segment's audio covers the time
the next one takes to synthesise, so playback does not stall, while long text
still goes in large, prosodically natural pieces. A segment never mixes a Mandarin
piece with an English one (:func:`chorus_client.language.compatible`), and a long
English stretch inside a Mandarin clause is cut off it
(:func:`chorus_client.language.split_scripts`), so each segment has one language
for a request that names no voice. No segment exceeds
``max_chars`` weighted characters or :data:`MAX_SEGMENT_TEXT_BYTES` UTF-8
bytes; the worker additionally splits any phoneme run over the model's token
limit. Text with no letter or digit anywhere is refused: there is nothing to
speak.

Segmentation runs on the gateway's event loop, so every step is linear in the
text length: no regular expression here can backtrack over a run of the input,
and over-long clauses are cut in one scan.
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from dataclasses import dataclass

from chorus_client.errors import TextError
from chorus_client.language import compatible, script_lang, split_scripts
from chorus_client.protocol import MAX_PAUSE_MS, MAX_REQUEST_TEXT_BYTES, MAX_SEGMENT_TEXT_BYTES, MAX_SEGMENTS

__all__ = [
    "ABBREVIATIONS",
    "FIRST_MAX_CHARS",
    "MAX_CHARS",
    "Segment",
    "clauses",
    "presegmented",
    "segment_text",
    "speakable",
    "weight",
]

FIRST_MAX_CHARS = 24
"""Longest first segment (weighted characters)."""
FIRST_BUDGET = 32
"""Budget of the second segment; it doubles per segment up to :data:`MAX_CHARS`."""
MAX_CHARS = 100
"""Hard cap per segment; ~100 CJK characters stays well under Kokoro's 510 tokens."""

# A tag runs to the first ">" after "<break". Searched only up to the last ">" of the text
# (see clauses), so every attempt finds its ">" and no run is rescanned.
_BREAK_RE = re.compile(r"<break\b([^>]*)/?>", re.IGNORECASE)
# The tail is "\s*(?:/\s*)?$", not "\s*/?\s*$": two adjacent \s* before a failing "$" try every
# split of a long whitespace run, quadratic in its length.
_BREAK_TIME_RE = re.compile(r"""^\s*time\s*=\s*["']\s*(\d+(?:\.\d+)?)\s*(ms|s)\s*["']\s*(?:/\s*)?$""", re.IGNORECASE)
# Full-width / CJK clause marks always end a clause; closing quotes stay with it.
_CJK_END = "，。？！；：、…"
_ASCII_END = ",.?!;:"
_CLOSERS = "”’」』）)]】》\"'"
# The look-behind starts the ASCII alternative only at the start of a run of marks: a run not
# followed by whitespace fails the look-ahead from every position inside it too, and trying
# them all is quadratic in the run (64 KB of "," took 46 s). Matches are unchanged, since a
# match can only end at the run's end.
_SPLIT_RE = re.compile(
    rf"(?:[{re.escape(_CJK_END)}]+|(?<![{re.escape(_ASCII_END)}])[{re.escape(_ASCII_END)}]+(?=\s|$))[{re.escape(_CLOSERS)}]*"
)


ABBREVIATIONS = frozenset(
    "mr mrs ms dr prof sr jr st mt rd ave vs etc vol fig inc ltd co dept approx est "
    "jan feb mar apr jun jul aug sep sept oct nov dec".split()
)
"""Words whose ``.`` does not end a sentence (matched in lower case): "Dr. Brown" stays one
segment. Letters joined by dots count too ("e.g.", "U.S.", "p.m.", an initial "J.")."""
_INITIALS = re.compile(r"(?:[A-Za-z]\.)*[A-Za-z]")
_OPENERS = "\"'“‘([{《「『【"


def _abbreviation(line: str, end: int) -> bool:
    """Whether the word that ends at ``line[end]`` (a ``.`` follows) is an abbreviation."""
    start = end
    while start > 0 and not line[start - 1].isspace():
        start -= 1
    word = line[start:end].lstrip(_OPENERS)
    return word.lower() in ABBREVIATIONS or _INITIALS.fullmatch(word) is not None


@dataclass(frozen=True)
class Segment:
    text: str
    """Text to speak; empty for a pure pause."""
    pause_ms: int = 0
    """Silence after the text."""


def _fifths(c: str) -> int:
    # Weights are counted in integer fifths so that sums are exact: float sums of 0.4 drift
    # (250 x 0.4 adds up to 100.00000000000034) and running totals must equal a recount.
    return 0 if c.isspace() else (5 if ord(c) >= 0x2E80 else 2)


def _utf8_len(c: str) -> int:
    o = ord(c)
    return 1 if o < 0x80 else 2 if o < 0x800 else 3 if o < 0x10000 else 4


def weight(text: str) -> float:
    """Rough spoken length in weighted characters: a CJK character counts 1, other visible characters 0.4."""
    return sum(map(_fifths, text)) / 5


def speakable(text: str) -> bool:
    """Whether ``text`` has something to say: a letter or a digit (Unicode category L* or N*).

    Emoji, punctuation, symbols, whitespace and control or format characters alone are not.
    """
    return any(unicodedata.category(c)[0] in "LN" for c in text)


def _pause_ms(attrs: str) -> int:
    m = _BREAK_TIME_RE.match(attrs)
    if not m:
        shown = attrs if len(attrs) <= 40 else attrs[:40] + "…"  # the error goes back to the sender: keep it short
        raise TextError(f'malformed <break{shown}>: write <break time="250ms"/> or <break time="1s"/>')
    value = float(m.group(1)) * (1000 if m.group(2).lower() == "s" else 1)
    if value > MAX_PAUSE_MS:
        raise TextError(f"<break> of {value:.0f} ms is longer than the limit of {MAX_PAUSE_MS} ms")
    return int(value)


def clauses(text: str) -> list[Segment]:
    """Split into clauses; a ``<break>`` adds its pause to the clause before it.

    :class:`TextError` for a malformed ``<break>`` or one over :data:`MAX_PAUSE_MS`.
    """
    out: list[Segment] = []
    pos = 0
    # No tag can end after the last ">": stopping there spares the regex a scan to the end of
    # the text from every "<break" past it, quadratic for text made of "<break".
    for m in _BREAK_RE.finditer(text, 0, text.rfind(">") + 1):
        out.extend(_split_plain(text[pos : m.start()]))
        pause = _pause_ms(m.group(1))
        if out:
            last = out[-1]
            out[-1] = Segment(last.text, min(MAX_PAUSE_MS, last.pause_ms + pause))
        else:
            out.append(Segment("", pause))
        pos = m.end()
    out.extend(_split_plain(text[pos:]))
    return out


def _split_plain(text: str) -> list[Segment]:
    out: list[Segment] = []
    for line in text.splitlines():
        pos = 0
        for m in _SPLIT_RE.finditer(line):
            if m.group(0) == "." and _abbreviation(line, m.start()):
                continue  # "Dr. Brown", "e.g. this": not the end of a sentence
            piece = line[pos : m.end()].strip()
            if piece:
                out.extend(Segment(p) for p in split_scripts(piece))
            pos = m.end()
        tail = line[pos:].strip()
        if tail:
            out.extend(Segment(p) for p in split_scripts(tail))
    return out


def _hard_split(text: str, cap: float) -> list[str]:
    """Cut an over-long clause into pieces of at most ``cap`` weighted characters, preferring spaces.

    A piece ends where the next character would exceed ``cap``, or at the last space
    in its second half. One scan: each character is read at most twice (when a cut
    moves back to a space, the part after it starts the next piece), so it is linear
    in ``len(text)``. Whitespace at the cuts is dropped.
    """
    limit = cap * 5  # in fifths, like _fifths
    n = len(text)
    pieces: list[str] = []
    start = 0
    while start < n:
        acc, end = 0, start
        while end < n:
            acc += _fifths(text[end])
            if acc > limit:
                break
            end += 1
        if end == n:
            pieces.append(text[start:].strip())
            break
        end = max(end, start + 1)  # a single character over the cap still makes progress
        cut = end
        space = text.rfind(" ", start, end)
        if space - start > (end - start) // 2:
            cut = space
        pieces.append(text[start:cut].strip())
        start = cut
        while start < n and text[start].isspace():
            start += 1
    return [p for p in pieces if p]


def _byte_split(text: str, limit: int) -> list[str]:
    """Cut ``text`` into pieces of at most ``limit`` UTF-8 bytes, at whitespace where there is some.

    Weight ignores whitespace, so a piece under the weight cap can still be long in
    bytes ("a", 2,000 ideographic spaces, "b"); this keeps every segment within the
    protocol's byte limit. Linear: each character is read at most twice.
    """
    n = len(text)
    pieces: list[str] = []
    start = 0
    while start < n:
        size, end = 0, start
        while end < n and size + _utf8_len(text[end]) <= limit:
            size += _utf8_len(text[end])
            end += 1
        if end == n:
            pieces.append(text[start:].strip())
            break
        cut = end
        # Cut at the last whitespace that fits (or the one right after), not inside a word.
        for i in range(end, start, -1):
            if text[i].isspace():
                cut = i
                break
        cut = max(cut, start + 1)
        pieces.append(text[start:cut].strip())
        start = cut
        while start < n and text[start].isspace():
            start += 1
    return [p for p in pieces if p]


def segment_text(
    text: str,
    *,
    first_max_chars: float = FIRST_MAX_CHARS,
    first_budget: float = FIRST_BUDGET,
    max_chars: float = MAX_CHARS,
) -> list[Segment]:
    """Split request text into segments for the queue.

    Sizes are weighted characters (see :func:`weight`). Linear in ``len(text)``.
    :class:`TextError` for unusable text: not a str, a lone surrogate, over
    :data:`MAX_REQUEST_TEXT_BYTES`, a malformed or too long ``<break>``, nothing to
    speak (no letter or digit, see :func:`speakable`), or over :data:`MAX_SEGMENTS`
    segments.
    """
    if not isinstance(text, str):
        raise TextError(f"text must be a str, got {type(text).__name__}")
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError:
        raise TextError("text is not valid Unicode (lone surrogate); send UTF-8") from None
    if size > MAX_REQUEST_TEXT_BYTES:
        raise TextError(f"text is {size} UTF-8 bytes; the limit is {MAX_REQUEST_TEXT_BYTES}: split it into requests")
    text = unicodedata.normalize("NFC", text)
    units: list[Segment] = []
    for c in clauses(text):
        cap = first_max_chars if not units else max_chars
        parts = _hard_split(c.text, cap) if c.text else [""]
        if any(len(p.encode("utf-8")) > MAX_SEGMENT_TEXT_BYTES for p in parts):
            parts = [b for p in parts for b in _byte_split(p, MAX_SEGMENT_TEXT_BYTES)]
        units.extend(Segment(p) for p in parts[:-1])
        units.append(Segment(parts[-1], c.pause_ms))
    if not any(speakable(u.text) for u in units):
        raise TextError(
            "nothing to speak: the text has no letters or digits "
            "(it is empty, or only whitespace, punctuation, symbols, emoji or pauses)"
        )

    # Merge with running totals (weight in fifths, UTF-8 bytes) and join each segment's parts
    # once at the end: re-measuring or re-concatenating the growing segment per unit would
    # cost its length again for every unit merged into it.
    parts_of: list[list[str]] = [[units[0].text]]
    langs = [script_lang(units[0].text)]  # each segment's language so far (None: no Han or Latin yet)
    pauses = [units[0].pause_ms]
    fifths = [sum(map(_fifths, units[0].text))]
    sizes = [len(units[0].text.encode("utf-8"))]
    budget = first_budget
    for unit in units[1:]:
        w, b = sum(map(_fifths, unit.text)), len(unit.text.encode("utf-8"))
        lang = script_lang(unit.text)
        last = parts_of[-1]
        space = 1 if _spaced(last[-1], unit.text) else 0
        if (
            len(parts_of) > 1
            and pauses[-1] == 0
            and compatible(langs[-1], lang)
            and fifths[-1] + w <= budget * 5
            and sizes[-1] + space + b <= MAX_SEGMENT_TEXT_BYTES
        ):
            last.append(unit.text)
            langs[-1] = langs[-1] or lang
            pauses[-1] = unit.pause_ms
            fifths[-1] += w
            sizes[-1] += space + b
            continue
        if len(parts_of) > 1:
            budget = min(max_chars, budget * 2)
        parts_of.append([unit.text])
        langs.append(lang)
        pauses.append(unit.pause_ms)
        fifths.append(w)
        sizes.append(b)
    if len(parts_of) > MAX_SEGMENTS:
        raise TextError(f"text makes {len(parts_of)} segments; the limit is {MAX_SEGMENTS}")
    segments = [Segment(_join_all(parts), pause) for parts, pause in zip(parts_of, pauses, strict=True)]
    for s in segments:
        if len(s.text.encode("utf-8")) > MAX_SEGMENT_TEXT_BYTES:  # pragma: no cover - split and merge bound it
            raise TextError("a segment exceeds the byte limit")
    return segments


def presegmented(texts: list[str]) -> list[Segment]:
    """Segments a producer cut itself (one model call each), checked against the protocol limits.

    :class:`TextError` for no segments, over :data:`MAX_SEGMENTS`, a segment that is
    not a str, blank, a lone surrogate or over :data:`MAX_SEGMENT_TEXT_BYTES` UTF-8
    bytes, or when no segment has a letter or digit (see :func:`speakable`). A segment
    of only punctuation or symbols is kept when another one has something to say.
    """
    if not texts:
        raise TextError("no segments given")
    if len(texts) > MAX_SEGMENTS:
        raise TextError(f"{len(texts)} segments; the limit is {MAX_SEGMENTS}")
    out: list[Segment] = []
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise TextError(f"segment {i} must be a str, got {type(text).__name__}")
        text = unicodedata.normalize("NFC", text).strip()
        if not text:
            raise TextError(f"segment {i} has nothing to speak")
        try:
            size = len(text.encode("utf-8"))
        except UnicodeEncodeError:
            raise TextError(f"segment {i} is not valid Unicode (lone surrogate)") from None
        if size > MAX_SEGMENT_TEXT_BYTES:
            raise TextError(f"segment {i} is {size} UTF-8 bytes; the limit is {MAX_SEGMENT_TEXT_BYTES}")
        out.append(Segment(text))
    if not any(speakable(s.text) for s in out):
        raise TextError("nothing to speak: no segment has a letter or digit (only punctuation, symbols or emoji)")
    return out


def _spaced(a: str, b: str) -> bool:
    """Whether joining ``a`` and ``b`` puts a space between them (two ASCII neighbours)."""
    return bool(a) and a[-1].isascii() and b[:1].isascii()


def _join_all(parts: list[str]) -> str:
    """Join a segment's parts in one pass, with a space between two ASCII neighbours (words)."""
    out = [parts[0]]
    for prev, part in itertools.pairwise(parts):
        if _spaced(prev, part):
            out.append(" ")
        out.append(part)
    return "".join(out)
