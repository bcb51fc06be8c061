"""Loads the broker's Lua scripts (``lua/*.lua`` beside this module) once per process.

Each script is prefixed with ``lua/prelude.lua`` (shared values, tenant policies,
scheduler parameters, activation), whose three JSON documents are filled in from
:func:`chorus_client.constants.lua_constants` (lanes, wake-list cap, status names),
:data:`broker.policy.BUILTIN_DEFAULT` and :data:`broker.scheduler.SCHEDULER`, so
Python and Lua share one definition of each value.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

from broker.policy import BUILTIN_DEFAULT
from broker.scheduler import SCHEDULER
from chorus_client.constants import lua_constants

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
    """The full text of script ``name`` (one of the names above): the filled-in prelude, then the script.

    Register it with ``client.register_script``; a foreign producer may copy the text as it is.
    Raises :class:`FileNotFoundError` for a name without a ``lua/<name>.lua``.
    """
    prelude = (
        _read("prelude")
        .replace("__CONSTANTS__", lua_constants())
        .replace("__DEFAULT_POLICY__", BUILTIN_DEFAULT.to_json())
        .replace("__SCHEDULER__", SCHEDULER.to_json())
    )
    return prelude + "\n" + _read(name)
