"""A plain Python model of the scheduler in ``broker/lua/*.lua``, for the property test.

It keeps the same state (queued entries per tenant and lane, the fresh list, the
ring, deficits, in-flight counts, parked flags, batch streaks, rate, quantum)
and applies the same rules, written for reading rather than speed. The property
test drives it and the real scripts with the same random workload and compares
every pick.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from broker.policy import BUILTIN_DEFAULT, DefaultPolicy, TenantPolicy
from broker.scheduler import SCHEDULER

LANES = ("rt", "interactive", "batch")


@dataclass
class Pick:
    tag: str
    tenant: str
    lane: str
    cost: int
    chars: int
    """As the producer declared it (the cost uses a default when it is out of range)."""


@dataclass
class Model:
    policies: dict[str, TenantPolicy] = field(default_factory=dict)
    default: DefaultPolicy = BUILTIN_DEFAULT
    queues: dict[tuple[str, str], deque[tuple[str, int]]] = field(default_factory=dict)
    fresh: list[str] = field(default_factory=list)
    ring: list[str] = field(default_factory=list)
    active: set[str] = field(default_factory=set)
    deficit: dict[str, int] = field(default_factory=dict)
    inflight: dict[str, int] = field(default_factory=dict)
    parked: set[str] = field(default_factory=set)
    streak: dict[str, int] = field(default_factory=dict)
    rate: int = SCHEDULER.rate
    quantum: int = SCHEDULER.quantum
    samples: int = 0
    busy: int = 0
    """Segments in flight over all tenants (for the worker reserve)."""
    quantum_at: int = 0

    def policy(self, tenant: str) -> TenantPolicy:
        return self.policies.get(tenant, self.default.policy)

    def depth(self, tenant: str, lane: str | None = None) -> int:
        lanes = LANES if lane is None else (lane,)
        return sum(len(self.queues.get((tenant, x), ())) for x in lanes)

    # -- enqueue.lua -------------------------------------------------------------------

    def enqueue(self, tenant: str, segments: list[tuple[str, int, str]]) -> str | None:
        """segments: (lane, chars, tag). Returns the refusal word, or None when enqueued."""
        pol = self.policy(tenant)
        if tenant not in self.policies and self.default.reject:
            return "NOTENANT"
        lanes = []
        for lane, _, _ in segments:
            if lane == "rt" and "rt" not in pol.lanes:
                lane = "interactive"
            if lane not in pol.lanes:
                return "LANE"
            lanes.append(lane)
        if pol.max_queued > 0 and len(segments) > pol.max_queued:
            return "TOOLARGE"  # can never fit: not retryable
        if pol.max_queued > 0 and self.depth(tenant) + len(segments) > pol.max_queued:
            return "QUEUEFULL"
        for lane, (_, chars, tag) in zip(lanes, segments, strict=True):
            self.queues.setdefault((tenant, lane), deque()).append((tag, chars))
        if tenant not in self.active:
            self.active.add(tenant)
            self._activate(tenant)
        return None

    def _activate(self, tenant: str) -> None:
        pol = self.policy(tenant)
        f = self.inflight.get(tenant, 0)
        if pol.max_inflight > 0 and f >= pol.max_inflight:
            self.parked.add(tenant)
            return
        credit = self.quantum * pol.weight
        d = self.deficit.get(tenant, 0)
        d = min(d, 0) + credit if f == 0 else min(d, credit)
        self.deficit[tenant] = d
        (self.fresh if f == 0 and d > 0 else self.ring).append(tenant)

    # -- claim.lua ---------------------------------------------------------------------

    def _pick_lane(self, tenant: str) -> str | None:
        rt, inter, batch = (self.depth(tenant, x) for x in LANES)
        if batch > 0 and (rt > 0 or inter > 0):
            if self.streak.get(tenant, 0) >= SCHEDULER.batch_every:
                self.streak[tenant] = 0
                return "batch"
            self.streak[tenant] = self.streak.get(tenant, 0) + 1
        elif batch > 0:
            self.streak[tenant] = 0
        for lane, n in zip(LANES, (rt, inter, batch), strict=True):
            if n > 0:
                return lane
        return None

    def _claim_once(self, want: int, workers: int, reserve: int) -> tuple[list[Pick], bool]:
        out: list[Pick] = []
        visits, budget = 0, SCHEDULER.visits + 4 * want
        reserve = min(reserve, workers - 1)
        while len(out) < want:
            if visits >= budget:
                return out, True
            visits += 1
            if not self.fresh and reserve > 0 and self.busy >= workers - reserve:
                break
            lst = self.fresh if self.fresh else self.ring
            if not lst:
                break
            tenant = lst[0]
            pol = self.policy(tenant)
            f = self.inflight.get(tenant, 0)
            d = self.deficit.get(tenant, 0)
            if self.samples < SCHEDULER.ewma:
                d = min(d, self.quantum * pol.weight)
            if self.depth(tenant) <= 0:
                lst.pop(0)
                self.active.discard(tenant)
                self.parked.discard(tenant)
                self.streak.pop(tenant, None)
            elif pol.max_inflight > 0 and f >= pol.max_inflight:
                lst.pop(0)
                self.parked.add(tenant)
            elif d <= 0:
                self.deficit[tenant] = d + self.quantum * pol.weight
                self.ring.append(lst.pop(0))
            else:
                lane = self._pick_lane(tenant)
                assert lane is not None
                tag, chars = self.queues[(tenant, lane)].popleft()
                billed = chars if 1 <= chars <= SCHEDULER.max_chars else SCHEDULER.default_chars
                cost = max(1, billed * self.rate)
                self.deficit[tenant] = d - cost
                self.inflight[tenant] = f + 1
                self.busy += 1
                out.append(Pick(tag, tenant, lane, cost, chars))
        return out, False

    def claim(self, want: int, workers: int = 1, reserve: int = 0) -> list[Pick]:
        """What ``Claimer.claim`` does: call the script again while it reports more."""
        out: list[Pick] = []
        for _ in range(64):
            got, more = self._claim_once(want - len(out), workers, reserve)
            out += got
            if not more or len(out) >= want:
                break
        return out

    # -- complete.lua ------------------------------------------------------------------

    def complete(self, pick: Pick, actual: int, now_ms: int) -> None:
        t = pick.tenant
        self.inflight[t] = max(0, self.inflight.get(t, 0) - 1)
        self.busy = max(0, self.busy - 1)
        self.deficit[t] = self.deficit.get(t, 0) + pick.cost - actual
        if 1 <= pick.chars <= SCHEDULER.max_chars:
            self.samples = min(self.samples + 1, SCHEDULER.ewma)
            self.rate = max(1, self.rate + (actual // pick.chars - self.rate) // self.samples)
            if self.samples < SCHEDULER.ewma or now_ms - self.quantum_at >= SCHEDULER.quantum_every_s * 1000:
                self.quantum = max(SCHEDULER.min_quantum, self.rate * SCHEDULER.quantum_chars)
                self.quantum_at = now_ms
        self._unpark(t)

    def _unpark(self, tenant: str) -> None:
        if tenant not in self.parked:
            return
        pol = self.policy(tenant)
        if pol.max_inflight > 0 and self.inflight.get(tenant, 0) >= pol.max_inflight:
            return
        self.parked.discard(tenant)
        if self.depth(tenant) > 0:
            self.ring.append(tenant)
        else:
            self.active.discard(tenant)

    # -- policy.lua --------------------------------------------------------------------

    def set_policy(self, tenant: str, policy: TenantPolicy) -> None:
        self.policies[tenant] = policy
        self._unpark(tenant)
