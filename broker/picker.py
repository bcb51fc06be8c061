"""Which shard a worker serving several shards claims from next: fair queueing across shards.

Inside a shard, ``lua/claim.lua`` shares worker time between tenants by weight
(deficit round robin). Across shards each worker keeps a virtual time per shard
and claims from the shard with work whose virtual time is least; serving an entry
of ``cost`` microseconds advances that shard's virtual time by ``cost / weight``,
where ``weight`` is the shard's weight as its last claim reported it: the sum of
the weights of the tenants it can serve now. So a shard gets worker time in
proportion to its tenants' weights, and a tenant's share of all worker time is
its weight over the weights of every tenant with work, wherever they live: a
tenant alone on a shard is neither favoured nor starved against tenants crowded
on another. Each worker does this on its own; shares that hold for each worker
hold for their sum.

A shard that comes back from idle starts at the least virtual time of the busy
shards (it earns no credit for its idle time, and waits no round). A shard a claim
found empty is left alone until a wake-up names it (:mod:`broker.wake`), until no
shard is believed busy (the worker then looks at every shard once before it
sleeps), or until a probe: while the worker is busy it tries an idle shard again every ``probe_s``,
so work that arrived while every worker was busy (no one was waiting to be
woken) is found within about that time: one idle shard per claim at most (the one probed
longest ago), none right after a wake-up. The worker sets ``probe_s`` from the
number of live workers, so the whole deployment probes each idle shard about
every 50 ms however many workers there are.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

__all__ = ["PROBE_EVERY_S", "ShardPicker", "probe_interval"]

PROBE_EVERY_S = 0.05
"""How often the deployment as a whole tries an idle shard again (each worker: this x live workers)."""
MAX_PROBE_S = 1.0


def probe_interval(live_workers: int) -> float:
    """Seconds between one worker's probes of an idle shard: ``PROBE_EVERY_S`` x live workers,
    within [``PROBE_EVERY_S``, 1 s]."""
    return min(MAX_PROBE_S, PROBE_EVERY_S * max(1, live_workers))


@dataclass
class _Shard:
    vtime: float = 0.0
    weight: int = 1
    busy: bool = True
    """Whether the shard is believed to have work (a claim found some, or a wake-up named it)."""
    probed: float = float("-inf")


class ShardPicker:
    """One worker's fair order over its shards (not thread-safe: the serving loop owns it)."""

    def __init__(self, shards: Sequence[str], *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.probe_s = PROBE_EVERY_S
        self._woken = False
        self._shards: dict[str, _Shard] = {}
        self.set_shards(shards)

    @property
    def shards(self) -> list[str]:
        return list(self._shards)

    def set_shards(self, shards: Sequence[str]) -> None:
        """Serve exactly ``shards`` (the deployment grew); new ones start busy, at the least virtual time."""
        floor = self._floor()
        self._shards = {name: self._shards.get(name) or _Shard(vtime=floor) for name in shards}

    def _floor(self) -> float:
        busy = [s.vtime for s in self._shards.values() if s.busy]
        return min(busy) if busy else max((s.vtime for s in self._shards.values()), default=0.0)

    def order(self) -> list[str]:
        """The shards to try, in order: at most one idle shard due for a probe first (a probe that
        finds work is served at once, as a wake-up would be; none right after a wake-up, which
        named where the work is), then the busy ones by least virtual time. When no shard is
        believed busy, every shard: the worker looks everywhere once before it sleeps."""
        now = self._clock()
        busy = sorted((s.vtime, n) for n, s in self._shards.items() if s.busy)
        if not busy:
            for s in self._shards.values():
                s.probed = now
            return list(self._shards)
        due: list[str] = []
        if not self._woken:
            idle = [(s.probed, n) for n, s in self._shards.items() if not s.busy and now - s.probed >= self.probe_s]
            if idle:
                due = [min(idle)[1]]
                self._shards[due[0]].probed = now
        self._woken = False
        return due + [n for _, n in busy]

    def found(self, shard: str, weight: int) -> None:
        """A claim on ``shard`` returned work; ``weight`` is the shard's weight it reported."""
        s = self._shards.get(shard)
        if s is None:
            return
        if not s.busy:
            s.vtime = max(s.vtime, self._floor())
            s.busy = True
        s.weight = max(1, weight)

    def served(self, shard: str, cost_us: float) -> None:
        """Charge ``cost_us`` microseconds of worker time to ``shard``."""
        s = self._shards.get(shard)
        if s is not None:
            s.vtime += max(0.0, cost_us) / s.weight

    def empty(self, shard: str) -> None:
        """A claim on ``shard`` found nothing to claim."""
        s = self._shards.get(shard)
        if s is not None and s.busy:
            s.busy = False
            s.probed = self._clock()

    def woken(self, shards: Iterable[str] | None) -> None:
        """A wake-up named ``shards`` (None: a wait timed out, so try them all)."""
        self._woken = shards is not None
        floor = self._floor()
        for name in self._shards if shards is None else shards:
            s = self._shards.get(name)
            if s is not None and not s.busy:
                s.vtime = max(s.vtime, floor)
                s.busy = True
