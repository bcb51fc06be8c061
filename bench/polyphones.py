"""Mandarin polyphone readings in context (issues 13 and 19): accuracy, cost and size of each candidate.

Scores every candidate G2P on the labelled lists ``tests/data/polyphones/zh.tsv`` (the one chorus's
rules were written on) and ``zh_holdout.tsv`` (written after they were frozen), read by path:
nothing is imported from ``tests``. For each: the reading it gives the target character of each row,
overall and per character, its cost per sentence (p50/p99 ms, steady state), its cold load (import +
first sentence), the RSS that load adds, and the install size of what it adds to chorus (the sum of
the RECORD sizes of its distributions; compiled .pyc files come on top).

Each candidate runs in a fresh interpreter (``--worker NAME``) because some of them change
pypinyin's process-wide phrase table. Candidates whose packages are not importable are reported as
such and skipped. The sentences are split into Han runs as ``workers.frontend_zh`` does, and each
run is segmented by jieba where the candidate uses words:

  pypinyin          today's path: jieba.lcut + lazy_pinyin(word, TONE3, neutral 5) per word
  pypinyin+large    the same after pypinyin_dict's large_pinyin phrase table is loaded
  pypinyin+cedict   the same after pypinyin_dict's cc_cedict phrase table is loaded
  pypinyin+zdic     the same after pypinyin_dict's zdic_cibs + zdic_cybs phrase tables are loaded
  chorus            workers.polyphones.word_pinyin: today's path + chorus's own phrase overrides and
                    context rules (the one the frontend uses)
  chorus+large      the same with large_pinyin loaded underneath
  g2pM              g2pM's numpy BiLSTM over the whole run (``G2pM()(run, char_split=True)``)
  pypinyin+g2pM     today's path, with g2pM's choice for polyphonic one-character words only
  g2pC/jieba-pos    g2pC's CRF (bundled crf100.bin, sklearn-crfsuite) fed jieba.posseg words and tags
                    in place of pkuseg's, whose POS model downloads at run time; needs its own venv

Usage::

    .venv/bin/python -m bench.polyphones                      # every candidate importable here
    .venv/bin/python -m bench.polyphones --only chorus,pypinyin --errors
    /tmp/g2pcvenv/bin/python -m bench.polyphones --only g2pC/jieba-pos   # from the repo root

Results and the decision: the docstring of :mod:`workers.polyphones`.
"""

from __future__ import annotations

import argparse
import importlib.metadata as md
import json
import os
import re
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data" / "polyphones"
TABLES = (DATA / "zh.tsv", DATA / "zh_holdout.tsv")  # the list the rules were written on; one written after
HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")  # as shared.text.HAN

# distributions each candidate adds on top of chorus (jieba, pypinyin and numpy are there already)
DISTS: dict[str, list[str]] = {
    "pypinyin": [],
    "pypinyin+large": ["pypinyin-dict"],
    "pypinyin+cedict": ["pypinyin-dict"],
    "pypinyin+zdic": ["pypinyin-dict"],
    "chorus": [],
    "chorus+large": ["pypinyin-dict"],
    "g2pM": ["g2pM"],
    "pypinyin+g2pM": ["g2pM"],
    "g2pC/jieba-pos": [
        "g2pC", "sklearn-crfsuite", "python-crfsuite", "scikit-learn", "scipy", "joblib", "threadpoolctl", "tabulate",
        "tqdm",
    ],
}  # fmt: skip
CANDIDATES = list(DISTS)

Row = tuple[str, int, str]
G2P = Callable[[str], list[str]]


def load_table(path: Path) -> list[Row]:
    """(sentence, 0-based index, TONE3 pinyin) per data line; comments and the header row skipped."""
    rows: list[Row] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#") or line.startswith("sentence\t"):
            continue
        sentence, index, pinyin = line.split("\t")[:3]
        rows.append((sentence, int(index), pinyin))
    return rows


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))]


def rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def install_mib(names: list[str]) -> float | None:
    total = 0
    for name in names:
        try:
            files = md.distribution(name).files or []
        except md.PackageNotFoundError:
            return None
        total += sum(f.size or 0 for f in files)
    return total / 2**20


