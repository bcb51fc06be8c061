"""Where a tenant lives: the shard a producer sends its enqueue to.

A deployment has ``N`` shards ``s0 … sN-1`` (the string ``<prefix>:shards``; 1 when
absent). A tenant lives in its home shard, :func:`~chorus_client.keys.home_shard`
(FNV-1a of its name, mod ``N``), unless the tenants hash there holds a *forward*:
the tenant's policy with a ``shard`` field naming another shard (an operator placed
the tenant there, or moved it, or the deployment grew and pinned it where it was).
The enqueue script answers ``WRONGSHARD <shard>`` to an enqueue sent to a shard
that forwards the tenant, and writes nothing; the producer remembers the answer
for ``PLACEMENT_TTL_S`` and enqueues there (:func:`placed`).

So a producer reads one small key every ``SHARD_COUNT_TTL_S`` and nothing else per
enqueue, and a placed tenant costs one refused script call per producer per
``PLACEMENT_TTL_S``. A stale count or a stale memory is safe: it sends the enqueue
to a shard whose forward names the right one. The same rules, with test vectors,
are in docs/PROTOCOL.md for clients in other languages.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import TypeVar

import redis

from chorus_client.constants import MAX_SHARD_HOPS, MAX_SHARDS, PLACEMENT_TTL_S, SHARD_COUNT_TTL_S
from chorus_client.drive import Command, Op
from chorus_client.errors import ProtocolError, TenantMoved
from chorus_client.keys import Keys, home_shard, validate_shard
from chorus_client.outage import translate

__all__ = ["MAX_REMEMBERED", "Placement", "parse_shard_count", "placed"]

T = TypeVar("T")

MAX_REMEMBERED = 10_000
"""Tenants a :class:`Placement` remembers outside their home shard (least recently used go first)."""


def parse_shard_count(raw: bytes | str | None) -> int:
    """The shard count from the raw ``<prefix>:shards`` value: 1 when absent; ProtocolError when
    it is not an integer within 1..MAX_SHARDS (a producer must not guess where tenants live)."""
    if raw is None:
        return 1
    text = raw.decode("ascii", "replace") if isinstance(raw, bytes) else str(raw)
    if not text.isdigit() or not 1 <= int(text) <= MAX_SHARDS:
        raise ProtocolError("shards", f"shard count must be an integer within 1..{MAX_SHARDS}, got {text[:20]!r}")
    return int(text)


class Placement:
    """A producer's view of where tenants live (not thread-safe; one per producer or client).

    ``count`` fixes the shard count (no Redis read); by default it is read from
    ``keys.shards()`` and trusted for ``SHARD_COUNT_TTL_S``. ``url`` names the server in errors.
    """

    def __init__(
        self,
        keys: Keys,
        *,
        count: int | None = None,
        url: str = "",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.keys = keys
        self.url = url
        self._clock = clock
        self._fixed = count is not None
        self._count = count or 1
        self._count_at = float("-inf")
        self._moved: OrderedDict[str, tuple[str, float]] = OrderedDict()

    def count(self) -> Op[int]:
        """The deployment's shard count (read when the cached one is older than ``SHARD_COUNT_TTL_S``)."""
        now = self._clock()
        if self._fixed or now - self._count_at < SHARD_COUNT_TTL_S:
            return self._count
        try:
            raw = yield Command(("GET", self.keys.shards()))
        except redis.RedisError as exc:
            raise translate(exc, self.url) from exc
        self._count, self._count_at = parse_shard_count(raw), now
        return self._count

    def shard_for(self, tenant: str) -> Op[str]:
        """The shard to send the tenant's enqueue to: a remembered forward, else its home shard."""
        seen = self._moved.get(tenant)
        if seen is not None:
            if self._clock() - seen[1] < PLACEMENT_TTL_S:
                self._moved.move_to_end(tenant)
                return seen[0]
            del self._moved[tenant]
        return home_shard(tenant, (yield from self.count()))

    def keys_for(self, tenant: str) -> Op[Keys]:
        return self.keys.of_shard((yield from self.shard_for(tenant)))

    def learn(self, tenant: str, shard: str) -> None:
        """Remember a ``WRONGSHARD`` answer: the tenant lives in ``shard``."""
        self._moved[tenant] = (validate_shard(shard), self._clock())
        self._moved.move_to_end(tenant)
        while len(self._moved) > MAX_REMEMBERED:
            self._moved.popitem(last=False)


def placed(placement: Placement, tenant: str, attempt: Callable[[Keys], Op[T]]) -> Op[T]:
    """Run ``attempt`` with the keys of the shard the tenant lives in, following ``WRONGSHARD``
    answers (:class:`~chorus_client.errors.TenantMoved`) up to ``MAX_SHARD_HOPS`` times; raises the
    last one when the forwards do not end."""
    moved: TenantMoved | None = None
    for _ in range(MAX_SHARD_HOPS + 1):
        keys = yield from placement.keys_for(tenant)
        try:
            return (yield from attempt(keys))
        except TenantMoved as exc:
            moved = exc
            placement.learn(tenant, exc.shard)
    assert moved is not None
    raise moved
