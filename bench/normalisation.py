"""Text normalisation against the project's table: accuracy per category, cost per sentence.

    .venv/bin/python -m bench.normalisation [--reps 5] [--misses 3] [--write-floor]

Mandarin runs chorus's normaliser (``workers.normalize_zh``: WeTextProcessing's grammar behind
chorus's rules); English runs ``workers.normalize_en`` (the same library's English grammar behind
chorus's rules), whose output espeak-ng reads.

Cost: every table input ``--reps`` times (the first pass warms caches and is left out), p50/p99
per call. ``--write-floor`` records today's per-category strict matches in
``tests/data/normalisation/floor.json``, the regression floor the tests hold the normaliser to.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable

from bench.common import pct
from chorus.normtable import TABLE_DIR, Score, load, score
from workers.normalize_en import normalize_en
from workers.normalize_zh import normalize_zh

SENTENCE_SETS = {
    lang: TABLE_DIR.parent / "intelligibility" / f"{name}.tsv" for lang, name in (("zh", "zh_hard"), ("en", "en"))
}
READERS: dict[str, tuple[str, Callable[[str], str]]] = {
    "zh": ("workers.normalize_zh", normalize_zh),
    "en": ("workers.normalize_en", normalize_en),
}


def cost_ms(read: Callable[[str], str], texts: list[str], reps: int) -> list[float]:
    out = []
    for rep in range(reps):
        for text in texts:
            t0 = time.perf_counter()
            read(text)
            if rep:
                out.append((time.perf_counter() - t0) * 1000)
    return out


def report(lang: str, name: str, result: Score, ms: list[float], misses: int) -> None:
    strict, lenient = result.accuracy()
    n = sum(result.total.values())
    print(f"== {lang}: {name}: {strict:.1%} strict, {lenient:.1%} with alt forms, of {n} rows; "
          f"cost p50 {pct(ms, 50):.3f} ms  p99 {pct(ms, 99):.3f} ms per sentence")  # fmt: skip
    for cat in sorted(result.total, key=lambda c: -result.total[c]):
        s, a = result.strict[cat], result.lenient[cat]
        print(f"  {cat:16} {s:>3}/{a:>3} of {result.total[cat]:>3}")
    by_cat: dict[str, int] = {}
    for row, reading in result.misses:
        if by_cat.get(row.category, 0) < misses:
            by_cat[row.category] = by_cat.get(row.category, 0) + 1
            print(f"    miss {row.category}: {row.text!r} -> {reading!r} (want {row.expected!r})")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--misses", type=int, default=0, help="show this many misses per category")
    ap.add_argument("--write-floor", action="store_true")
    args = ap.parse_args()
    floor: dict[str, dict[str, int]] = {}
    for lang, (name, read) in READERS.items():
        rows = load(lang)
        result = score(rows, read)
        report(lang, name, result, cost_ms(read, [r.text for r in rows], args.reps), args.misses)
        floor[lang] = dict(sorted(result.strict.items()))
    # whole sentences, as a worker gets them: the intelligibility sets (hard Mandarin, English)
    for lang, (_, read) in READERS.items():
        table = SENTENCE_SETS[lang]
        texts = [line.split("\t")[1] for line in table.read_text(encoding="utf-8").splitlines() if line[:1] not in "#"]
        ms = cost_ms(read, texts, args.reps)
        chars = sum(map(len, texts)) / len(texts)
        print(f"== {lang}: {len(texts)} sentences of {table.name} (mean {chars:.0f} characters): "
              f"p50 {pct(ms, 50):.3f} ms  p99 {pct(ms, 99):.3f} ms  max {max(ms):.3f} ms per sentence")  # fmt: skip
    if args.write_floor:
        path = TABLE_DIR / "floor.json"
        path.write_text(json.dumps(floor, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
