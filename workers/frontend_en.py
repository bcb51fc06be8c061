"""English text frontend: espeak-ng phonemes (IPA, as Piper voices were trained on) via ``piper-phonemize``.

``piper-phonemize`` bundles espeak-ng and its data (GPL-3.0). espeak-ng reads
numbers, dates and abbreviations itself. Sentences come back separated by a
newline, one model call each.
"""

from __future__ import annotations

import unicodedata

__all__ = ["EnglishFrontend"]


class EnglishFrontend:
    lang = "en"

    def __init__(self, voice: str = "en-us") -> None:
        from piper_phonemize import phonemize_espeak  # bundled espeak-ng; imported when English is served

        self._phonemize = phonemize_espeak
        self.voice = voice

    def phonemize(self, text: str) -> str:
        text = unicodedata.normalize("NFC", text)
        text = "".join(c for c in text if unicodedata.category(c)[0] != "C" or c in "\n\t")
        sentences = self._phonemize(text, self.voice)
        return "\n".join("".join(s) for s in sentences if s)
