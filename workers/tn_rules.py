"""The machinery of a TN rule layer, shared by :mod:`workers.normalize_zh` and :mod:`workers.normalize_en`.

Each language's layer is: written forms folded to one (:func:`fold_table`), its own
rewrites run in the order they are written (:class:`Rules`), and a WFST grammar
loaded once, on first use or at start-up (:class:`LazyGrammar`), for what the rules
leave.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable

from workers.grammars import Grammar

__all__ = ["LazyGrammar", "Rewrite", "Rules", "fold_table"]

Rewrite = Callable[[re.Match[str]], str]
"""One rule's replacement: the match -> the text that stands for it."""


class Rules:
    """Rewrites in the order they were registered; :meth:`apply` runs them all over a text."""

    def __init__(self) -> None:
        self._rules: list[tuple[re.Pattern[str], Rewrite]] = []

    def rule(self, pattern: str, flags: int = 0) -> Callable[[Rewrite], Rewrite]:
        """Decorator: register a rewrite for ``pattern`` (rules run in the order they are written)."""

        def register(fn: Rewrite) -> Rewrite:
            self.add(pattern, fn, flags)
            return fn

        return register

    def add(self, pattern: str, fn: Rewrite, flags: int = 0) -> None:
        self._rules.append((re.compile(pattern, flags), fn))

    def apply(self, text: str) -> str:
        for pattern, fn in self._rules:
            text = pattern.sub(fn, text)
        return text


class LazyGrammar:
    """A grammar loaded once, by the first caller (thread-safe); ``grammar`` is it once loaded."""

    def __init__(self, load: Callable[[], Grammar]) -> None:
        self._load = load
        self._lock = threading.Lock()
        self.grammar: Grammar | None = None

    def get(self) -> Grammar:
        if self.grammar is None:
            with self._lock:
                if self.grammar is None:
                    self.grammar = self._load()
        return self.grammar

    def normalize(self, text: str) -> str:
        return self.get().normalize(text)


_ENCLOSED = (
    (0x2460, 1, 20),  # ① … ⑳
    (0x2474, 1, 20),  # ⑴ … ⒇
    (0x2488, 1, 20),  # ⒈ … ⒛
    (0x2776, 1, 10),  # ❶ … ❿
    (0x2780, 1, 10),  # ➀ … ➉
    (0x278A, 1, 10),  # ➊ … ➓
    (0x24EB, 11, 10),  # ⓫ … ⓴
    (0x24F5, 1, 10),  # ⓵ … ⓾
)


def fold_table() -> dict[int, str]:
    """For ``str.translate``: full-width ASCII and currency signs to ASCII, the ideographic space to a
    space, U+2212 to a minus sign, enclosed and dingbat digits (① ❷ ⑴ ⒈) to spaced ASCII numbers."""
    table: dict[int, str] = {c: chr(c - 0xFEE0) for c in range(0xFF01, 0xFF5F)}
    table.update({0x3000: " ", 0x2212: "-", 0xFFE5: "¥", 0xFFE0: "¢", 0xFFE1: "£"})
    for start, first, count in _ENCLOSED:
        for i in range(count):
            table[start + i] = f" {first + i} "
    return table
