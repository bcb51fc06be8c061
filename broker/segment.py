"""Text segmentation: NFC, clause splitting, ``<break>`` pauses, growing segment sizes.

The first segment is the first clause alone, so first audio comes as early as
the model allows. Later segments merge clauses under a budget that doubles
(32, 64, then 100 weighted characters): each segment's audio covers the time
the next one takes to synthesise, so playback does not stall, while long text
still goes in large, prosodically natural pieces. No segment exceeds
``max_chars``; the worker additionally splits any phoneme run over the model's
token limit.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from shared.errors import TextError
from shared.protocol import MAX_PAUSE_MS, MAX_REQUEST_TEXT_BYTES, MAX_SEGMENT_TEXT_BYTES, MAX_SEGMENTS

__all__ = ["FIRST_MAX_CHARS", "MAX_CHARS", "Segment", "clauses", "presegmented", "segment_text", "weight"]

FIRST_MAX_CHARS = 24
"""Longest first segment (weighted characters)."""
FIRST_BUDGET = 32
"""Budget of the second segment; it doubles per segment up to :data:`MAX_CHARS`."""
MAX_CHARS = 100
"""Hard cap per segment; ~100 CJK characters stays well under Kokoro's 510 tokens."""

_BREAK_RE = re.compile(r"<break\b([^>]*)/?>", re.IGNORECASE)
_BREAK_TIME_RE = re.compile(r"""^\s*time\s*=\s*["']\s*(\d+(?:\.\d+)?)\s*(ms|s)\s*["']\s*/?\s*$""", re.IGNORECASE)
# Full-width / CJK clause marks always end a clause; closing quotes stay with it.
_CJK_END = "，。？！；：、…"
_ASCII_END = ",.?!;:"
_CLOSERS = "”’」』）)]】》\"'"
_SPLIT_RE = re.compile(rf"(?:[{re.escape(_CJK_END)}]+|[{re.escape(_ASCII_END)}]+(?=\s|$))[{re.escape(_CLOSERS)}]*")


@dataclass(frozen=True)
class Segment:
    text: str
    """Text to speak; empty for a pure pause."""
    pause_ms: int = 0
    """Silence after the text."""


def weight(text: str) -> float:
    """Rough spoken length: a CJK character counts 1, other visible characters 0.4."""
    return sum(1.0 if ord(c) >= 0x2E80 else 0.4 for c in text if not c.isspace())


def _pause_ms(attrs: str) -> int:
    m = _BREAK_TIME_RE.match(attrs)
    if not m:
        raise TextError(f'malformed <break{attrs}>: write <break time="250ms"/> or <break time="1s"/>')
    value = float(m.group(1)) * (1000 if m.group(2).lower() == "s" else 1)
    if value > MAX_PAUSE_MS:
        raise TextError(f"<break> of {value:.0f} ms is longer than the limit of {MAX_PAUSE_MS} ms")
    return int(value)


def clauses(text: str) -> list[Segment]:
    """Split into clauses; a ``<break>`` adds its pause to the clause before it."""
    out: list[Segment] = []
    pos = 0
    for m in _BREAK_RE.finditer(text):
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
            piece = line[pos : m.end()].strip()
            if piece:
                out.append(Segment(piece))
            pos = m.end()
        tail = line[pos:].strip()
        if tail:
            out.append(Segment(tail))
    return out


def _hard_split(text: str, cap: float) -> list[str]:
    """Cut an over-long clause, preferring whitespace, never exceeding ``cap``."""
    pieces: list[str] = []
    rest = text
    while weight(rest) > cap:
        cut, acc = 0, 0.0
        for i, c in enumerate(rest):
            acc += 0.0 if c.isspace() else (1.0 if ord(c) >= 0x2E80 else 0.4)
            if acc > cap:
                break
            cut = i + 1
        space = rest.rfind(" ", 0, cut)
        if space > cut // 2:
            cut = space
        pieces.append(rest[:cut].strip())
        rest = rest[cut:].strip()
    if rest:
        pieces.append(rest)
    return [p for p in pieces if p]


def segment_text(
    text: str,
    *,
    first_max_chars: float = FIRST_MAX_CHARS,
    first_budget: float = FIRST_BUDGET,
    max_chars: float = MAX_CHARS,
) -> list[Segment]:
    """Split request text into segments for the queue; :class:`TextError` for unusable text."""
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
        units.extend(Segment(p) for p in parts[:-1])
        units.append(Segment(parts[-1], c.pause_ms))
    if not any(u.text for u in units):
        raise TextError("text has nothing to speak (empty or only whitespace and pauses)")

    segments: list[Segment] = [units[0]]
    budget = first_budget
    for unit in units[1:]:
        last = segments[-1]
        joined = _join(last.text, unit.text)
        if len(segments) > 1 and last.pause_ms == 0 and weight(joined) <= budget:
            segments[-1] = Segment(joined, unit.pause_ms)
            continue
        if len(segments) > 1:
            budget = min(max_chars, budget * 2)
        segments.append(unit)
    if len(segments) > MAX_SEGMENTS:
        raise TextError(f"text makes {len(segments)} segments; the limit is {MAX_SEGMENTS}")
    for s in segments:
        if len(s.text.encode("utf-8")) > MAX_SEGMENT_TEXT_BYTES:  # pragma: no cover - max_chars bounds it
            raise TextError("a segment exceeds the byte limit")
    return segments


def presegmented(texts: list[str]) -> list[Segment]:
    """Segments a producer cut itself (one model call each), checked against the protocol limits."""
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
    return out


def _join(a: str, b: str) -> str:
    if not a:
        return b
    if a[-1].isascii() and b[:1].isascii():
        return f"{a} {b}"
    return a + b
