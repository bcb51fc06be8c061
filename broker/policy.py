"""Tenant policies as data: weight, queue and in-flight caps, lanes, and the built-in default.

Plain values with their JSON form, and nothing that talks to Redis: the Lua prelude
(:mod:`broker.scripts`) embeds :data:`BUILTIN_DEFAULT`, and :mod:`broker.tenants`
reads and writes policies in the shard's ``tenants`` hash. The JSON shape, shared with
the scripts and documented in ``docs/PROTOCOL.md``, is
``{"weight", "max_queued", "max_inflight", "lanes"}``, plus ``"shard"`` for a tenant
placed outside its home shard (:mod:`broker.placement`) and ``"reject"`` for the
default policy (field ``*``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from typing import Any

from chorus_client.constants import LANES
from chorus_client.keys import validate_shard
from shared.errors import ConfigError

__all__ = [
    "BUILTIN_DEFAULT",
    "DEFAULT_FIELD",
    "MAX_WEIGHT",
    "DefaultPolicy",
    "TenantPolicy",
    "effective_policy",
]

MAX_WEIGHT = 1000
DEFAULT_FIELD = "*"
"""Field of the tenants hash that holds the :class:`DefaultPolicy`."""


@dataclass(frozen=True)
class TenantPolicy:
    """One tenant's settings. Raises :class:`~shared.errors.ConfigError` for a value out of range."""

    weight: int = 1
    """Share of worker time relative to the other tenants with work (1..1000)."""
    max_queued: int = 100_000
    """Most segments queued (not yet claimed) at once; 0 = no cap."""
    max_inflight: int = 0
    """Most segments being synthesised at once; 0 = no cap."""
    lanes: tuple[str, ...] = LANES
    """Lanes the tenant may use, kept in claim order. Without ``rt``, first segments queue as
    ``interactive``."""
    shard: str | None = None
    """The shard the tenant lives in, when it is not its home shard (or is pinned there): in that
    shard the entry is the tenant's policy, in any other it is a forward (``WRONGSHARD``)."""

    def __post_init__(self) -> None:
        for name in ("weight", "max_queued", "max_inflight"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise ConfigError(f"tenant {name} must be an integer, got {value!r}")
        if not 1 <= self.weight <= MAX_WEIGHT:
            raise ConfigError(f"tenant weight must be within 1..{MAX_WEIGHT}, got {self.weight}")
        if self.max_queued < 0 or self.max_inflight < 0:
            raise ConfigError("tenant caps must be >= 0 (0 = no cap)")
        lanes = tuple(self.lanes)
        unknown = [lane for lane in lanes if lane not in LANES]
        if unknown:
            raise ConfigError(f"unknown lanes {unknown}; lanes are {', '.join(LANES)}")
        if not lanes:
            raise ConfigError("a tenant needs at least one lane")
        object.__setattr__(self, "lanes", tuple(lane for lane in LANES if lane in lanes))
        if self.shard is not None:
            validate_shard(self.shard)

    def to_dict(self) -> dict[str, Any]:
        """The JSON object the scripts read: ``{"weight", "max_queued", "max_inflight", "lanes"}``, and
        ``"shard"`` when set."""
        out: dict[str, Any] = {
            "weight": self.weight,
            "max_queued": self.max_queued,
            "max_inflight": self.max_inflight,
            "lanes": list(self.lanes),
        }
        if self.shard is not None:
            out["shard"] = self.shard
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TenantPolicy:
        """The policy of a decoded JSON object; absent fields take this class's defaults, others are ignored.

        Raises :class:`~shared.errors.ConfigError` for a value out of range.
        """
        given = {f.name: data[f.name] for f in fields(cls) if f.name in data}
        if "lanes" in given:
            given["lanes"] = tuple(given["lanes"])
        return cls(**given)


@dataclass(frozen=True)
class DefaultPolicy:
    """What a tenant without a policy of its own meets."""

    reject: bool = False
    """Refuse enqueues from unconfigured tenants (``UnknownTenant``)."""
    policy: TenantPolicy = field(default_factory=TenantPolicy)

    def to_json(self) -> str:
        """The ``*`` field's JSON: the policy's object with ``"reject"`` added."""
        return json.dumps({"reject": self.reject, **self.policy.to_dict()}, separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: str | bytes) -> DefaultPolicy:
        """Raises :class:`json.JSONDecodeError` for text that is not JSON, ``ConfigError`` for bad values."""
        data = json.loads(raw)
        return cls(reject=bool(data.get("reject", False)), policy=TenantPolicy.from_dict(data))


BUILTIN_DEFAULT = DefaultPolicy()
"""Applies when the ``*`` field is absent: accept every tenant with weight 1."""


def effective_policy(own: str | bytes | None, default: str | bytes | None) -> tuple[TenantPolicy, bool]:
    """The policy that applies, from the raw ``<tenant>`` and ``*`` fields of the tenants hash (either
    may be absent), and whether it is the tenant's own: for callers that read both in one round trip."""
    if own is not None:
        return TenantPolicy.from_dict(json.loads(own)), True
    return (BUILTIN_DEFAULT if default is None else DefaultPolicy.from_json(default)).policy, False
