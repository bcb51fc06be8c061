"""The server's producers, sync and asyncio: the client's enqueue, with voices from the model catalog.

Both run :func:`chorus_client.enqueue.enqueue` with their driver; what the server
adds is the catalog (a request without a voice gets, per segment, the catalog's
default voice of the segment's language, and the server knows every voice's language
and sample rate without a Redis read) and, in
:class:`AsyncProducer`, a guard for the gateway: a long text is segmented off the
event loop, one at a time per tenant, and only once a look at the tenant's queue
says it may fit.
"""

from __future__ import annotations

import asyncio
from typing import Any

import redis
import redis.asyncio as aredis

from broker.policy import DEFAULT_FIELD, effective_policy
from chorus_client.constants import MAX_SHARD_HOPS, Durability
from chorus_client.drive import Op, run_async, run_sync
from chorus_client.enqueue import (
    MAX_SPEED,
    MIN_SPEED,
    PRIORITIES,
    EnqueueResult,
    PreparedRequest,
    Voice,
    VoiceTable,
    enqueue,
    min_segments,
    parse_refusal,
    service_rate,
)
from chorus_client.enqueue import prepare as prepare_with_voice
from chorus_client.errors import RequestTooLarge, TenantMoved
from chorus_client.keys import Keys, validate_tenant
from chorus_client.outage import client_url, translate
from chorus_client.placement import Placement, placed
from chorus_client.rates import retry_after
from models.catalog import Catalog, load_catalog
from shared.config import durability_from_env
from shared.errors import QueueFull

__all__ = [
    "MAX_SPEED",
    "MIN_SPEED",
    "PRIORITIES",
    "AsyncProducer",
    "EnqueueResult",
    "PreparedRequest",
    "Producer",
    "catalog_voice",
    "catalog_voices",
    "min_segments",
    "parse_refusal",
    "prepare",
]

INLINE_PREPARE_CHARS = 2000
"""Texts longer than this are segmented off the event loop by :class:`AsyncProducer`."""


def catalog_voice(catalog: Catalog, name: str | None) -> Voice:
    """The catalog's voice (its default Mandarin voice for None); UnknownVoice otherwise."""
    spec = catalog.voice(name)
    return Voice(spec.name, spec.lang, catalog.models[spec.model].sample_rate, spec.model)


def catalog_voices(catalog: Catalog) -> VoiceTable:
    """Every voice of the catalog, with its default voice per language: what a request without a
    voice chooses from, segment by segment."""
    voices = {name: catalog_voice(catalog, name) for name in catalog.voices}
    return VoiceTable(voices, dict(catalog.default_voices))


def prepare(
    text: str | list[str] | tuple[str, ...] | bytes,
    *,
    tenant: str,
    keys: Keys,
    catalog: Catalog,
    voice: str | None = None,
    **options: Any,
) -> PreparedRequest:
    """:func:`chorus_client.enqueue.prepare` with the voice looked up in ``catalog``; without one, each
    segment gets the catalog's default voice of its language (:func:`catalog_voices`)."""
    validate_tenant(tenant)
    spec = catalog_voices(catalog) if voice is None else catalog_voice(catalog, voice)
    return prepare_with_voice(text, tenant=tenant, keys=keys, voice=spec, **options)


class Producer:
    """Synchronous producer. ``enqueue`` returns as soon as Redis has the request."""

    def __init__(
        self,
        client: redis.Redis,
        *,
        keys: Keys | None = None,
        catalog: Catalog | None = None,
        durability: Durability | None = None,
    ) -> None:
        self._r = client
        self.keys = keys or Keys()
        self._url = client_url(client)
        self.placement = Placement(self.keys, url=self._url)
        """Where tenants live: the request goes to the tenant's shard (:mod:`chorus_client.placement`)."""
        self.catalog = catalog or load_catalog()
        self.durability = durability or durability_from_env()
        """``replica``: an enqueue returns once a replica has the request (``$CHORUS_DURABILITY``)."""

    def enqueue(self, text: str | list[str], *, tenant: str, **options: Any) -> EnqueueResult:
        """Enqueue a request (``options`` as :func:`prepare` takes them) and write its audio stream's header.

        Raises what :func:`prepare` raises; :class:`~shared.errors.QueueFull` (with a retry-after
        from the tenant's service rate), :class:`~shared.errors.RequestTooLarge`,
        :class:`~shared.errors.LaneNotAllowed` or :class:`~shared.errors.UnknownTenant` when the
        tenant's policy refuses it (nothing is written then); a Redis failure as a translated
        :class:`~shared.errors.ChorusError` (lost connections and timeouts are retried first).
        """

        def attempt(keys: Keys) -> Op[EnqueueResult]:
            req = prepare(text, tenant=tenant, keys=keys, catalog=self.catalog, **options)
            return (yield from enqueue(req, keys, url=self._url, replicas=self.durability.replicas))

        rid = options.get("request_id")
        if rid is not None:  # it names its shard
            return run_sync(self._r, attempt(self.keys.for_request(rid)))
        return run_sync(self._r, placed(self.placement, tenant, attempt))


