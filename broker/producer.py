"""Producer API, sync and asyncio: text in, request id out, in one atomic script call.

Both clients share :func:`prepare`, which validates and segments the text and
builds the script's arguments; they differ only in how they talk to Redis.
"""

from __future__ import annotations

import asyncio
import math
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import redis
import redis.asyncio as aredis

from broker.policy import DEFAULT_FIELD, effective_policy
from broker.scripts import ENQUEUE, script_source
from broker.stats import Stats, tenant_rate, window
from chorus_client.constants import LANES, PENDING_AUDIO_TTL_S, REQUEST_TTL_S, Lane
from chorus_client.keys import GROUP, Keys, new_request_id, validate_tenant
from chorus_client.protocol import HeaderFrame, SegmentJob, encode_frame, encode_segment
from chorus_client.segment import MAX_CHARS, presegmented, segment_text, weight
from models.catalog import Catalog, load_catalog
from shared.connection import client_url, translate
from shared.errors import (
    ChorusError,
    InvalidRequest,
    LaneNotAllowed,
    QueueFull,
    RequestTooLarge,
    TextError,
    UnknownTenant,
)

__all__ = [
    "PRIORITIES",
    "AsyncProducer",
    "EnqueueResult",
    "PreparedRequest",
    "Producer",
    "prepare",
]

PRIORITIES = (Lane.INTERACTIVE.value, Lane.BATCH.value)
"""What a request's ``priority`` may be: the lanes a producer chooses (``rt`` follows from ``interactive``)."""
MIN_SPEED, MAX_SPEED = 0.5, 2.0
MAX_DEADLINE_S = float(REQUEST_TTL_S)
"""Longest deadline a request may set: no longer than its metadata lives."""
ENQUEUE_TRIES = 3
"""Tries of the enqueue script after a lost connection or a timeout: safe, since the script is
idempotent by request id (a retry of a call that ran answers success and writes nothing)."""
RETRY_STEP_S = 0.05
"""Pause before the n-th retry: n x this."""
T = TypeVar("T")
INLINE_PREPARE_CHARS = 2000
"""Texts longer than this are segmented off the event loop by :class:`AsyncProducer`."""


@dataclass(frozen=True)
class EnqueueResult:
    request_id: str
    segments: int
    sample_rate: int


@dataclass(frozen=True)
class PreparedRequest:
    request_id: str
    keys: list[str]
    args: list[Any]
    audio_key: str
    header: bytes
    segments: int
    sample_rate: int
    tenant: str


_NOT_ALNUM = re.compile(r"[\W_]")
_WIDE_ALNUM = re.compile(r"[^\W_\x00-\u2e7f]")
"""Letters and digits from U+2E80 on (CJK and beyond): they weigh 1, the others 0.4."""


def min_segments(text: str | list[str]) -> int:
    """A lower bound of the segments :func:`prepare` makes of ``text`` (0 when it cannot tell cheaply).

    A letter or digit from U+2E80 on (CJK) weighs 1, any other 0.4, and a segment holds at most
    ``MAX_CHARS`` (100) weighted characters; markup (``<break …/>``) has letters that are not spoken, so text with
    ``<`` is not judged. A C-speed regex scan: a millisecond for 64 KB.
    """
    if not isinstance(text, str):
        return len(text)
    if "<" in text:
        return 0
    letters = len(text) - len(_NOT_ALNUM.findall(text))
    wide = len(_WIDE_ALNUM.findall(text)) if letters else 0
    return math.ceil(((letters - wide) * 2 + wide * 5) / 5 / MAX_CHARS)


def _lane_number(priority: str, seq: int) -> int:
    """The lane of segment ``seq`` as ``enqueue.lua`` takes it: its 1-based position in :data:`LANES`."""
    if priority == Lane.BATCH:
        return LANES.index(Lane.BATCH) + 1
    # the first segment of an interactive request is real-time: it decides first audio
    return LANES.index(Lane.RT if seq == 0 else Lane.INTERACTIVE) + 1


