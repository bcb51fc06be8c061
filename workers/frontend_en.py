"""English text frontend: espeak-ng phonemes (IPA, as Piper voices were trained on).

espeak-ng comes from ``piper-phonemize`` (bundled, GPL-3.0) or, where that has no
wheel (CPython 3.12+), from Debian's ``espeak-ng`` command (:mod:`workers.espeak`).
espeak-ng reads numbers, dates and abbreviations itself. Sentences come back
separated by a newline, one model call each.
"""

from __future__ import annotations

import unicodedata

from shared.errors import ConfigError
from workers.normalize_en import load_grammar, normalize_en

__all__ = ["EnglishFrontend"]


class EnglishFrontend:
    lang = "en"

    def __init__(self, voice: str = "en-us") -> None:
        from workers import espeak

        if not espeak.available():
            raise ConfigError(
                "English needs espeak-ng: install piper-phonemize (CPython <= 3.11) or Debian's espeak-ng"
            )
        self._phonemize = espeak.sentences
        self.voice = voice
        load_grammar()  # at start-up (about 1 s), not in the first request that has a number

    def phonemize(self, text: str) -> str:
        text = unicodedata.normalize("NFC", text)
        text = "".join(c for c in text if unicodedata.category(c)[0] != "C" or c in "\n\t")
        sentences = self._phonemize(normalize_en(text), self.voice)
        return "\n".join("".join(s) for s in sentences if s)
