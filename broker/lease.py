"""Liveness by the Redis server's clock: segment leases (extend, reclaim, release) and worker heartbeats.

Every claimed entry has a lease in the shard's leases zset (member
:attr:`~broker.claimed.Claimed.lease_member`, score = expiry in ms by the server's
clock). A live worker extends the leases of what it holds every third of the lease
(``lua/lease.lua``); once a lease expires another worker takes the entry over
(``lua/reclaim.lua``, which counts the delivery), and an entry delivered more than
the attempt limit comes back ``exhausted`` for the caller to dead-letter. A worker
shutting down hands unserved entries back at once (:meth:`Leases.release`).
Workers also beat in the deployment's workers zset (``lua/heartbeat.lua``), by the same
clock, so a machine with a wrong clock changes nothing.
"""

from __future__ import annotations

import redis
from redis.commands.core import Script

from broker.claimed import Claimed, entry_fields
from broker.scripts import HEARTBEAT, LEASE, RECLAIM, script_source
from chorus_client.constants import DEFAULT_LEASE_MS, DEFAULT_MAX_ATTEMPTS
from chorus_client.keys import GROUP, Keys

__all__ = ["Leases", "heartbeat_script", "server_ms"]


def server_ms(client: redis.Redis) -> int:
    """Milliseconds since the epoch by the Redis server's clock (every worker agrees on it)."""
    seconds, micros = client.time()
    return int(seconds) * 1000 + int(micros) // 1000


def heartbeat_script(client: redis.Redis) -> Script:
    """``lua/heartbeat.lua``, registered: ``keys=[Keys.workers()]``, ``args=[worker id, liveness window ms]``.

    It records the beat by the server's clock and returns the count of workers that beat within
    the window.
    """
    return client.register_script(script_source(HEARTBEAT))


class Leases:
    """The leases of claimed entries in one shard."""

    def __init__(self, client: redis.Redis, keys: Keys | None = None) -> None:
        self._r = client
        self.keys = keys or Keys()
        self._lease = client.register_script(script_source(LEASE))
        self._reclaim = client.register_script(script_source(RECLAIM))

    def extend(self, consumer: str, items: list[Claimed], *, lease_ms: int = DEFAULT_LEASE_MS) -> list[bool | None]:
        """Push the leases of ``items`` to the server's clock + ``lease_ms``, one verdict per item in order:
        True extended, False taken over by another worker (``consumer`` no longer owns the entry),
        None completed meanwhile (no lease left)."""
        if not items:
            return []
        k = self.keys
        args: list[str | int] = [k.queue_prefix(), GROUP, consumer, lease_ms, *(i.lease_member for i in items)]
        res = self._lease(keys=[k.leases()], args=args)
        return [None if int(x) < 0 else bool(int(x)) for x in res]

    def reclaim(
        self,
        consumer: str,
        count: int = 8,
        *,
        lease_ms: int = DEFAULT_LEASE_MS,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    ) -> list[Claimed]:
        """Take over up to ``count`` entries whose lease expired (their worker died or stalled) for
        ``consumer``, with a new lease of ``lease_ms``.

        Each comes back with its delivery number (:attr:`~broker.claimed.Claimed.attempt`) and
        ``cost_us`` 0 (the tenant was charged at the first claim); one delivered more than
        ``max_attempts`` times comes back ``exhausted``, for the caller to dead-letter. Entries
        acknowledged or deleted meanwhile lose their lease and are not returned.
        """
        k = self.keys
        args: list[str | int] = [k.queue_prefix(), GROUP, consumer, 0, lease_ms, max_attempts, count]
        flat = self._reclaim(keys=[k.leases()], args=args)
        out = []
        for i in range(0, len(flat), 7):
            stream, entry_id, fields, tenant, lane, attempt, fate = flat[i : i + 7]
            out.append(
                Claimed(
                    stream.decode(),
                    entry_id.decode(),
                    entry_fields(fields),
                    tenant.decode(),
                    lane.decode(),
                    cost_us=0,
                    attempt=int(attempt),
                    exhausted=fate == b"dead",
                )
            )
        return out

    def release(self, items: list[Claimed]) -> None:
        """Hand claimed-but-unserved entries back at once (shutdown): their leases expire now, so the
        next reclaim by any worker takes them. Entries completed meanwhile are left alone."""
        if items:
            self._r.zadd(self.keys.leases(), {i.lease_member: 0 for i in items}, xx=True)
