"""Character classes that the segmenter, the text frontends and the gateway agree on.

Han ideographs are the CJK Unified Ideographs, Extension A and the Compatibility
Ideographs (U+3400-4DBF, U+4E00-9FFF, U+F900-FAFF): what the Mandarin frontend
reads, and what makes the gateway pick a Mandarin voice for a voiceless request.
"""

from __future__ import annotations

import re

__all__ = ["HAN", "has_han", "is_han"]

HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
"""One or more Han ideographs in a row."""


def is_han(ch: str) -> bool:
    """Whether the one character ``ch`` is a Han ideograph."""
    return HAN.fullmatch(ch) is not None


def has_han(text: str) -> bool:
    """Whether ``text`` holds at least one Han ideograph (a regex scan, C speed)."""
    return HAN.search(text) is not None
