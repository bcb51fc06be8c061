"""Tenant settings stored in Redis: weight, queue and in-flight caps, lanes; the default policy.

Policies live in the shard's ``tenants`` hash as JSON (field ``<tenant>``); the
field ``*`` holds the policy for tenants that have none of their own, which can
also reject them. The Lua scripts read the same hash, so a change applies to the
next enqueue and the next claim on every machine; lowering a cap never touches
work already queued or in flight.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any

import redis

from broker.scripts import POLICY, script_source
from shared.connection import as_str
from shared.errors import ConfigError
from shared.keys import LANES, Keys, validate_tenant

__all__ = ["BUILTIN_DEFAULT", "MAX_WEIGHT", "DefaultPolicy", "TenantPolicy", "Tenants", "effective_policy"]

MAX_WEIGHT = 1000
DEFAULT_FIELD = "*"


@dataclass(frozen=True)
class TenantPolicy:
    weight: int = 1
    """Share of worker time relative to the other tenants with work (1..1000)."""
    max_queued: int = 100_000
    """Most segments queued (not yet claimed) at once; 0 = no cap."""
    max_inflight: int = 0
    """Most segments being synthesised at once; 0 = no cap."""
    lanes: tuple[str, ...] = LANES
    """Lanes the tenant may use. Without ``rt``, first segments queue as ``interactive``."""

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

    def to_dict(self) -> dict[str, Any]:
        return {"weight": self.weight, "max_queued": self.max_queued,
                "max_inflight": self.max_inflight, "lanes": list(self.lanes)}  # fmt: skip

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TenantPolicy:
        return cls(weight=data.get("weight", 1), max_queued=data.get("max_queued", 100_000),
                   max_inflight=data.get("max_inflight", 0), lanes=tuple(data.get("lanes", LANES)))  # fmt: skip


@dataclass(frozen=True)
class DefaultPolicy:
    """What a tenant without a policy of its own meets."""

    reject: bool = False
    """Refuse enqueues from unconfigured tenants (``UnknownTenant``)."""
    policy: TenantPolicy = field(default_factory=TenantPolicy)

    def to_json(self) -> str:
        return json.dumps({"reject": self.reject, **self.policy.to_dict()}, separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: str | bytes) -> DefaultPolicy:
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


class Tenants:
    """Read and change tenant policies (the ``chorus tenants`` commands use this)."""

    def __init__(self, client: redis.Redis, keys: Keys | None = None) -> None:
        self._r = client
        self.keys = keys or Keys()
        self._script = client.register_script(script_source(POLICY))

    def _write(self, name: str, raw: str) -> None:
        k = self.keys
        self._script(keys=[k.tenants(), k.drr(), k.depth(), k.active(), k.active_set(), k.wake()], args=[name, raw])

    def set(self, tenant: str, policy: TenantPolicy) -> TenantPolicy:
        self._write(validate_tenant(tenant), policy.to_json())
        return policy

    def update(self, tenant: str, **changes: Any) -> TenantPolicy:
        """Change some fields of the tenant's policy (starting from the default if it has none)."""
        current = self.get(tenant) or self.default().policy
        return self.set(tenant, replace(current, **changes))

    def delete(self, tenant: str) -> bool:
        existed = self.get(tenant) is not None
        self._write(validate_tenant(tenant), "")
        return existed

    def get(self, tenant: str) -> TenantPolicy | None:
        """The tenant's own policy, or None when the default applies."""
        raw = self._r.hget(self.keys.tenants(), validate_tenant(tenant))
        return None if raw is None else TenantPolicy.from_dict(json.loads(raw))

    def effective(self, tenant: str) -> tuple[TenantPolicy, bool]:
        """The policy that applies to the tenant, and whether it is the tenant's own."""
        own, default = self._r.hmget(self.keys.tenants(), [validate_tenant(tenant), DEFAULT_FIELD])
        return effective_policy(own, default)

    def all(self) -> dict[str, TenantPolicy]:
        raw = self._r.hgetall(self.keys.tenants())
        out = {as_str(name): TenantPolicy.from_dict(json.loads(value))
               for name, value in raw.items() if name != DEFAULT_FIELD.encode()}  # fmt: skip
        return dict(sorted(out.items()))

    def default(self) -> DefaultPolicy:
        raw = self._r.hget(self.keys.tenants(), DEFAULT_FIELD)
        return BUILTIN_DEFAULT if raw is None else DefaultPolicy.from_json(raw)

    def set_default(self, default: DefaultPolicy) -> DefaultPolicy:
        self._write(DEFAULT_FIELD, default.to_json())
        return default