def prepare(
    text: str | list[str] | tuple[str, ...],
    *,
    tenant: str,
    keys: Keys,
    catalog: Catalog,
    voice: str | None = None,
    priority: str = Lane.INTERACTIVE.value,
    speed: float = 1.0,
    deadline_s: float | None = None,
    request_id: str | None = None,
) -> PreparedRequest:
    """Validate and segment a request; nothing touches Redis here.

    ``text`` is a string that chorus segments, or a list of strings that the
    caller has already cut into segments (one model call each, in order).
    ``priority`` is one of :data:`PRIORITIES`; ``speed`` a rate factor within
    [MIN_SPEED, MAX_SPEED]; ``deadline_s`` seconds from the enqueue (by the Redis
    server's clock) after which unserved segments are dropped.

    Raises :class:`~shared.errors.UnknownTenant` for a tenant name outside the grammar,
    :class:`~shared.errors.UnknownVoice` for a voice the catalog lacks,
    :class:`~shared.errors.InvalidRequest` for a bad option, and
    :class:`~shared.errors.TextError` for text that cannot be spoken.
    """
    validate_tenant(tenant)
    spec = catalog.voice(voice)
    model = catalog.models[spec.model]
    if priority not in PRIORITIES:
        raise InvalidRequest("priority", f"must be one of {PRIORITIES}, got {priority!r}")
    if not MIN_SPEED <= speed <= MAX_SPEED:
        raise InvalidRequest("speed", f"must be within [{MIN_SPEED}, {MAX_SPEED}], got {speed}")
    if deadline_s is not None and not (isinstance(deadline_s, (int, float)) and 0 < deadline_s <= MAX_DEADLINE_S):
        raise InvalidRequest("deadline_s", f"must be within (0, {MAX_DEADLINE_S:.0f}] seconds, got {deadline_s!r}")
    if isinstance(text, (bytes, bytearray)):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise TextError(f"text is not valid UTF-8 (byte {exc.start}): {exc.reason}") from None
    segments = presegmented(list(text)) if isinstance(text, (list, tuple)) else segment_text(text)
    rid = request_id or new_request_id(keys.shard)
    now_ms = int(time.time() * 1000)
    # relative: the script adds it to the Redis server's clock, so a producer's clock does not matter
    within_ms = max(1, int(deadline_s * 1000)) if deadline_s else 0
    args: list[Any] = [tenant, rid, spec.name, now_ms, within_ms, REQUEST_TTL_S, GROUP, len(segments)]
    for seq, seg in enumerate(segments):
        job = SegmentJob(rid, seq, seg.text, spec.name, spec.lang, speed, seg.pause_ms, now_ms)
        args += [_lane_number(priority, seq), max(1, round(weight(seg.text))), encode_segment(job)]
    key_list = keys.enqueue_keys(tenant, keys.request(rid))
    header = encode_frame(HeaderFrame(rid, len(segments), spec.name, model.sample_rate, tenant))
    return PreparedRequest(rid, key_list, args, keys.audio(rid), header, len(segments), model.sample_rate, tenant)


@dataclass(frozen=True)
class Refusal:
    """A policy refusal from ``enqueue.lua``, parsed; ``error()`` builds the exception."""

    kind: str
    words: list[str]

    def error(self, tenant: str, requested: int, rate: float | None) -> ChorusError:
        if self.kind == "NOTENANT":
            reason = "not configured, and the default policy rejects unknown tenants (add it with `chorus tenants set`)"
            return UnknownTenant(tenant, reason)
        if self.kind == "TOOLARGE":
            return RequestTooLarge(tenant, int(self.words[0]), requested)
        if self.kind == "LANE":
            return LaneNotAllowed(tenant, self.words[0], self.words[1].split(",") if len(self.words) > 1 else [])
        limit, queued = int(self.words[0]), int(self.words[1])
        excess = queued + requested - limit
        retry = None if not rate else round(max(0.1, excess / rate), 1)
        return QueueFull(tenant, limit, queued, requested, retry)


