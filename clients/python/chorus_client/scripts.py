"""The server-side scripts a client calls, declared once: their keys, their arguments, their source.

No client assembles Lua. The repository ships each script fully assembled (the
server's ``broker/lua/prelude.lua`` with its constants filled in, then the
script) as ``chorus_client/lua/<name>.lua``; ``bin/build-lua`` writes them and a
test fails when they differ from what the server runs. A foreign client copies
the same files (``clients/node/lua/`` holds the Node.js client's copies).

A :class:`ScriptSpec` names each KEYS and fixed ARGV position; :meth:`ScriptSpec.call`
builds the ``EVALSHA`` from named values (a missing or unknown name is a
``KeyError`` before anything is sent) and falls back to ``EVAL`` when the server
does not have the script cached (``NOSCRIPT``: a restart, a failover, SCRIPT FLUSH).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

import redis

from chorus_client.drive import Command, Op, Replicated

__all__ = ["CANCEL", "ENQUEUE", "SCRIPTS", "ScriptSpec"]


@dataclass(frozen=True)
class ScriptSpec:
    """One script: ``keys`` and ``args`` name its KEYS and fixed ARGV in order; ``group`` names the
    fields of the argument triple repeated after them (enqueue's per-segment lane, chars, payload)."""

    name: str
    keys: tuple[str, ...]
    args: tuple[str, ...] = ()
    group: tuple[str, ...] = ()
    doc: str = field(default="", compare=False)

    @property
    def source(self) -> str:
        """The assembled script, as shipped in ``chorus_client/lua/<name>.lua``."""
        return _source(self.name)

    @property
    def sha(self) -> str:
        return hashlib.sha1(self.source.encode()).hexdigest()

    def argv(self, args: Mapping[str, Any], groups: Sequence[Mapping[str, Any]] = ()) -> list[Any]:
        """ARGV in declared order; KeyError for a missing or unknown name."""
        _same(self.name, "argument", self.args, args)
        out = [args[name] for name in self.args]
        for group in groups:
            _same(self.name, "group field", self.group, group)
            out += [group[name] for name in self.group]
        return out

    def call(
        self,
        keys: Mapping[str, str],
        args: Mapping[str, Any] | None = None,
        groups: Sequence[Mapping[str, Any]] = (),
        *,
        replicas: int = 0,
        timeout_ms: int = 1000,
    ) -> Op[Any]:
        """The script's reply; a script error (``redis.ResponseError``) propagates to the caller.

        ``replicas`` > 0: the call returns only once that many replicas acknowledged its writes
        (``WAIT`` on the same connection, up to ``timeout_ms``); fewer raise ``NOREPLICAS`` (a
        ``redis.ResponseError`` that :func:`~chorus_client.outage.server_state` classifies)."""
        _same(self.name, "key", self.keys, keys)
        key_list = [keys[name] for name in self.keys]
        argv = self.argv(args or {}, groups)
        evalsha = Command(("EVALSHA", self.sha, len(key_list), *key_list, *argv))
        evaluate = Command(("EVAL", self.source, len(key_list), *key_list, *argv))
        if not replicas:
            try:
                return (yield evalsha)
            except redis.exceptions.NoScriptError:
                return (yield evaluate)
        try:
            return (yield Replicated(evalsha, key_list[0], replicas, timeout_ms))
        except redis.exceptions.NoScriptError:
            return (yield Replicated(evaluate, key_list[0], replicas, timeout_ms))


def _same(script: str, what: str, declared: tuple[str, ...], given: Mapping[str, Any]) -> None:
    if set(given) != set(declared):
        missing, unknown = sorted(set(declared) - set(given)), sorted(set(given) - set(declared))
        raise KeyError(f"{script}: {what}s missing {missing}, unknown {unknown}")


@cache
def _source(name: str) -> str:
    return (resources.files("chorus_client") / "lua" / f"{name}.lua").read_text(encoding="utf-8")


ENQUEUE = ScriptSpec(
    "enqueue",
    keys=(
        "request",
        "depth",
        "active",
        "active_set",
        "wake",
        "queue_rt",
        "queue_interactive",
        "queue_batch",
        "tenants",
        "drr",
        "fresh",
    ),
    args=("tenant", "request_id", "voice", "sent_ms", "within_ms", "ttl_s", "group", "segments"),
    group=("lane", "chars", "payload"),
    doc="Enqueue one request, all or nothing; returns the segment count (docs/PROTOCOL.md).",
)
CANCEL = ScriptSpec(
    "cancel",
    keys=("request",),
    doc="Flag a request cancelled: 1 now cancelled, 0 already ended, -1 unknown.",
)
SCRIPTS = (ENQUEUE, CANCEL)
"""The scripts a client calls (workers call the others, from ``broker/lua``)."""