# ---------------------------------------------------------------- candidates (built inside the worker)
def _per_run(run_g2p: Callable[[str], list[str]]) -> G2P:
    """Sentence -> one pinyin (or the character itself) per character, G2P applied per Han run."""

    def g2p(sentence: str) -> list[str]:
        out = list(sentence)
        for m in HAN.finditer(sentence):
            pys = run_g2p(m.group(0))
            if len(pys) == len(m.group(0)):
                out[m.start() : m.end()] = pys
        return out

    return g2p


def _words_g2p(word_pinyin: Callable[[list[str]], list[list[str]]]) -> G2P:
    import jieba

    def run_g2p(run: str) -> list[str]:
        return [p for pys in word_pinyin(jieba.lcut(run, cut_all=False)) for p in pys]

    return _per_run(run_g2p)


def _lazy(words: list[str]) -> list[list[str]]:
    from pypinyin import Style, lazy_pinyin

    return [lazy_pinyin(w, style=Style.TONE3, neutral_tone_with_five=True) for w in words]


def _g2pm_norm(p: str) -> str:
    return p.replace("u:", "v")


def build(name: str) -> G2P:
    import logging

    import jieba

    jieba.setLogLevel(logging.WARNING)
    jieba.initialize()
    if name == "pypinyin":
        return _words_g2p(_lazy)
    if name in ("pypinyin+large", "chorus+large"):
        from pypinyin_dict.phrase_pinyin_data import large_pinyin

        large_pinyin.load()
    if name == "pypinyin+cedict":
        from pypinyin_dict.phrase_pinyin_data import cc_cedict

        cc_cedict.load()
    if name == "pypinyin+zdic":
        from pypinyin import load_phrases_dict
        from pypinyin_dict.phrase_pinyin_data import zdic_cibs, zdic_cybs

        load_phrases_dict({**zdic_cibs.phrases_dict, **zdic_cybs.phrases_dict})
    if name in ("pypinyin+large", "pypinyin+cedict", "pypinyin+zdic"):
        return _words_g2p(_lazy)
    if name in ("chorus", "chorus+large"):
        from workers.polyphones import word_pinyin

        return _words_g2p(word_pinyin)
    if name == "g2pM":
        from g2pM import G2pM

        model = G2pM()
        return _per_run(lambda run: [_g2pm_norm(p) for p in model(run, tone=True, char_split=True)])
    if name == "pypinyin+g2pM":
        from g2pM import G2pM

        model = G2pM()

        def run_hybrid(run: str) -> list[str]:
            words = jieba.lcut(run, cut_all=False)
            pys = [p for w in _lazy(words) for p in w]
            single = {i for i, w in enumerate(words) if len(w) == 1}
            if not any(len(model.cedict.get(words[i], ())) > 1 for i in single):
                return pys
            neural = [_g2pm_norm(p) for p in model(run, tone=True, char_split=True)]
            pos = 0
            for i, w in enumerate(words):
                if i in single and len(model.cedict.get(w, ())) > 1 and len(neural) == len(pys):
                    pys[pos] = neural[pos]
                pos += len(w)
            return pys

        return _per_run(run_hybrid)
    if name == "g2pC/jieba-pos":
        return _g2pc_jieba()
    raise SystemExit(f"unknown candidate {name}")


def _g2pc_jieba() -> G2P:
    """g2pC's CRF and CEDICT readings, with jieba.posseg in place of pkuseg (whose tagger downloads)."""
    import pickle

    import g2pc.g2pc as g
    import jieba.posseg as pseg

    here = os.path.dirname(g.__file__)
    with open(os.path.join(here, "cedict.pkl"), "rb") as f:
        cedict = pickle.load(f)
    with open(os.path.join(here, "crf100.bin"), "rb") as f:
        crf = pickle.load(f)

    def run_g2p(run: str) -> list[str]:
        analyzed = []
        for word, pos in ((p.word, p.flag) for p in pseg.lcut(run)):
            if word in cedict:
                analyzed.append((word, pos, cedict[word]["pron"]))
            else:
                analyzed.extend((c, pos, cedict[c]["pron"] if c in cedict else [c]) for c in word)
        preds = crf.predict([g.sent2features(analyzed)])[0]
        out: list[str] = []
        for (_, _, prons), p in zip(analyzed, preds, strict=True):
            p = p.replace("-", " ")
            out.extend((p if p in prons else prons[0]).split())
        return [_g2pm_norm(p) for p in out]

    return _per_run(run_g2p)


