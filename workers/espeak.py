"""espeak-ng's English IPA, from whichever espeak-ng this host has.

Two sources, tried in order:

1. ``piper-phonemize``'s bundled espeak-ng (GPL-3.0; wheels for CPython <= 3.11 on
   Linux), called in process: about 0.1 ms a word;
2. Debian's ``espeak-ng`` command (``apt-get install espeak-ng``; ``bin/setup.sh``
   installs it where piper-phonemize has no wheel), one process per call:
   ``espeak-ng -q --ipa=3 -v en-us``, about 10 ms.

Both give the same IPA (the same program and data; the command marks syllable
joins with U+200D, which are dropped, and prints clauses without their marks,
which are put back from the text). :func:`to_kokoro` maps it into the phoneme
set Kokoro v1.0 was trained with (misaki's, e.g. eɪ -> A, aɪ -> I, dʒ -> ʤ), so
an English word inside Mandarin is read by the Mandarin voice in English.
"""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
from collections.abc import Callable
from functools import lru_cache

__all__ = ["available", "ipa", "sentences", "to_kokoro"]

log = logging.getLogger(__name__)

_TIMEOUT_S = 10.0
# espeak-ng IPA -> misaki/Kokoro v1.0 symbols, as misaki's EspeakFallback maps them (its table
# uses tie bars, which piper-phonemize does not print); longest first.
_E2K = sorted(
    {
        "aɪ": "I", "aʊ": "W", "dʒ": "ʤ", "eɪ": "A", "tʃ": "ʧ", "ɔɪ": "Y", "oʊ": "O", "ɚ": "əɹ",
        "ɜː": "ɜɹ", "r": "ɹ", "x": "k", "ç": "k", "ɐ": "ə", "ɬ": "l", "ː": "", "ɾ": "T", "ʔ": "t",
        "e": "A", "\u0303": "", "\u0329": "", "\u200d": "",
    }.items(),
    key=lambda kv: -len(kv[0]),
)  # fmt: skip


def _bundled() -> Callable[[str, str], list[list[str]]] | None:
    try:
        from piper_phonemize import phonemize_espeak
    except ImportError:
        return None
    return phonemize_espeak  # type: ignore[no-any-return]


_CLAUSE_MARK = re.compile(r"[,.;:!?](?=\s|$)")


def _command(text: str, voice: str) -> list[list[str]]:
    """The command prints one line per clause and drops the marks; they are put back from the text
    (in order), and clauses are joined into sentences at . ! ?, as piper-phonemize returns them."""
    exe = shutil.which("espeak-ng")
    assert exe is not None
    done = subprocess.run(
        [exe, "-q", "--ipa=3", "-v", voice, "--", text],
        capture_output=True,
        text=True,
        timeout=_TIMEOUT_S,
        check=True,
    )
    marks = _CLAUSE_MARK.findall(text)
    sentences: list[list[str]] = []
    current = ""
    for i, line in enumerate(x.strip() for x in done.stdout.splitlines() if x.strip()):
        mark = marks[i] if i < len(marks) else ""
        current = f"{current} {line}{mark}".strip()
        if mark in ".!?":
            sentences.append(list(current))
            current = ""
    if current:
        sentences.append(list(current))
    return sentences


@lru_cache(maxsize=1)
def _backend() -> Callable[[str, str], list[list[str]]] | None:
    bundled = _bundled()
    if bundled is not None:
        return bundled
    if shutil.which("espeak-ng"):
        log.info("English G2P: piper-phonemize is not installed; using the espeak-ng command")
        return _command
    return None


def available() -> bool:
    """Whether some espeak-ng is there (the bundled one or the command)."""
    return _backend() is not None


def sentences(text: str, voice: str = "en-us") -> list[list[str]]:
    """espeak-ng's IPA of ``text``, one list of characters per sentence (as piper-phonemize returns it).

    Raises RuntimeError when this host has no espeak-ng.
    """
    backend = _backend()
    if backend is None:
        raise RuntimeError("no espeak-ng: install piper-phonemize (CPython <= 3.11) or Debian's espeak-ng")
    return [[c for c in s if c != "\u200d"] for s in backend(text, voice)]


def to_kokoro(ipa_text: str) -> str:
    """espeak-ng IPA in Kokoro v1.0's (misaki's) symbols: ``ˈaɪ fˈoʊn`` -> ``ˈI fˈOn``."""
    for old, new in _E2K:
        ipa_text = ipa_text.replace(old, new)
    return ipa_text


@lru_cache(maxsize=4096)
def ipa(word: str, voice: str = "en-us") -> str | None:
    """A word (or a few) in Kokoro's symbols, or None when this host has no espeak-ng."""
    if not available():
        return None
    return to_kokoro(" ".join("".join(s) for s in sentences(word, voice)))
