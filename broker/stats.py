"""Queue statistics per tenant and lane: queued, in flight, work served, recent share of worker time.

Workers record each completed segment's measured worker time twice (in
``complete.lua``): in the cumulative ``served`` hash and in a time bucket
(``busy:<n>``, ``SCHEDULER.bucket_s`` wide, expiring after two minutes). The
"last minute" figures sum the buckets that cover the last 60 seconds, so they
span 60 to 70 seconds; rates divide by the span actually covered.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import redis

from broker.placement import Shards
from broker.policy import TenantPolicy
from broker.tenants import Tenants
from chorus_client.constants import LANES
from chorus_client.keys import GROUP, Keys
from chorus_client.rates import split_field, tenant_rate, window
from shared.connection import as_str

__all__ = ["LaneStats", "Stats", "TenantStats"]


@dataclass
class LaneStats:
    lane: str
    queued: int = 0
    inflight: int = 0
    served: int = 0
    """Segments completed since the statistics began."""
    served_s: float = 0.0
    """Worker seconds spent on them."""
    recent: int = 0
    """Segments completed in the last minute."""
    recent_s: float = 0.0
    """Worker seconds in the last minute."""


@dataclass
class TenantStats:
    tenant: str
    policy: TenantPolicy
    configured: bool
    deficit_ms: float
    parked: bool
    lanes: dict[str, LaneStats] = field(default_factory=dict)
    share: float = 0.0
    """This tenant's part of all worker time in the last minute (0..1), over every shard."""
    shards: list[str] = field(default_factory=list)
    """The shards it has state in: one, or two while a move drains."""

    @property
    def queued(self) -> int:
        return sum(s.queued for s in self.lanes.values())

    @property
    def inflight(self) -> int:
        return sum(s.inflight for s in self.lanes.values())

    @property
    def recent_s(self) -> float:
        return sum(s.recent_s for s in self.lanes.values())

    @property
    def recent(self) -> int:
        return sum(s.recent for s in self.lanes.values())


class Stats:
    """Per-tenant statistics over every shard of the deployment (a tenant with work in two shards,
    while a move drains, has its lanes summed and both shards named)."""

    def __init__(self, client: redis.Redis, keys: Keys | None = None) -> None:
        self._r = client
        self.keys = keys or Keys()

    def recent(
        self, now: float | None = None, keys: Keys | None = None
    ) -> tuple[dict[tuple[str, str], tuple[int, float]], float]:
        """(tenant, lane) -> (segments, worker seconds) over the last minute in one shard (``keys``,
        default this one's), and the span in seconds."""
        names, span = window(keys or self.keys, now)
        pipe = self._r.pipeline(transaction=False)
        for key in names:
            pipe.hgetall(key)
        acc: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0, 0.0])
        for bucket in pipe.execute():
            for name, value in bucket.items():
                parts = split_field(name)
                if parts is None:
                    continue
                tenant, lane, kind = parts
                if kind == "n":
                    acc[(tenant, lane)][0] += int(value)
                elif kind == "us":
                    acc[(tenant, lane)][1] += int(value) / 1e6
        return {k: (int(v[0]), v[1]) for k, v in acc.items()}, span

    def service_rate(self, tenant: str) -> float:
        """Segments per second completed for the tenant over the last minute, in the shard it lives in."""
        keys = self.keys.of_shard(Shards(self._r, self.keys).locate(tenant))
        names, span = window(keys)
        pipe = self._r.pipeline(transaction=False)
        for key in names:
            pipe.hgetall(key)
        return tenant_rate(pipe.execute(), tenant, span)

    def snapshot(self, tenants: list[str] | None = None) -> list[TenantStats]:
        """Statistics of the named tenants, or of every tenant configured, queued, in flight or recently
        served, in every shard."""
        admin = Tenants(self._r, self.keys)
        policies = admin.all()
        default = admin.default().policy
        merged: dict[str, TenantStats] = {}
        total_recent = 0.0
        for k in admin.shards.all_keys():
            home = admin.shards.tenants_in(k.shard)
            for ts in self._shard_snapshot(k, policies, default, tenants, home):
                total_recent += ts.recent_s
                present = (
                    ts.tenant in home
                    or ts.queued
                    or ts.inflight
                    or ts.recent
                    or ts.parked
                    or any(lane.served for lane in ts.lanes.values())
                )
                have = merged.setdefault(ts.tenant, ts)
                if have is ts:
                    ts.shards = [k.shard] if present else []
                    continue
                if present:
                    have.shards.append(k.shard)
                have.parked = have.parked or ts.parked
                have.deficit_ms += ts.deficit_ms
                for lane, add in ts.lanes.items():
                    mine = have.lanes[lane]
                    mine.queued += add.queued
                    mine.inflight += add.inflight
                    mine.served += add.served
                    mine.served_s += add.served_s
                    mine.recent += add.recent
                    mine.recent_s += add.recent_s
        out = [merged[name] for name in sorted(merged)]
        for ts in out:
            ts.share = ts.recent_s / total_recent if total_recent else 0.0
        return out

    def _shard_snapshot(
        self,
        k: Keys,
        policies: dict[str, TenantPolicy],
        default: TenantPolicy,
        tenants: list[str] | None,
        home: set[str],
    ) -> list[TenantStats]:
        """The tenants of one shard: the named ones, or every one it has a policy (``home``) or state for."""
        r = self._r
        depth = {as_str(name): int(v) for name, v in r.hgetall(k.depth()).items()}
        drr = {as_str(name): v for name, v in r.hgetall(k.drr()).items()}
        recent, _ = self.recent(keys=k)
        served = r.hgetall(k.served())
        if tenants is None:
            names = set(home)
            names |= {n for n in depth if ":" not in n}
            names |= {n.rsplit(":", 1)[0] for n, v in drr.items() if n.endswith(":f") and int(v) > 0}
            names |= {t for t, _ in recent}
            names |= {p[0] for p in (split_field(f if isinstance(f, bytes) else f.encode()) for f in served) if p}
            chosen = sorted(names)
        else:
            chosen = tenants
        pipe = r.pipeline(transaction=False)
        for tenant in chosen:
            for lane in LANES:
                pipe.exists(k.queue(tenant, lane))
        exists = pipe.execute()
        pipe = r.pipeline(transaction=False)
        probes: list[tuple[str, str]] = []
        for i, (tenant, lane) in enumerate((t, lane) for t in chosen for lane in LANES):
            if exists[i]:
                pipe.xpending(k.queue(tenant, lane), GROUP)
                probes.append((tenant, lane))
        pending = dict(zip(probes, (p["pending"] for p in pipe.execute()), strict=True))
        out: list[TenantStats] = []
        for tenant in chosen:
            ts = TenantStats(
                tenant,
                policies.get(tenant, default),
                tenant in policies,
                deficit_ms=int(drr.get(f"{tenant}:d", 0)) / 1000,
                parked=f"{tenant}:p" in drr,
            )
            for lane in LANES:
                n, secs = recent.get((tenant, lane), (0, 0.0))
                ts.lanes[lane] = LaneStats(
                    lane,
                    queued=depth.get(f"{tenant}:{lane}", 0),
                    inflight=pending.get((tenant, lane), 0),
                    served=int(served.get(f"{tenant}:{lane}:n".encode(), 0)),
                    served_s=int(served.get(f"{tenant}:{lane}:us".encode(), 0)) / 1e6,
                    recent=n,
                    recent_s=secs,
                )
            out.append(ts)
        return out
