"""Housekeeping of a shard's lane streams: repair missed depth counts, forget idle tenants.

A foreign producer may XADD to a lane stream without the enqueue script, so the
depth counter the scheduler trusts can miss entries; ``lua/repair.lua`` counts
them from the stream and gives the tenant its place again. A tenant with nothing
queued or in flight for an idle window is forgotten (``lua/forget.lua``): its
empty lane streams, scheduler fields and counters go, its served totals roll up
into the shard's capped history stream, its policy stays. The worker runs
:meth:`Sweeper.sweep` rarely, one worker per period.
"""

from __future__ import annotations

import redis

from broker.scripts import FORGET, REPAIR, script_source
from chorus_client.constants import HISTORY_MAXLEN, LANES
from chorus_client.keys import GROUP, Keys
from shared.connection import as_str
from shared.errors import UnknownTenant

__all__ = ["Sweeper"]


class Sweeper:
    """Sweeps one shard's lane streams."""

    def __init__(self, client: redis.Redis, keys: Keys | None = None) -> None:
        self._r = client
        self.keys = keys or Keys()
        self._repair = client.register_script(script_source(REPAIR))
        self._forget = client.register_script(script_source(FORGET))

    def sweep(self, max_streams: int = 10_000, idle_ms: int | None = None) -> tuple[int, int]:
        """One pass over the shard's lane streams (SCAN, at most ``max_streams``; call it rarely: the
        worker does every ``sweep_s``): put back in the scheduler idle tenants whose streams hold
        entries the depth counter missed (raw XADDs), and forget tenants idle for ``idle_ms``
        milliseconds (None: forget none). Returns (entries found, tenants forgotten).

        Streams named outside the tenant grammar are skipped: no producer of ours wrote them.
        """
        k = self.keys
        prefix = k.queue_prefix()
        tenants: set[str] = set()
        for n, key in enumerate(self._r.scan_iter(match=f"{prefix}*", count=1000, _type="stream")):
            if n >= max_streams:
                break
            name = as_str(key)[len(prefix) :]
            tenant, _, lane = name.rpartition(":")
            if lane in LANES and tenant:
                tenants.add(tenant)
        found = forgotten = 0
        for tenant in sorted(tenants):
            try:
                lanes = [k.queue(tenant, lane) for lane in LANES]
            except UnknownTenant:  # a stream named outside the tenant grammar: no producer of ours wrote it
                continue
            repair_keys = [k.depth(), k.active(), k.active_set(), k.tenants(), k.drr(), k.fresh(), k.wake(), *lanes]
            found += int(self._repair(keys=repair_keys, args=[tenant, GROUP]))
            if idle_ms is not None:
                forget_keys = [k.active_set(), k.drr(), k.depth(), k.served(), k.history(), *lanes]
                forgotten += int(self._forget(keys=forget_keys, args=[tenant, idle_ms, GROUP, HISTORY_MAXLEN]))
        return found, forgotten
