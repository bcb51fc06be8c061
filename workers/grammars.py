"""Prebuilt WFST text-normalisation grammars: where they live, building them once, loading them.

Mandarin text normalisation runs WeTextProcessing's grammar (``tn.chinese``, WFSTs
compiled with pynini; Apache-2.0). The grammar the wheel ships deletes interjections
and erhua (好啊 -> 好, 哪儿 -> 哪), which a speech frontend must keep, so chorus
compiles its own build once, with those two rules off, into
``$CHORUS_HOME/grammars/wetext-<version>-zh-tts/`` (``zh_tn_tagger.fst``,
``zh_tn_verbalizer.fst``; about 2.4 MB, 7-11 s of one core). ``chorus grammars
build`` does it at install time (the README's commands and the container image run
it), so a worker only loads the files (about 0.3 s).

A worker that finds no build compiles one and says so in a warning: a slow start
beats a worker that cannot read numbers. The build goes to a temporary folder that is
renamed into place, so two workers starting together never read half a file.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
import time
from importlib import metadata
from pathlib import Path
from typing import Protocol

from shared.config import chorus_home

__all__ = ["GRAMMAR_FILES", "Grammar", "build_zh", "grammar_dir", "load_en", "load_zh"]

log = logging.getLogger(__name__)

GRAMMAR_FILES = ("zh_tn_tagger.fst", "zh_tn_verbalizer.fst")
"""The files of a Mandarin build, as WeTextProcessing names them."""
_OPTIONS = {"remove_interjections": False, "remove_erhua": False}
"""What chorus's build changes against the shipped grammar (keep 啊, 呢, 哪儿 for speech)."""
_lock = threading.Lock()


class Grammar(Protocol):
    """WeTextProcessing's normaliser: written text -> text with numbers and symbols in words."""

    def normalize(self, text: str) -> str: ...


def _quiet() -> None:
    # WeTextProcessing logs every load at INFO on its own handler ("found existing fst ...").
    logging.getLogger("wetext").setLevel(logging.WARNING)


def grammar_dir(home: Path | None = None) -> Path:
    """``$CHORUS_HOME/grammars/wetext-<installed version>-zh-tts``: one folder per library version,
    so an upgrade never loads a grammar compiled against another version's rules."""
    version = metadata.version("WeTextProcessing")
    return (home or chorus_home()) / "grammars" / f"wetext-{version}-zh-tts"


def _complete(path: Path) -> bool:
    return all((path / name).is_file() for name in GRAMMAR_FILES)


def build_zh(home: Path | None = None, *, force: bool = False) -> Path:
    """Compile chorus's Mandarin grammar into :func:`grammar_dir` (skipped when it is there, unless ``force``).

    Returns the folder. Takes 7-11 s of one core and about 300 MB of memory while it runs.
    """
    target = grammar_dir(home)
    if _complete(target) and not force:
        return target
    from tn.chinese.normalizer import Normalizer

    _quiet()
    target.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".build-") as tmp:
        Normalizer(cache_dir=tmp, overwrite_cache=True, **_OPTIONS)
        staged = Path(tmp) / "grammar"
        staged.mkdir()
        for name in GRAMMAR_FILES:
            os.replace(Path(tmp) / name, staged / name)
        if target.exists():
            shutil.rmtree(target, ignore_errors=True)
        try:
            os.replace(staged, target)
        except OSError:  # another process put its build in place first: theirs is as good
            if not _complete(target):
                raise
    log.info("built the Mandarin TN grammar in %.1fs into %s", time.perf_counter() - t0, target)
    return target


def load_zh(home: Path | None = None) -> Grammar:
    """Chorus's Mandarin grammar, loaded from :func:`grammar_dir`; compiled first (with a warning) when absent."""
    from tn.chinese.normalizer import Normalizer

    _quiet()
    with _lock:
        path = grammar_dir(home)
        if not _complete(path):
            log.warning(
                "no prebuilt Mandarin TN grammar in %s: compiling it now (about 10 s); "
                "run `chorus grammars build` at install time to skip this",
                path,
            )
            build_zh(home)
        grammar: Grammar = Normalizer(cache_dir=str(path), **_OPTIONS)
    return grammar


def load_en() -> Grammar:
    """WeTextProcessing's English grammar, as its wheel ships it (prebuilt; nothing is compiled)."""
    from tn.english.normalizer import Normalizer

    _quiet()
    with _lock:
        grammar: Grammar = Normalizer()
    return grammar
