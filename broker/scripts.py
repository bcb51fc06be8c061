"""Loads the broker's Lua scripts (``lua/*.lua`` beside this module) once per process."""

from __future__ import annotations

from functools import cache
from importlib import resources

__all__ = ["CLAIM", "COMPLETE", "ENQUEUE", "script_source"]

ENQUEUE = "enqueue"
CLAIM = "claim"
COMPLETE = "complete"


@cache
def script_source(name: str) -> str:
    return (resources.files("broker") / "lua" / f"{name}.lua").read_text(encoding="utf-8")
