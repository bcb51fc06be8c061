"""The normalisation table (issue 19): well formed, large enough, scored fairly, and a floor the
normalisers may not fall below (``bench.normalisation --write-floor`` raises it as rows pass)."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from chorus.normtable import TABLE_DIR, Row, canonical, load, matches, score
from workers.normalize_en import normalize_en
from workers.normalize_zh import normalize_zh

MINIMUM = {"zh": 200, "en": 150}


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_the_table_is_large_and_well_formed(lang: str) -> None:
    rows = load(lang)
    assert len(rows) >= MINIMUM[lang]
    per_category = Counter(r.category for r in rows)
    assert len(per_category) >= 20 and min(per_category.values()) >= 5, per_category
    dupes = [text for text, n in Counter(r.text for r in rows).items() if n > 1]
    assert not dupes, dupes
    assert (TABLE_DIR / f"{lang}.tsv").read_text(encoding="utf-8").startswith("#")  # the conventions come first


def test_scoring_ignores_spacing_and_punctuation_but_not_symbols() -> None:
    zh = Row("zh", "range", "3-5%", "百分之三到百分之五")
    assert matches(zh, "百分之三 到 百分之五。") == (True, True)
    assert matches(zh, "三到五%") == (False, False)
    en = Row("en", "money", "$7.47", "seven dollars and forty-seven cents", ("seven forty seven",))
    assert matches(en, "Seven dollars and forty seven cents.") == (True, True)
    assert matches(en, "seven forty-seven") == (False, True)
    assert canonical("don't", "en") == "don't" and canonical("'quoted'", "en") == "quoted"


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_the_normaliser_holds_its_floor(lang: str) -> None:
    floor = json.loads((TABLE_DIR / "floor.json").read_text(encoding="utf-8"))[lang]
    result = score(load(lang), {"zh": normalize_zh, "en": normalize_en}[lang])
    below = {c: (result.strict[c], n) for c, n in floor.items() if result.strict[c] < n}
    assert not below, f"categories below their floor (got, floor): {below}"
