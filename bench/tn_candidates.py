#!/usr/bin/env python3
"""Evaluate text-normalisation libraries against the chorus TN tables (issue 19): a research tool.

It runs outside chorus's environment: each candidate in its own scratch venv (the
libraries are not chorus dependencies yet), so it reads the tables itself rather than
through ``chorus.normtable``. The venvs, as measured on 2026-11-29::

    python3.11 -m venv /tmp/tnvenv && /tmp/tnvenv/bin/pip install wetextprocessing==1.2.0 opencc==1.4.2
    python3.11 -m venv /tmp/tnvenv-nemo && /tmp/tnvenv-nemo/bin/pip install nemo-text-processing==1.2.0 opencc==1.4.2

Results and the decision: docs/NORMALISATION.md.


Driver (any python3):   python3 /tmp/tn_eval.py [--reps 3] [--only wetext-zh,nemo-en]
Worker (run by driver): <venv>/bin/python /tmp/tn_eval.py --worker CAND --table T --out J

Candidates and the venv each one runs in:
  wetext-zh      WeTextProcessing zh, prebuilt FST shipped in the wheel (defaults: remove_interjections,
                 remove_erhua, traditional_to_simple, full_to_half all True)         /tmp/tnvenv
  wetext-zh-tts  same grammar rebuilt with remove_interjections=False, remove_erhua=False
                 (what a TTS front end wants; built once into /tmp/wetext_zh_tts)     /tmp/tnvenv
  wetext-en      WeTextProcessing en, prebuilt FST                                      /tmp/tnvenv
  nemo-en        nemo-text-processing en, input_case=cased, deterministic, grammar
                 cached in /tmp/nemo_cache (first build timed separately)             /tmp/tnvenv-nemo
  nemo-zh        nemo-text-processing zh, cached in /tmp/nemo_cache                   /tmp/tnvenv-nemo

Reports per category exact-match accuracy (strict = primary expected form; +alt = any `alt=` form in
the note also accepted), cold load time (interpreter start excluded: import + construct, measured in a
fresh process), per-sentence cost p50/p99 (steady state, passes 2..reps), first-pass p99, RSS, and
install size (sum of RECORD file sizes of each distribution in the venv).
"""

# ruff: noqa: E501  (report tables; a research tool run by hand)
import argparse
import json
import os
import re
import statistics
import subprocess
import time
import unicodedata
from collections import OrderedDict, defaultdict

TABLE_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests", "data", "normalisation")
VENVS = {
    "wetext-zh": "/tmp/tnvenv",
    "wetext-zh-tts": "/tmp/tnvenv",
    "wetext-zh-tts+thin": "/tmp/tnvenv",
    "nemo-zh": "/tmp/tnvenv-nemo",
    "wetext-en": "/tmp/tnvenv",
    "wetext-en+thin": "/tmp/tnvenv",
    "nemo-en": "/tmp/tnvenv-nemo",
    "nemo-en+thin": "/tmp/tnvenv-nemo",
}
LANG = {c: ("zh" if "-zh" in c else "en") for c in VENVS}
PY = "lib/python3.11/site-packages"


# ---------------------------------------------------------------- table + scoring
def load_table(path):
    rows = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line or line.startswith("#"):
                continue
            cat, inp, exp, note = ([*line.split("\t"), ""])[:4]
            alts = []
            m = re.search(r"alt=([^;]*)", note)
            if m:
                alts = [a.strip() for a in m.group(1).split("|") if a.strip()]
            rows.append({"cat": cat, "inp": inp, "exp": exp, "alts": alts, "note": note})
    return rows


def canon_zh(s):
    s = unicodedata.normalize("NFC", s).lower()
    return "".join(ch for ch in s if not ch.isspace() and not unicodedata.category(ch).startswith("P"))


