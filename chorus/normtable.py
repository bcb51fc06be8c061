"""The text-normalisation table (``tests/data/normalisation/<lang>.tsv``): rows, and how a reading is scored.

Each row is ``category<TAB>input<TAB>expected spoken form<TAB>note``; lines starting
with ``#`` state the conventions (两/二, 幺, years, ranges …). A note may hold
``alt=A|B``: other readings a listener takes as right. A reading matches when it
equals the expected form (*strict*) or one of the ``alt`` forms, after
:func:`canonical`: Unicode NFC, lower case, whitespace and punctuation (category
``P*``) dropped for Mandarin; punctuation and hyphens made spaces, spaces
collapsed and intra-word apostrophes kept for English. Symbols such as ``%`` or
``℃`` are not punctuation: a reading that leaves them is wrong.

Used by the tests (``tests/workers/test_normalisation_table.py``) and by
``bench/normalisation.py``, which reports accuracy per category and the cost per
sentence.
"""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["TABLE_DIR", "Row", "Score", "canonical", "load", "matches", "score"]

TABLE_DIR = Path(__file__).resolve().parents[1] / "tests" / "data" / "normalisation"
"""Where the tables live in a checkout (``zh.tsv``, ``en.tsv``)."""

_ALT = re.compile(r"alt=([^;]*)")


@dataclass(frozen=True)
class Row:
    lang: str
    category: str
    text: str
    expected: str
    alts: tuple[str, ...] = ()
    note: str = ""


@dataclass
class Score:
    """Matches per category: strict, and with ``alt`` forms accepted, of ``n``."""

    strict: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    lenient: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    total: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    misses: list[tuple[Row, str]] = field(default_factory=list)

    def accuracy(self, category: str | None = None) -> tuple[float, float]:
        """(strict, lenient) fraction for one category or (None) all of them."""
        cats = [category] if category else list(self.total)
        n = sum(self.total[c] for c in cats) or 1
        return sum(self.strict[c] for c in cats) / n, sum(self.lenient[c] for c in cats) / n


def load(lang: str, directory: Path = TABLE_DIR) -> list[Row]:
    """The rows of ``<directory>/<lang>.tsv``. ValueError for a line without its three columns."""
    rows = []
    for number, line in enumerate((directory / f"{lang}.tsv").read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split("\t")
        if len(parts) < 3 or not all(p.strip() for p in parts[:3]):
            raise ValueError(f"{lang}.tsv line {number}: needs category, input and expected form")
        note = parts[3] if len(parts) > 3 else ""
        m = _ALT.search(note)
        alts = tuple(a.strip() for a in m.group(1).split("|") if a.strip()) if m else ()
        rows.append(Row(lang, parts[0].strip(), parts[1], parts[2], alts, note))
    return rows


def canonical(text: str, lang: str) -> str:
    """The form readings are compared in (see the module docstring)."""
    text = unicodedata.normalize("NFC", text).lower()
    if lang == "zh":
        return "".join(ch for ch in text if not ch.isspace() and not unicodedata.category(ch).startswith("P"))
    text = re.sub(r"[-\u2010-\u2014]", " ", text.replace("\u2019", "'"))
    out = []
    for i, ch in enumerate(text):
        if ch == "'":
            inside = 0 < i < len(text) - 1 and text[i - 1].isalnum() and text[i + 1].isalnum()
            out.append(ch if inside else " ")
        else:
            out.append(" " if unicodedata.category(ch).startswith("P") else ch)
    return " ".join("".join(out).split())


def matches(row: Row, reading: str) -> tuple[bool, bool]:
    """(strict, lenient) match of ``reading`` against the row."""
    got = canonical(reading, row.lang)
    strict = got == canonical(row.expected, row.lang)
    return strict, strict or any(got == canonical(a, row.lang) for a in row.alts)


def score(rows: Iterable[Row], read: Callable[[str], str]) -> Score:
    """Run ``read`` over every row's input and count the matches per category."""
    out = Score()
    for row in rows:
        try:
            reading = read(row.text)
        except Exception as exc:  # a reader that raises on an input gets the row wrong, and says why
            reading = f"<{type(exc).__name__}: {exc}>"
        strict, lenient = matches(row, reading)
        out.total[row.category] += 1
        out.strict[row.category] += strict
        out.lenient[row.category] += lenient
        if not lenient:
            out.misses.append((row, reading))
    return out
