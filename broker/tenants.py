"""Tenant policies stored in Redis: read, set and delete them (the ``chorus tenants`` commands).

Policies live in the shard's ``tenants`` hash as JSON (field ``<tenant>``); the
field ``*`` holds the policy for tenants that have none of their own, which can
also reject them. The Lua scripts read the same hash, so a change applies to the
next enqueue and the next claim on every machine; lowering a cap never touches
work already queued or in flight. The policy values themselves, and the built-in
default, are in :mod:`broker.policy`.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import redis

from broker.policy import (
    BUILTIN_DEFAULT,
    DEFAULT_FIELD,
    DefaultPolicy,
    TenantPolicy,
    effective_policy,
)
from broker.scripts import POLICY, script_source
from chorus_client.keys import Keys, validate_tenant
from shared.connection import as_str

__all__ = ["Tenants"]


class Tenants:
    """Read and change tenant policies (the ``chorus tenants`` commands use this).

    Tenant names must match the tenant grammar (:func:`chorus_client.keys.validate_tenant`): any other
    raises :class:`~shared.errors.UnknownTenant`. A change applies to the next enqueue and claim.
    """

    def __init__(self, client: redis.Redis, keys: Keys | None = None) -> None:
        self._r = client
        self.keys = keys or Keys()
        self._script = client.register_script(script_source(POLICY))

    def _write(self, name: str, raw: str) -> None:
        """``lua/policy.lua``: set field ``name`` to ``raw`` ("" deletes it) and unpark the tenant."""
        k = self.keys
        self._script(keys=[k.tenants(), k.drr(), k.depth(), k.active(), k.active_set(), k.wake()], args=[name, raw])

    def set(self, tenant: str, policy: TenantPolicy) -> TenantPolicy:
        """Give the tenant its own policy (replacing any); returns it."""
        self._write(validate_tenant(tenant), policy.to_json())
        return policy

    def update(self, tenant: str, **changes: Any) -> TenantPolicy:
        """Change some fields of the tenant's policy (starting from the default if it has none)."""
        current = self.get(tenant) or self.default().policy
        return self.set(tenant, replace(current, **changes))

    def delete(self, tenant: str) -> bool:
        """Drop the tenant's own policy (the default applies again); whether it had one."""
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
        """Every tenant's own policy, by tenant name (sorted); the default is not among them."""
        raw = self._r.hgetall(self.keys.tenants())
        out = {
            as_str(name): TenantPolicy.from_dict(json.loads(value))
            for name, value in raw.items()
            if name != DEFAULT_FIELD.encode()
        }
        return dict(sorted(out.items()))

    def default(self) -> DefaultPolicy:
        """The policy of tenants without one of their own (:data:`BUILTIN_DEFAULT` when none is set)."""
        raw = self._r.hget(self.keys.tenants(), DEFAULT_FIELD)
        return BUILTIN_DEFAULT if raw is None else DefaultPolicy.from_json(raw)

    def set_default(self, default: DefaultPolicy) -> DefaultPolicy:
        """Replace the default policy (field ``*``); returns it."""
        self._write(DEFAULT_FIELD, default.to_json())
        return default
