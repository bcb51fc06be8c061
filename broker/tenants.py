"""Tenant policies stored in Redis: read, set and delete them (the ``chorus tenants`` commands).

Policies live in the ``tenants`` hash of the shard the tenant lives in, as JSON
(field ``<tenant>``; :mod:`broker.placement` says which shard); the field ``*``,
the same in every shard, holds the policy for tenants that have none of their own,
which can also reject them. The Lua scripts read the same hash, so a change applies to the
next enqueue and the next claim on every machine; lowering a cap never touches
work already queued or in flight. The policy values themselves, and the built-in
default, are in :mod:`broker.policy`.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import redis

from broker.placement import Shards
from broker.policy import (
    BUILTIN_DEFAULT,
    DEFAULT_FIELD,
    DefaultPolicy,
    TenantPolicy,
)
from chorus_client.keys import Keys, home_shard, validate_tenant
from shared.connection import as_str

__all__ = ["Tenants"]


class Tenants:
    """Read and change tenant policies (the ``chorus tenants`` commands use this).

    A tenant's policy lives in the shard the tenant lives in (:meth:`Shards.locate
    <broker.placement.Shards.locate>`); the default policy is written to every shard. A policy
    whose ``shard`` names another shard than the tenant's moves the tenant there
    (:meth:`Shards.move <broker.placement.Shards.move>`, without waiting for the drain).
    Tenant names must match the tenant grammar (:func:`chorus_client.keys.validate_tenant`): any other
    raises :class:`~shared.errors.UnknownTenant`. A change applies to the next enqueue and claim.
    """

    def __init__(self, client: redis.Redis, keys: Keys | None = None) -> None:
        self._r = client
        self.keys = keys or Keys()
        self.shards = Shards(client, self.keys)

    def set(self, tenant: str, policy: TenantPolicy) -> TenantPolicy:
        """Give the tenant its own policy (replacing any); returns it as stored."""
        where = self.shards.locate(validate_tenant(tenant))
        if policy.shard is not None and policy.shard != where:
            self.shards.move(tenant, policy.shard, wait_s=0, policy=policy)
            return policy
        home = home_shard(tenant, self.shards.count())
        if where != home:  # placed away from home: it keeps its pin, and home's forward follows
            policy = replace(policy, shard=where)
            self.shards.write(home, tenant, policy)
        self.shards.write(where, tenant, policy)
        return policy

    def update(self, tenant: str, **changes: Any) -> TenantPolicy:
        """Change some fields of the tenant's policy (starting from the default if it has none)."""
        current = self.get(tenant) or self.default().policy
        return self.set(tenant, replace(current, **changes))

    def delete(self, tenant: str) -> bool:
        """Drop the tenant's own policy and every forward to it (the default applies again, in its
        home shard); whether it had a policy."""
        existed = self.get(tenant) is not None
        validate_tenant(tenant)
        for shard in self.shards.names():
            self.shards.write(shard, tenant, None)
        return existed

    def get(self, tenant: str) -> TenantPolicy | None:
        """The tenant's own policy, or None when the default applies."""
        where = self.shards.locate(validate_tenant(tenant))
        return self.shards.entry(where, tenant)

    def effective(self, tenant: str) -> tuple[TenantPolicy, bool]:
        """The policy that applies to the tenant, and whether it is the tenant's own."""
        return self.shards.effective(self.shards.locate(validate_tenant(tenant)), tenant)

    def all(self) -> dict[str, TenantPolicy]:
        """Every tenant's own policy, by tenant name (sorted), from every shard (forwards are not
        policies: each tenant appears once); the default is not among them."""
        out: dict[str, TenantPolicy] = {}
        for k in self.shards.all_keys():
            for name, value in self._r.hgetall(k.tenants()).items():
                if name == DEFAULT_FIELD.encode():
                    continue
                policy = TenantPolicy.from_dict(json.loads(value))
                if policy.shard in (None, k.shard):
                    out[as_str(name)] = policy
        return dict(sorted(out.items()))

    def default(self) -> DefaultPolicy:
        """The policy of tenants without one of their own (:data:`BUILTIN_DEFAULT` when none is set)."""
        raw = self._r.hget(self.keys.of_shard(self.shards.names()[0]).tenants(), DEFAULT_FIELD)
        return BUILTIN_DEFAULT if raw is None else DefaultPolicy.from_json(raw)

    def set_default(self, default: DefaultPolicy) -> DefaultPolicy:
        """Replace the default policy (field ``*``) in every shard; returns it."""
        for shard in self.shards.names():
            self.shards.write_field(shard, DEFAULT_FIELD, default.to_json())
        return default
