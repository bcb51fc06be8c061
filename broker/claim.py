"""Claiming and admission: claim entries in the fair order, admit them against their request.

Claiming is one Lua call (``lua/claim.lua``, deficit round robin; see
:mod:`broker.scheduler`) over the shard's state, so every worker on every machine
sees one exact order. Each claimed entry gets a lease (:mod:`broker.lease`) and
stays in the consumer group's pending list until it is completed
(:mod:`broker.complete`). Before synthesis the worker admits the entry
(``lua/admit.lua``): it must own a segment of a live request of its own tenant.

:class:`Claimer` is the worker's one handle on the queue: it claims and admits
here and hands leases, completion and the sweep to :class:`~broker.lease.Leases`,
:class:`~broker.complete.Completions` and :class:`~broker.sweep.Sweeper`.
"""

from __future__ import annotations

import redis

from broker.claimed import Claimed, entry_fields
from broker.complete import Completion, Completions
from broker.lease import Leases, server_ms
from broker.scripts import ADMIT, CLAIM, script_source
from broker.sweep import Sweeper
from chorus_client.constants import DEFAULT_LEASE_MS, DEFAULT_MAX_ATTEMPTS
from chorus_client.keys import GROUP, Keys
from shared.connection import as_str

__all__ = [
    "ADMITTED",
    "DEFAULT_LEASE_MS",
    "DEFAULT_MAX_ATTEMPTS",
    "REJECTIONS",
    "Claimed",
    "Claimer",
    "Claims",
    "Completion",
    "server_ms",
]

MAX_CLAIM_CALLS = 64
"""Script calls one :meth:`Claims.claim` makes at most while the script says more may be claimable."""

ADMITTED = ("ok", "cancelled", "expired")
"""Verdicts of :meth:`Claims.admit` for an entry that owns its segment (``lua/admit.lua``)."""
REJECTIONS = {
    "unknown": ("unknown_request", "no such request in this shard (never enqueued, expired or deleted)"),
    "tenant": ("tenant_mismatch", "the request belongs to another tenant than the lane stream"),
    "range": ("seq_out_of_range", "seq is not below the request's segment count"),
    "finished": ("request_finished", "the request has already ended"),
    "duplicate": ("duplicate_segment", "another entry already carries this segment of the request"),
}
"""Verdicts that reject an entry -> (dead-letter code, reason)."""


class Claims:
    """Claiming entries of one shard in the scheduler's order, and admitting them."""

    def __init__(self, client: redis.Redis, keys: Keys | None = None) -> None:
        self._r = client
        self.keys = keys or Keys()
        self._claim = client.register_script(script_source(CLAIM))
        self._admit = client.register_script(script_source(ADMIT))
        self.weight = 0
        """The shard's weight as the last claim reported it: the sum of the weights of the tenants it
        can serve now (``lua/claim.lua``); a worker serving several shards divides its time by it."""

    def claim(
        self,
        consumer: str,
        count: int = 1,
        *,
        workers: int = 1,
        reserve: int = 0,
        lease_ms: int = DEFAULT_LEASE_MS,
    ) -> list[Claimed]:
        """Up to ``count`` entries in scheduler order for ``consumer``, each with a lease of ``lease_ms``
        and the cost charged to its tenant; an empty list when nothing is claimable.

        ``reserve`` of the ``workers`` live workers are kept for tenants coming back
        from idle (see ``lua/claim.lua``); 0 keeps the scheduler work-conserving.
        """
        k = self.keys
        out: list[Claimed] = []
        for _ in range(MAX_CLAIM_CALLS):
            flat = self._claim(
                keys=[k.depth(), k.active(), k.active_set(), k.tenants(), k.drr(), k.fresh(), k.leases()],
                args=[k.queue_prefix(), GROUP, consumer, count - len(out), workers, reserve, 0, lease_ms],
            )
            self.weight = int(flat[1])
            for i in range(2, len(flat), 6):
                stream, entry_id, fields, tenant, lane, cost_us = flat[i : i + 6]
                out.append(
                    Claimed(
                        stream.decode(),
                        entry_id.decode(),
                        entry_fields(fields),
                        tenant.decode(),
                        lane.decode(),
                        cost_us=int(cost_us),
                    )
                )
            # the script stops after a bounded number of ring visits; go on while it says so
            if not int(flat[0]) or len(out) >= count:
                break
        return out

    def admit(self, item: Claimed, request_id: str, seq: int) -> tuple[str, int]:
        """Check an entry against its request before synthesis: (verdict, the request's segment count).

        The verdict is one of :data:`ADMITTED` (the entry owns segment ``seq``) or a key of
        :data:`REJECTIONS`. Raises :class:`~shared.errors.RequestNotFound` for an id of another shard.
        """
        verdict, segments = self._admit(
            keys=[self.keys.request(request_id)], args=[item.tenant, seq, item.lease_member]
        )
        return as_str(verdict), int(segments)


class Claimer:
    """A worker's one handle on the queue of a shard. It holds no logic: each method is the one of the
    same name of its part, and the parts are reachable too.

    * :attr:`claims` (:class:`Claims`, this module): ``claim``, ``admit``;
    * :attr:`leases` (:class:`~broker.lease.Leases`): ``extend``, ``reclaim``, ``release``;
    * :attr:`completions` (:class:`~broker.complete.Completions`): ``complete``, ``unfinished``,
      ``dead_letter_record``, ``dead_letter``;
    * :attr:`sweeper` (:class:`~broker.sweep.Sweeper`): ``sweep``.

    Waiting for work on any shard is :mod:`broker.wake`'s; the heartbeat, deployment-wide, the
    worker's own (:func:`broker.lease.heartbeat_script`).
    """

    def __init__(self, client: redis.Redis, keys: Keys | None = None) -> None:
        self.keys = keys or Keys()
        self.claims = Claims(client, self.keys)
        self.leases = Leases(client, self.keys)
        self.completions = Completions(client, self.keys)
        self.sweeper = Sweeper(client, self.keys)
        self.claim = self.claims.claim
        self.admit = self.claims.admit

        self.extend = self.leases.extend
        self.reclaim = self.leases.reclaim
        self.release = self.leases.release

        self.complete = self.completions.complete
        self.unfinished = self.completions.unfinished
        self.dead_letter_record = self.completions.dead_letter_record
        self.dead_letter = self.completions.dead_letter

        self.sweep = self.sweeper.sweep
