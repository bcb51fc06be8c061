"""espeak-ng's IPA from either source: the bundled library and Debian's command agree, and the
mapping into Kokoro's symbols (the fallback that serves Python 3.12+, where piper-phonemize has no wheel)."""

from __future__ import annotations

import sys

import pytest

from tests.helpers import SYMBOLS
from workers import espeak

SENTENCES = [
    "It costs forty two dollars. Really?",
    "Hello, world. How are you? Fine; thanks! Yes",
    "The quick brown fox jumps over the lazy dog.",
    "iPhone",
]


WANT = {  # piper-phonemize's output (espeak-ng 1.51), one string per sentence
    SENTENCES[0]: ["ɪt kˈɔsts fˈɔːɹɾi tˈuː dˈɑːlɚz.", "ɹˈiəli?"],
    SENTENCES[1]: ["həlˈoʊ, wˈɜːld.", "hˈaʊ ɑːɹ juː?", "fˈaɪn; θˈæŋks!", "jˈɛs"],
}


def test_the_command_and_the_bundled_library_give_the_same_ipa() -> None:
    assert espeak.shutil.which("espeak-ng"), "bin/test installs Debian's espeak-ng (the 3.12+ fallback)"
    bundled = espeak._bundled()
    if sys.version_info < (3, 12):
        assert bundled is not None, "piper-phonemize is a dependency on CPython <= 3.11"
    for text in SENTENCES:
        got = ["".join(s).replace("\u200d", "") for s in espeak._command(text, "en-us")]
        if bundled is not None:
            assert got == ["".join(s) for s in bundled(text, "en-us")], text
        if text in WANT:
            assert got == WANT[text], text


def test_the_command_is_used_when_the_library_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(espeak, "_bundled", lambda: None)
    espeak._backend.cache_clear()
    try:
        assert espeak.available()
        assert ["".join(s) for s in espeak.sentences("Really?")] == ["ɹˈiəli?"]
    finally:
        espeak._backend.cache_clear()


@pytest.mark.parametrize(
    ("ipa", "kokoro"),
    [("ˈaɪ fˈoʊn", "ˈI fˈOn"), ("dʒˌiːpˌiːjˈuː", "ʤˌipˌijˈu"), ("wˈɔːɾɚ", "wˈɔTəɹ"), ("tʃˈeɪndʒ", "ʧˈAnʤ")],
)
def test_ipa_maps_into_kokoros_symbols(ipa: str, kokoro: str) -> None:
    assert espeak.to_kokoro(ipa) == kokoro
    assert set(kokoro) <= set(SYMBOLS)
