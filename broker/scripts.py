"""Loads the broker's Lua scripts (``lua/*.lua`` beside this module) once per process.

Each script is prefixed with ``lua/prelude.lua`` (tenant policies, scheduler
parameters, activation), whose two JSON documents are filled in from
:data:`broker.tenants.BUILTIN_DEFAULT` and :data:`broker.scheduler.SCHEDULER`.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

__all__ = [
    "ADMIT",
    "CANCEL",
    "CLAIM",
    "COMPLETE",
    "ENQUEUE",
    "FORGET",
    "HEARTBEAT",
    "LEASE",
    "POLICY",
    "RECLAIM",
    "REPAIR",
    "script_source",
]

ADMIT = "admit"
ENQUEUE = "enqueue"
FORGET = "forget"
HEARTBEAT = "heartbeat"
CLAIM = "claim"
COMPLETE = "complete"
POLICY = "policy"
LEASE = "lease"
RECLAIM = "reclaim"
REPAIR = "repair"
CANCEL = "cancel"


def _read(name: str) -> str:
    return (resources.files("broker") / "lua" / f"{name}.lua").read_text(encoding="utf-8")


@cache
def script_source(name: str) -> str:
    from broker.scheduler import SCHEDULER
    from broker.tenants import BUILTIN_DEFAULT

    prelude = (
        _read("prelude")
        .replace("__DEFAULT_POLICY__", BUILTIN_DEFAULT.to_json())
        .replace("__SCHEDULER__", SCHEDULER.to_json())
    )
    return prelude + "\n" + _read(name)
