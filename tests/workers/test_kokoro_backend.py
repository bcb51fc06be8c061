"""Kokoro backend on the tiny ONNX model: padding, style row, the 510-token limit."""

from __future__ import annotations

import numpy as np

from tests.helpers import SAMPLES_PER_TOKEN, tiny_backend
from workers.kokoro import split_phonemes


def test_split_respects_the_limit_and_prefers_punctuation() -> None:
    text = ", ".join(["ni↗xau↓ ʂɨ↘ʨje↘"] * 100)
    pieces = split_phonemes(text, 510)
    assert all(len(p) <= 510 for p in pieces)
    assert all(p.endswith(",") or p == pieces[-1] for p in pieces)
    assert "".join(pieces).replace(" ", "") == text.replace(" ", "")


def test_split_cuts_an_unbroken_run() -> None:
    pieces = split_phonemes("a" * 1200, 510)
    assert [len(p) for p in pieces] == [510, 510, 180]


def test_split_of_blank_is_empty() -> None:
    assert split_phonemes("   ") == []


def test_output_length_follows_padded_tokens() -> None:
    b = tiny_backend()
    out = list(b.synthesize("ni↗xau↓", "jm_kumo", 1.0))
    assert len(out) == 1
    assert out[0].dtype == np.float32
    assert out[0].size == (len(b.tokenize("ni↗xau↓")) + 2) * SAMPLES_PER_TOKEN


def test_long_input_is_several_calls_each_under_the_limit() -> None:
    b = tiny_backend()
    text = " ".join(["ni↗xau↓"] * 150)  # 1,199 symbols
    out = list(b.synthesize(text, "jm_kumo", 1.0))
    assert len(out) == 3
    assert all(o.size <= (510 + 2) * SAMPLES_PER_TOKEN for o in out)
