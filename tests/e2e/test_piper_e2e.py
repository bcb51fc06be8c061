"""End to end with the real Piper voice (en_US-joe-medium) on a real redis-server, next to Kokoro."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from chorus.speak import embedded_stack, speak
from chorus.testing import read_wav
from workers.engine import Engine, load_engine

TEXT = "Hello from chorus. The quick brown fox jumps over the lazy dog."


@pytest.fixture(scope="module")
def both() -> Engine:
    # No skip: a missing model fails here with the command that installs it (bin/test runs it).
    return load_engine(threads=2, model_ids=["kokoro", "piper-joe"])


def _speech(path: Path, sr_expected: int, low_s: float, high_s: float) -> float:
    samples, sr = read_wav(path)
    assert sr == sr_expected
    seconds = len(samples) / sr
    assert low_s < seconds < high_s, f"implausible duration {seconds:.2f}s"
    x = samples.astype(np.float32) / 32768
    assert np.sqrt(np.mean(x**2)) > 0.02, "audio is (nearly) silent"
    assert np.abs(samples.astype(np.int32)).max() < 32767, "clipped samples"
    return seconds


def test_english_through_the_queue_with_piper(both: Engine, tmp_path: Path) -> None:
    assert both.versions == {"kokoro": "1.1.0", "piper-joe": "1.0.0"}
    out = tmp_path / "en.wav"
    with embedded_stack(both) as client:
        res = speak(client, TEXT, out, voice="en_joe")
    assert res.segments == 2 and res.sample_rate == 22050
    _speech(out, 22050, 2.0, 8.0)  # 12 words


def test_voice_picks_the_model_and_mandarin_with_english_words_still_works(both: Engine, tmp_path: Path) -> None:
    with embedded_stack(both) as client:
        en = speak(client, "Good morning.", tmp_path / "en.wav", voice="en_joe")
        zh = speak(client, "你好，我们用 Python 写代码。", tmp_path / "zh.wav")
    assert en.sample_rate == 22050 and zh.sample_rate == 24000
    _speech(tmp_path / "zh.wav", 24000, 1.5, 8.0)


def test_piper_frontend_reads_numbers_and_splits_sentences(both: Engine) -> None:
    phonemes = both.frontends["en"].phonemize("It costs 42 dollars. Really?")
    first, second = phonemes.split("\n")
    assert "fˈɔːɹɾi tˈuː" in first, first  # TN reads "42" as "forty two" (espeak says the word with ɔː)
    assert second.endswith("?")