class AsyncProducer:
    """asyncio producer with the same contract as :class:`Producer`."""

    def __init__(
        self,
        client: aredis.Redis,
        *,
        keys: Keys | None = None,
        catalog: Catalog | None = None,
        durability: Durability | None = None,
    ) -> None:
        self._r = client
        self.keys = keys or Keys()
        self._url = client_url(client)
        self.placement = Placement(self.keys, url=self._url)
        self.catalog = catalog or load_catalog()
        self.durability = durability or durability_from_env()
        self._long: dict[str, list[Any]] = {}
        """Per tenant: [lock, callers using it]: long texts are segmented one at a time per tenant."""

    async def _room_for(self, k: Keys, tenant: str, text: str | list[str]) -> None:
        """QueueFull (or RequestTooLarge) at once when the text cannot fit the tenant's queue (in shard
        ``k``), judged by a lower bound of its segment count, before paying for segmentation (the script
        checks again, exactly)."""
        pipe = self._r.pipeline(transaction=False)
        pipe.hget(k.depth(), tenant)
        pipe.hmget(k.tenants(), [tenant, DEFAULT_FIELD])
        try:
            queued, (own, default) = await pipe.execute()
        except redis.RedisError as exc:
            raise translate(exc, self._url) from exc
        limit = effective_policy(own, default)[0].max_queued
        depth, least = int(queued or 0), min_segments(text)
        if limit > 0 and least > limit:
            raise RequestTooLarge(tenant, limit, least)
        if limit > 0 and depth + least > limit:
            rate = await run_async(self._r, service_rate(k, tenant))
            requested = max(1, least)
            raise QueueFull(tenant, limit, depth, requested, retry_after(limit, depth, requested, rate))

    async def enqueue(self, text: str | list[str], *, tenant: str, **options: Any) -> EnqueueResult:
        """As :meth:`Producer.enqueue`. A long text is segmented in a worker thread, never on the event
        loop, one at a time per tenant, and only once a look at the tenant's queue says it may fit: a
        tenant flooding long texts into a full queue costs a hash read each, not a segmentation."""
        rid = options.get("request_id")
        if rid is not None:  # it names its shard
            return await self._enqueue_in(self.keys.for_request(rid), text, tenant, options)
        moved: TenantMoved | None = None
        for _ in range(MAX_SHARD_HOPS + 1):
            keys = await run_async(self._r, self.placement.keys_for(tenant))
            try:
                return await self._enqueue_in(keys, text, tenant, options)
            except TenantMoved as exc:  # a forward entry: the tenant lives in exc.shard
                moved = exc
                self.placement.learn(tenant, exc.shard)
        assert moved is not None
        raise moved

    async def _enqueue_in(
        self, keys: Keys, text: str | list[str], tenant: str, options: dict[str, Any]
    ) -> EnqueueResult:
        size = len(text) if isinstance(text, str) else sum(len(t) for t in text if isinstance(t, str))
        if size > INLINE_PREPARE_CHARS:
            validate_tenant(tenant)
            slot = self._long.setdefault(tenant, [asyncio.Lock(), 0])
            slot[1] += 1
            try:
                async with slot[0]:
                    await self._room_for(keys, tenant, text)
                    req = await asyncio.to_thread(
                        prepare, text, tenant=tenant, keys=keys, catalog=self.catalog, **options
                    )
            finally:
                slot[1] -= 1
                if not slot[1]:
                    del self._long[tenant]
        else:
            req = prepare(text, tenant=tenant, keys=keys, catalog=self.catalog, **options)
        return await run_async(self._r, enqueue(req, keys, url=self._url, replicas=self.durability.replicas))
