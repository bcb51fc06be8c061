"""Which language a segment is in: what picks its voice when a request names none.

The rule is by script, per segment (docs/PROTOCOL.md §3.1, vectors ``voices.json``):

* a segment with a Han ideograph is ``zh``: English words inside Mandarin stay there
  (the Mandarin frontend reads them);
* a segment with a Latin letter and no Han is ``en``;
* a segment with neither (digits, punctuation, a pure pause) takes its neighbour's
  language: the previous segment's, else the next one's, else the request's
  (:data:`DEFAULT_LANG` when the request names no voice).

Segmentation (:mod:`chorus_client.segment`) helps: it never merges a ``zh`` piece and
an ``en`` piece into one segment, and it cuts a clause where a long Latin stretch
(:data:`LONG_LATIN_WORDS` words or more, no Han in it) meets Han text with no mark
between them (:func:`split_scripts`), so "你好。Hello world. 再见。" is three segments:
``zh``, ``en``, ``zh``. Every scan here is one pass of a regex that cannot backtrack.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence

__all__ = [
    "DEFAULT_LANG",
    "EN",
    "LONG_LATIN_WORDS",
    "ZH",
    "compatible",
    "script_lang",
    "segment_languages",
    "split_scripts",
]

ZH = "zh"
EN = "en"
DEFAULT_LANG = ZH
"""The language of a request without a voice whose segments have neither Han nor Latin letters."""
LONG_LATIN_WORDS = 4
"""A stretch of text without Han holding at least this many Latin words is cut off the Han text
next to it (an English sentence inside a Mandarin clause); fewer stay with the Mandarin."""

_HAN_RANGES = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
"""CJK Unified Ideographs, Extension A, Compatibility Ideographs: as ``shared.text.HAN``."""
_LATIN_RANGES = "A-Za-z\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u024f\u1e00-\u1eff"
"""ASCII letters, Latin-1 letters (not × ÷), Latin Extended-A and -B, Latin Extended Additional."""
_HAN = re.compile(f"[{_HAN_RANGES}]")
_HAN_RUN = re.compile(f"[{_HAN_RANGES}]+")
_LATIN = re.compile(f"[{_LATIN_RANGES}]")
_LATIN_WORD = re.compile(f"[{_LATIN_RANGES}]+")


def script_lang(text: str) -> str | None:
    """``zh`` when ``text`` has a Han ideograph, else ``en`` when it has a Latin letter, else None."""
    if _HAN.search(text):
        return ZH
    if _LATIN.search(text):
        return EN
    return None


def compatible(a: str | None, b: str | None) -> bool:
    """Whether pieces of these languages may share a segment (None goes with anything)."""
    return a is None or b is None or a == b


def segment_languages(texts: Sequence[str], default: str = DEFAULT_LANG) -> list[str]:
    """The language of each segment: its script's, else the previous segment's, else the next
    one's, else ``default``."""
    own = [script_lang(t) for t in texts]
    first = next((lang for lang in own if lang is not None), default)
    out: list[str] = []
    for lang in own:
        out.append(lang if lang is not None else (out[-1] if out else first))
    return out


def split_scripts(clause: str) -> list[str]:
    """Cut ``clause`` before and after each stretch without Han that holds at least
    :data:`LONG_LATIN_WORDS` Latin words, when the clause also has Han: "我说Hello, how are you
    today你好" gives "我说", "Hello, how are you today", "你好". Pieces are stripped, empty ones
    dropped; a clause with no such stretch comes back whole."""
    runs = list(_HAN_RUN.finditer(clause))
    if not runs:
        return [clause]
    # the stretches without Han: before, between and after the runs of Han
    gaps = [(a.end(), b.start()) for a, b in itertools.pairwise(runs)]
    gaps = [(0, runs[0].start()), *gaps, (runs[-1].end(), len(clause))]
    cuts: list[int] = []
    for start, end in gaps:
        if len(_LATIN_WORD.findall(clause, start, end)) >= LONG_LATIN_WORDS:
            cuts += [start, end]
    if not cuts:
        return [clause]
    bounds = [0, *cuts, len(clause)]
    pieces = (clause[a:b].strip() for a, b in itertools.pairwise(bounds))
    return [p for p in pieces if p]
