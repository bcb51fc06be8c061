"""espeak-ng's IPA from either source: the bundled library and Debian's command agree, and the
mapping into Kokoro's symbols (the fallback that serves Python 3.12+, where piper-phonemize has no wheel)."""

from __future__ import annotations

import pytest

from tests.helpers import SYMBOLS
from workers import espeak

SENTENCES = [
    "It costs forty two dollars. Really?",
    "Hello, world. How are you? Fine; thanks! Yes",
    "The quick brown fox jumps over the lazy dog.",
    "iPhone",
]


def test_the_command_and_the_bundled_library_give_the_same_ipa() -> None:
    bundled = espeak._bundled()
    assert bundled is not None, "piper-phonemize is a dependency on CPython <= 3.11"
    assert espeak.shutil.which("espeak-ng"), "bin/test installs Debian's espeak-ng (the 3.12+ fallback)"
    for text in SENTENCES:
        want = ["".join(s) for s in bundled(text, "en-us")]
        got = ["".join(s) for s in espeak._command(text, "en-us")]
        assert [g.replace("\u200d", "") for g in got] == want, text


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
