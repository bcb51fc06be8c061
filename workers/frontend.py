"""The text-frontend seam: text in, phoneme string (in the model's symbol set) out."""

from __future__ import annotations

from typing import Protocol

__all__ = ["TextFrontend"]


class TextFrontend(Protocol):
    """Turns one segment of text into phonemes for a backend."""

    lang: str

    def phonemize(self, text: str) -> str: ...