def canon_en(s):
    s = unicodedata.normalize("NFC", s).lower().replace("\u2019", "'")
    s = re.sub(r"[-\u2010-\u2014]", " ", s)
    out = []
    for i, ch in enumerate(s):
        if ch == "'":
            # keep only intra-word apostrophes
            if 0 < i < len(s) - 1 and s[i - 1].isalnum() and s[i + 1].isalnum():
                out.append(ch)
            else:
                out.append(" ")
        elif unicodedata.category(ch).startswith("P"):
            out.append(" ")
        else:
            out.append(ch)
    return " ".join("".join(out).split())


CANON = {"zh": canon_zh, "en": canon_en}


# ---------------------------------------------------------------- thin layer (what "+thin" adds)
# pre:  full-width ASCII -> ASCII, U+3000 -> space, U+2212 -> '-', enclosed/dingbat digits -> digits,
#       zh only: OpenCC t2s (native `opencc` wheel) before the library's own t2s.
# post: en only: drop the British 'and' inside numbers ("hundred and one" -> "hundred one").
_ENCLOSED = {}
for base, start, n in (
    (1, 0x2460, 20),
    (1, 0x2474, 20),
    (1, 0x2488, 20),
    (1, 0x2776, 10),
    (1, 0x2780, 10),
    (1, 0x278A, 10),
    (11, 0x24EB, 10),
    (1, 0x24F5, 10),
):
    for i in range(n):
        _ENCLOSED[start + i] = str(base + i)
_ENCLOSED[0x24EA] = "0"
_ENCLOSED[0x24FF] = "0"
for i, ch in enumerate("一二三四五六七八九十"):
    _ENCLOSED[0x3220 + i] = ch
_WIDTH = {c: chr(c - 0xFEE0) for c in range(0xFF01, 0xFF5F)}
_WIDTH.update({0x3000: " ", 0x2212: "-", 0xFFE5: "¥", 0xFFE0: "¢", 0xFFE1: "£"})
_T2S = None


def thin_pre(s, lang):
    global _T2S
    s = s.translate(_ENCLOSED).translate(_WIDTH)
    if lang == "zh":
        if _T2S is None:
            import opencc

            _T2S = opencc.OpenCC("t2s")
        s = _T2S.convert(s)
    return s


_NUMW = r"(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|fifteen|sixteen|seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety)"


def thin_post(s, lang):
    if lang == "en":
        s = re.sub(r"\b(hundred|thousand|million|billion) and (?=" + _NUMW + r"\b)", r"\1 ", s)
    return s


# ---------------------------------------------------------------- worker
def make_normalizer(cand):
    if cand.endswith("+thin"):
        base = make_normalizer(cand[: -len("+thin")])
        lang = LANG[cand]
        return lambda t: thin_post(base(thin_pre(t, lang)), lang)
    if cand == "wetext-zh":
        from tn.chinese.normalizer import Normalizer

        n = Normalizer()
        return n.normalize
    if cand == "wetext-zh-tts":
        from tn.chinese.normalizer import Normalizer

        n = Normalizer(cache_dir="/tmp/wetext_zh_tts", remove_interjections=False, remove_erhua=False)
        return n.normalize
    if cand == "wetext-en":
        from tn.english.normalizer import Normalizer

        n = Normalizer()
        return n.normalize
    if cand in ("nemo-en", "nemo-zh"):
        import logging

        logging.disable(logging.WARNING)
        from nemo_text_processing.text_normalization.normalize import Normalizer

        lang = cand.split("-")[1]
        n = Normalizer(input_case="cased", lang=lang, cache_dir="/tmp/nemo_cache", overwrite_cache=False)
        return lambda s: n.normalize(s, verbose=False, punct_post_process=True)
    raise SystemExit("unknown candidate " + cand)


