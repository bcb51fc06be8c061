"""Parameters of the fair scheduler (deficit round robin in ``lua/claim.lua``).

How the scheduler works, in one place (the scripts carry the same words):

* **Ring.** ``active`` lists the tenants that have queued work and are below
  their in-flight cap. The tenant at the head is served while its deficit is
  positive; a tenant out of credit is given ``weight x quantum`` and moved to the
  tail. This is DRR with overdraft (as in fq_codel): one claim may take a tenant
  below zero, and the debt is paid before its next turn. Credit is granted one
  turn (``weight x quantum``) at a time, so no tenant banks service; while the
  rate is still being measured (first ``ewma`` completions) credit is also capped
  at one turn at claim time, so credit granted from the initial guess does not
  linger.
* **Cost.** A claim charges ``characters x rate``: the estimate. When the segment
  completes, the deficit is corrected by ``charged - measured`` worker time, so
  fairness holds in worker time, not in segment count. ``rate`` (microseconds per
  weighted character, a moving average of the measurements) sets ``quantum``
  (``rate x quantum_chars`` microseconds per unit of weight), so one turn of a
  weight-1 tenant is about one segment whatever the model and the hardware. After
  the first ``ewma`` measurements the quantum is reset from the rate only every
  ``quantum_every_s``: a quantum that followed every sample would favour the
  tenant whose own completion just raised it.
* **Sparse tenants.** A tenant that becomes active with nothing in flight was idle:
  it gets a fresh quantum (a debt is kept) and the head of the ring, so a light
  tenant's first audio does not wait for a round. One that re-activates while its
  work is in flight rejoins the tail with at most one quantum: flooding or
  re-activating fast earns nothing.
* **Caps.** A tenant at its in-flight cap is parked off the ring and put back by
  the completion that frees a slot (or by a policy change).
* **Lanes.** Inside a tenant: ``rt`` before ``interactive`` before ``batch``, except
  that after ``batch_every`` claims of other lanes while batch work waited, the next
  claim takes batch, so batch keeps at least ``1 / (batch_every + 1)`` of the
  tenant's claims.

Every value here is handed to the Lua scripts by :mod:`broker.scripts`, so Python
and Lua share one definition.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from chorus_client.constants import STATS_BUCKET_S, STATS_BUCKET_TTL_S

__all__ = ["SCHEDULER", "SchedulerParams"]


@dataclass(frozen=True)
class SchedulerParams:
    rate: int = 60_000
    """Initial cost estimate, microseconds of worker time per weighted character
    (Kokoro int8 on two CPU threads); replaced by the measured average."""
    quantum: int = 1_920_000
    """Initial quantum, microseconds per unit of weight (``rate x quantum_chars``)."""
    quantum_chars: int = 32
    """One turn of a weight-1 tenant: the worker time of this many characters."""
    min_quantum: int = 1_000
    quantum_every_s: int = 30
    ewma: int = 16
    """The rate moves 1/ewma of the way to each new measurement (1/n for the first n)."""
    default_chars: int = 32
    """Cost of an entry without a valid ``c`` field (a foreign producer's)."""
    max_chars: int = 100_000
    batch_every: int = 9
    """Batch gets every 10th claim of a tenant while its other lanes have work."""
    visits: int = 64
    """Ring visits one claim call may make beyond 4 per wanted entry."""
    repair_cap: int = 10_000
    """Most undelivered entries counted per lane when the depth counter is repaired from a stream
    (a larger backlog is repaired again as it drains)."""
    bucket_s: int = STATS_BUCKET_S
    """Width of the time buckets behind the last-minute statistics (``complete.lua`` writes them,
    :mod:`chorus_client.rates` sums them)."""
    bucket_ttl_s: int = STATS_BUCKET_TTL_S
    weigh_ms: int = 250
    """How often (at most) ``claim.lua`` recounts the shard's weight, the sum of the weights of the
    tenants it can serve now (ring and fresh list), which it hands to workers serving several
    shards (:mod:`broker.picker`)."""

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))


SCHEDULER = SchedulerParams()