def parse_refusal(exc: redis.RedisError) -> Refusal | None:
    """The policy refusal ``enqueue.lua`` answered with (NOTENANT, LANE, QUEUEFULL, TOOLARGE), or None
    for any other error."""
    if not isinstance(exc, redis.ResponseError):
        return None
    words = str(exc).split()
    # Redis may prefix a script's error with "ERR" or the script location
    for i, word in enumerate(words[:3]):
        if word in ("NOTENANT", "LANE", "QUEUEFULL", "TOOLARGE"):
            return Refusal(word, words[i + 1 :])
    return None


def _retryable(exc: redis.RedisError) -> bool:
    """Whether the call may not have reached the server's answer: the script may or may not have run."""
    return isinstance(exc, (redis.ConnectionError, redis.TimeoutError)) and not isinstance(
        exc, redis.AuthenticationError
    )


def _with_retries(call: Callable[[], T]) -> T:
    """``call()``, tried again (up to ENQUEUE_TRIES) after a lost connection or a timeout; anything
    else, and the last failure, propagates. Only for calls that are safe to repeat."""
    for attempt in range(1, ENQUEUE_TRIES):
        try:
            return call()
        except redis.RedisError as exc:
            if not _retryable(exc):
                raise
            time.sleep(RETRY_STEP_S * attempt)
    return call()


async def _awith_retries(call: Callable[[], Awaitable[T]]) -> T:
    """The asyncio twin of :func:`_with_retries`."""
    for attempt in range(1, ENQUEUE_TRIES):
        try:
            return await call()
        except redis.RedisError as exc:
            if not _retryable(exc):
                raise
            await asyncio.sleep(RETRY_STEP_S * attempt)
    return await call()


async def _async_service_rate(client: aredis.Redis, keys: Keys, tenant: str) -> float:
    names, span = window(keys)
    pipe = client.pipeline(transaction=False)
    for key in names:
        pipe.hgetall(key)
    return tenant_rate(await pipe.execute(), tenant, span)


class Producer:
    """Synchronous producer. ``enqueue`` returns as soon as Redis has the request."""

    def __init__(self, client: redis.Redis, *, keys: Keys | None = None, catalog: Catalog | None = None) -> None:
        self._r = client
        self.keys = keys or Keys()
        self.catalog = catalog or load_catalog()
        self._script = client.register_script(script_source(ENQUEUE))

    def enqueue(self, text: str | list[str], *, tenant: str, **options: Any) -> EnqueueResult:
        """Enqueue a request (``options`` as :func:`prepare` takes them) and write its audio stream's header.

        Raises what :func:`prepare` raises; :class:`~shared.errors.QueueFull` (with a retry-after
        from the tenant's service rate), :class:`~shared.errors.RequestTooLarge`,
        :class:`~shared.errors.LaneNotAllowed` or :class:`~shared.errors.UnknownTenant` when the
        tenant's policy refuses it (nothing is written then); a Redis failure as a translated
        :class:`~shared.errors.ChorusError` (lost connections and timeouts are retried first).
        """
        req = prepare(text, tenant=tenant, keys=self.keys, catalog=self.catalog, **options)
        try:
            try:
                _with_retries(lambda: self._script(keys=req.keys, args=req.args))
            except redis.ResponseError as exc:
                refusal = parse_refusal(exc)
                if refusal is None:
                    raise
                rate = Stats(self._r, self.keys).service_rate(tenant) if refusal.kind == "QUEUEFULL" else None
                raise refusal.error(tenant, req.segments, rate) from None
            _with_retries(lambda: self._write_header(req))
        except redis.RedisError as exc:
            raise translate(exc, client_url(self._r)) from exc
        return EnqueueResult(req.request_id, req.segments, req.sample_rate)

    def _write_header(self, req: PreparedRequest) -> None:
        pipe = self._r.pipeline(transaction=True)
        pipe.xadd(req.audio_key, {"f": req.header})  # a retry may add a second header: harmless
        pipe.expire(req.audio_key, PENDING_AUDIO_TTL_S)
        pipe.execute()