def worker(cand, table, out, reps):
    import logging
    import resource

    logging.getLogger("wetext").setLevel(logging.WARNING)
    t0 = time.perf_counter()
    norm = make_normalizer(cand)
    load_s = time.perf_counter() - t0
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rows = load_table(table)
    outputs, first, steady = [], [], []
    for rep in range(reps):
        for _i, r in enumerate(rows):
            a = time.perf_counter()
            try:
                o = norm(r["inp"])
            except Exception as e:  # record failures as output
                o = f"<ERROR {type(e).__name__}: {e}>"
            dt = time.perf_counter() - a
            if rep == 0:
                outputs.append(o)
                first.append(dt)
            else:
                steady.append(dt)
    # long inputs: 8 consecutive table inputs joined into one sentence (~60-150 chars), 40 of them, 2 passes
    sep = "，" if LANG[cand] == "zh" else ", "
    longs = [
        sep.join(r["inp"] for r in rows[i : i + 8]) for i in range(0, len(rows) - 8, max(1, (len(rows) - 8) // 40))
    ][:40]
    long_t = []
    for rep in range(2):
        for t in longs:
            a = time.perf_counter()
            try:
                norm(t)
            except Exception:
                pass
            if rep:
                long_t.append(time.perf_counter() - a)
    rss_mb2 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    json.dump(
        {
            "cand": cand,
            "load_s": load_s,
            "rss_after_load_mb": rss_mb,
            "rss_peak_mb": rss_mb2,
            "outputs": outputs,
            "first": first,
            "steady": steady or first,
            "long": long_t,
            "long_chars": statistics.mean(len(t) for t in longs),
        },
        open(out, "w"),
        ensure_ascii=False,
    )


# ---------------------------------------------------------------- install size
def dist_sizes(venv):
    """{dist name: bytes} from RECORD files (what pip installed for that distribution)."""
    sp = os.path.join(venv, PY)
    res = {}
    for d in os.listdir(sp):
        if not d.endswith(".dist-info"):
            continue
        rec = os.path.join(sp, d, "RECORD")
        if not os.path.exists(rec):
            continue
        total = 0
        for line in open(rec, encoding="utf-8"):
            p = line.split(",")[0]
            fp = os.path.normpath(os.path.join(sp, p))
            if os.path.isfile(fp):
                total += os.path.getsize(fp)
        res[d[: -len(".dist-info")]] = total
    return res


def du(path):
    return int(subprocess.run(["du", "-sb", path], capture_output=True, text=True).stdout.split()[0])


# ---------------------------------------------------------------- driver
def pct(xs, q):
    xs = sorted(xs)
    if not xs:
        return float("nan")
    k = min(len(xs) - 1, max(0, round(q / 100 * (len(xs) - 1))))
    return xs[k]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--worker")
    ap.add_argument("--table")
    ap.add_argument("--out")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--only", default="")
    ap.add_argument("--show-wrong", type=int, default=3, help="examples of failures per category")
    ap.add_argument("--json", default="/tmp/tn_eval_results.json")
    a = ap.parse_args()
    if a.worker:
        return worker(a.worker, a.table, a.out, a.reps)

    cands = [c for c in VENVS if not a.only or c in a.only.split(",")]
    results = OrderedDict()
    for cand in cands:
        venv = VENVS[cand]
        if not os.path.exists(os.path.join(venv, "bin/python")):
            print(f"[skip] {cand}: {venv} missing")
            continue
        lang = LANG[cand]
        table = os.path.join(TABLE_DIR, lang + ".tsv")
        out = f"/tmp/tn_eval_{cand}.json"
        t = time.perf_counter()
        p = subprocess.run(
            [
                os.path.join(venv, "bin/python"),
                os.path.abspath(__file__),
                "--worker",
                cand,
                "--table",
                table,
                "--out",
                out,
                "--reps",
                str(a.reps),
            ],
            capture_output=True,
            text=True,
        )
        wall = time.perf_counter() - t
        if p.returncode != 0:
            print(f"[fail] {cand}: rc={p.returncode}\n{p.stderr[-3000:]}")
            continue
        res = json.load(open(out))
        res["process_wall_s"] = wall
        rows = load_table(table)
        canon = CANON[lang]
        per = defaultdict(lambda: [0, 0, 0, []])
        for r, o in zip(rows, res["outputs"], strict=False):
            c = per[r["cat"]]
            c[0] += 1
            co = canon(o)
            strict = co == canon(r["exp"])
            alt = strict or any(co == canon(x) for x in r["alts"])
            c[1] += strict
            c[2] += alt
            if not alt:
                c[3].append((r["inp"], o, r["exp"]))
        res["per_cat"] = {k: {"n": v[0], "strict": v[1], "alt": v[2], "wrong": v[3]} for k, v in per.items()}
        res["rows"] = [
            {"cat": r["cat"], "inp": r["inp"], "exp": r["exp"], "out": o}
            for r, o in zip(rows, res["outputs"], strict=False)
        ]
        results[cand] = res

    # sizes
    sizes = {}
    for venv in sorted(set(VENVS.values())):
        if os.path.exists(venv):
            sizes[venv] = {"site_packages_bytes": du(os.path.join(venv, PY)), "dists": dist_sizes(venv)}
    json.dump({"results": results, "sizes": sizes}, open(a.json, "w"), ensure_ascii=False, indent=1)

    # ------------------------------------------------------------ report
    print("== load / cost ==")
    print(
        f"{'candidate':18} {'load_s':>7} {'proc_s':>7} {'rss_MB':>7} {'p50_ms':>7} {'p99_ms':>7} {'max_ms':>7} {'1st-pass p99':>12} {'long p50':>9} {'long p99':>9} {'long chars':>10}"
    )
    for cand, r in results.items():
        st = [x * 1000 for x in r["steady"]]
        fi = [x * 1000 for x in r["first"]]
        lo = [x * 1000 for x in r.get("long", [])]
        print(
            f"{cand:18} {r['load_s']:7.2f} {r['process_wall_s']:7.2f} {r['rss_peak_mb']:7.0f} {pct(st, 50):7.2f} "
            f"{pct(st, 99):7.2f} {max(st):7.2f} {pct(fi, 99):12.2f} {pct(lo, 50):9.2f} {pct(lo, 99):9.2f} {r.get('long_chars', 0):10.0f}"
        )
    print("\n== accuracy per category: strict/alt-accepting of n ==")
    for lang in ("zh", "en"):
        cs = [c for c in results if LANG[c] == lang]
        if not cs:
            continue
        cats = list(OrderedDict.fromkeys(r["cat"] for r in load_table(os.path.join(TABLE_DIR, lang + ".tsv"))))
        print(f"-- {lang}: " + "  ".join(f"{c:>18}" for c in cs))
        tot = {c: [0, 0, 0] for c in cs}
        for cat in cats:
            line = f"{cat:16}"
            for c in cs:
                pc = results[c]["per_cat"][cat]
                line += f"    {pc['strict']:>3}/{pc['alt']:>3} of {pc['n']:>3}  "
                tot[c][0] += pc["n"]
                tot[c][1] += pc["strict"]
                tot[c][2] += pc["alt"]
            print(line)
        line = f"{'TOTAL':16}"
        for c in cs:
            n, s, al = tot[c]
            line += f"    {s:>3}/{al:>3} of {n:>3}  "
        print(line)
        line = f"{'TOTAL %':16}"
        for c in cs:
            n, s, al = tot[c]
            line += f"    {100 * s / n:5.1f}/{100 * al / n:5.1f}%    "
        print(line)
    if a.show_wrong:
        print("\n== examples of failures (input -> output | expected) ==")
        for cand, r in results.items():
            print(f"-- {cand}")
            for cat, pc in r["per_cat"].items():
                if pc["wrong"]:
                    ex = "; ".join(f"{i!r} -> {o!r} | {e!r}" for i, o, e in pc["wrong"][: a.show_wrong])
                    print(f"  {cat} ({len(pc['wrong'])} wrong): {ex}")
    print("\n== install size (RECORD sums, MB) ==")
    for venv, s in sizes.items():
        print(f"{venv}: site-packages total {s['site_packages_bytes'] / 1e6:.0f} MB")
        for d, b in sorted(s["dists"].items(), key=lambda x: -x[1]):
            if b > 1e6:
                print(f"   {d:45} {b / 1e6:8.1f}")


if __name__ == "__main__":
    main()