# ---------------------------------------------------------------- worker: one candidate, one process
def worker(name: str, reps: int) -> dict[str, object]:
    rows = [r for t in TABLES if t.exists() for r in load_table(t)]
    sentences = sorted({s for s, _, _ in rows})  # timed on every distinct sentence of both lists
    if name.startswith("chorus"):
        import workers  # noqa: F401  (the package imports the whole worker: not this candidate's cost)
    rss0, t0 = rss_mib(), time.perf_counter()
    try:
        g2p = build(name)
    except ImportError as e:
        return {"name": name, "missing": str(e)}
    first = {sentences[0]: g2p(sentences[0])}
    load_s = time.perf_counter() - t0
    got = {s: first.get(s) or g2p(s) for s in sentences}
    ms: list[float] = []
    for _ in range(reps):
        for s in sentences:
            t = time.perf_counter()
            g2p(s)
            ms.append((time.perf_counter() - t) * 1000)
    results = [(s, i, exp, got[s][i]) for s, i, exp in rows]  # in TABLES order
    return {
        "name": name,
        "results": results,
        "load_s": load_s,
        "rss_mib": rss_mib() - rss0,
        "p50_ms": pct(ms, 50),
        "p99_ms": pct(ms, 99),
        "mean_chars": statistics.fmean(len(s) for s in sentences),
        "install_mib": install_mib(DISTS[name]),
    }


# ---------------------------------------------------------------- driver
def report(res: dict[str, object], sizes: list[tuple[str, int]], worst: int, errors: bool) -> None:
    name = res["name"]
    if "missing" in res:
        print(f"{name:16s} not available here: {res['missing']}")
        return
    results: list[tuple[str, int, str, str]] = res["results"]  # type: ignore[assignment]
    size = res["install_mib"]
    size_s = "n/a" if size is None else f"+{size:.1f} MiB"
    print(
        f"{name:16s} p50 {res['p50_ms']:.3f} ms  p99 {res['p99_ms']:.3f} ms  load {res['load_s']:.2f} s  "
        f"RSS +{res['rss_mib']:.0f} MiB  install {size_s}"
    )
    start = 0
    for table, n in sizes:
        part = results[start : start + n]
        start += n
        by_char: dict[str, list[bool]] = defaultdict(list)
        for s, i, exp, got in part:
            by_char[s[i]].append(got == exp)
        ok = sum(got == exp for _, _, exp, got in part)
        ranked = sorted(by_char.items(), key=lambda kv: (sum(kv[1]) / len(kv[1]), -len(kv[1])))
        worst_s = "  ".join(f"{c} {sum(v)}/{len(v)}" for c, v in ranked[:worst] if sum(v) < len(v))
        print(f"    {table:16s} {ok}/{n} = {100 * ok / n:5.1f}%   worst: {worst_s}")
        if errors:
            for s, i, exp, got in part:
                if got != exp:
                    print(f"        {s}  [{i}]{s[i]}  want {exp}  got {got}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--only", help="comma-separated candidate names (default: all)")
    ap.add_argument("--reps", type=int, default=5, help="timed passes over the sentences")
    ap.add_argument("--worst", type=int, default=8, help="how many of the worst characters to list")
    ap.add_argument("--errors", action="store_true", help="list every wrong reading")
    ap.add_argument("--json", help="also write the raw results here")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        json.dump(worker(args.worker, args.reps), sys.stdout, ensure_ascii=False)
        return
    names = args.only.split(",") if args.only else CANDIDATES
    sizes = []
    for t in TABLES:
        if t.exists():
            rows = load_table(t)
            sizes.append((t.name, len(rows)))
            print(f"{t.relative_to(ROOT)}: {len(rows)} rows, {len({s[i] for s, i, _ in rows})} characters")
    out = []
    for name in names:
        cmd = [sys.executable, "-m", "bench.polyphones", "--worker", name, "--reps", str(args.reps)]
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            print(f"{name:16s} failed: {proc.stderr.strip().splitlines()[-1:]}")
            continue
        res = json.loads(proc.stdout)
        out.append(res)
        report(res, sizes, args.worst, args.errors)
    if args.json:
        Path(args.json).write_text(json.dumps(out, ensure_ascii=False, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