class AsyncProducer:
    """asyncio producer with the same contract as :class:`Producer`."""

    def __init__(self, client: aredis.Redis, *, keys: Keys | None = None, catalog: Catalog | None = None) -> None:
        self._r = client
        self.keys = keys or Keys()
        self.catalog = catalog or load_catalog()
        self._script = client.register_script(script_source(ENQUEUE))
        self._long: dict[str, list[Any]] = {}
        """Per tenant: [lock, callers using it]: long texts are segmented one at a time per tenant."""

    async def _room_for(self, tenant: str, text: str | list[str]) -> None:
        """QueueFull (or RequestTooLarge) at once when the text cannot fit the tenant's queue, judged by a
        lower bound of its segment count, before paying for segmentation (the script checks again, exactly)."""
        k = self.keys
        pipe = self._r.pipeline(transaction=False)
        pipe.hget(k.depth(), tenant)
        pipe.hmget(k.tenants(), [tenant, DEFAULT_FIELD])
        try:
            queued, (own, default) = await pipe.execute()
        except redis.RedisError as exc:
            raise translate(exc, client_url(self._r)) from exc
        limit = effective_policy(own, default)[0].max_queued
        depth, least = int(queued or 0), min_segments(text)
        if limit > 0 and least > limit:
            raise RequestTooLarge(tenant, limit, least)
        if limit > 0 and depth + least > limit:
            rate = await _async_service_rate(self._r, self.keys, tenant)
            raise Refusal("QUEUEFULL", [str(limit), str(depth)]).error(tenant, max(1, least), rate)

    async def enqueue(self, text: str | list[str], *, tenant: str, **options: Any) -> EnqueueResult:
        """As :meth:`Producer.enqueue`. A long text is segmented in a worker thread, never on the event
        loop, one at a time per tenant, and only once a look at the tenant's queue says it may fit: a
        tenant flooding long texts into a full queue costs a hash read each, not a segmentation."""
        size = len(text) if isinstance(text, str) else sum(len(t) for t in text if isinstance(t, str))
        if size > INLINE_PREPARE_CHARS:
            validate_tenant(tenant)
            slot = self._long.setdefault(tenant, [asyncio.Lock(), 0])
            slot[1] += 1
            try:
                async with slot[0]:
                    await self._room_for(tenant, text)
                    req = await asyncio.to_thread(
                        prepare, text, tenant=tenant, keys=self.keys, catalog=self.catalog, **options
                    )
            finally:
                slot[1] -= 1
                if not slot[1]:
                    del self._long[tenant]
        else:
            req = prepare(text, tenant=tenant, keys=self.keys, catalog=self.catalog, **options)
        try:
            try:
                await _awith_retries(lambda: self._script(keys=req.keys, args=req.args))
            except redis.ResponseError as exc:
                refusal = parse_refusal(exc)
                if refusal is None:
                    raise
                queue_full = refusal.kind == "QUEUEFULL"
                rate = await _async_service_rate(self._r, self.keys, tenant) if queue_full else None
                raise refusal.error(tenant, req.segments, rate) from None
            await _awith_retries(lambda: self._write_header(req))
        except redis.RedisError as exc:
            raise translate(exc, client_url(self._r)) from exc
        return EnqueueResult(req.request_id, req.segments, req.sample_rate)

    async def _write_header(self, req: PreparedRequest) -> None:
        pipe = self._r.pipeline(transaction=True)
        pipe.xadd(req.audio_key, {"f": req.header})  # a retry may add a second header: harmless
        pipe.expire(req.audio_key, PENDING_AUDIO_TTL_S)
        await pipe.execute()
