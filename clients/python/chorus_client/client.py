"""The client: enqueue text, then hold a handle to the request (frames, status, cancel, wait).

::

    from chorus_client import Client

    client = Client.from_url("redis://127.0.0.1:6379/0")
    req = client.enqueue("你好，世界！", tenant="acme", voice="jm_kumo")
    for frame in req.frames():          # in order, exactly once, until the end frame
        play(frame.pcm, frame.sample_rate)

:class:`AsyncClient` is the same for asyncio (``async for frame in req.frames()``,
``await req.wait()``). Both run the one set of sans-I/O operations
(:mod:`chorus_client.enqueue`, :mod:`chorus_client.listen`, :mod:`chorus_client.control`)
with their driver (:mod:`chorus_client.drive`): nothing about the protocol is
written twice. A voice's language and sample rate come from the ``voices`` hash that
workers write, unless ``voices`` is given: a :class:`~chorus_client.enqueue.VoiceTable` (no
Redis read), or a resolver (which chooses the request's one voice itself, as before v1.3).
Otherwise a request without a voice gets, per segment, the default voice of the segment's
language: the voice the workers mark ``"default"`` in the hash (read at most every
``VOICES_TTL_S``), so ``client.enqueue("你好。Hello world.", tenant="acme")`` is spoken by a
Mandarin and an English voice, in one stream at one sample rate.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, Union

import redis
import redis.asyncio as aredis

from chorus_client.constants import Durability
from chorus_client.control import RequestState, cancel, status
from chorus_client.drive import Op, iterate_async, iterate_sync, quiet, run_async, run_sync
from chorus_client.enqueue import (
    EnqueueResult,
    PreparedRequest,
    Voice,
    VoiceCache,
    VoiceTable,
    enqueue,
    lookup_voice,
    prepare,
)
from chorus_client.keys import Keys
from chorus_client.listen import DEFAULT_TIMEOUT_S, StreamState, listen, resume_op
from chorus_client.outage import client_url
from chorus_client.placement import Placement, placed
from chorus_client.protocol import AudioFrame

__all__ = ["AsyncClient", "AsyncRequest", "Client", "Request", "VoiceResolver"]

VoiceResolver = Callable[[str | None, str], Voice]
"""(voice name or None, the text) -> the request's one voice; raises UnknownVoice."""
Voices = Union[VoiceResolver, VoiceTable, VoiceCache]  # noqa: UP007 - runtime alias on Python 3.10
"""Where a client's voices come from: a resolver, a fixed table, or the ``voices`` hash (a cache of it)."""


def _prepare_op(
    keys: Keys, voices: Voices, text: str | list[str], tenant: str, voice: str | None, options: Any
) -> Op[PreparedRequest]:
    spec: Voice | VoiceTable
    if isinstance(voices, VoiceCache):
        # a named voice is looked up alone (as before v1.3); no voice: the defaults of the hash
        spec = (yield from voices.table()) if voice is None else (yield from lookup_voice(keys, voice))
    elif isinstance(voices, VoiceTable):
        spec = voices if voice is None else voices.named(voice)
    else:
        spec = voices(voice, text if isinstance(text, str) else "".join(text))
    return prepare(text, tenant=tenant, keys=keys, voice=spec, **options)


def _submit(
    placement: Placement, voices: Voices, url: str, text: str | list[str], tenant: str,
    voice: str | None, options: Any, replicas: int,
) -> Op[EnqueueResult]:  # fmt: skip
    """Enqueue in the shard the tenant lives in (a given ``request_id`` names its shard itself)."""

    def attempt(keys: Keys) -> Op[EnqueueResult]:
        req = yield from _prepare_op(keys, voices, text, tenant, voice, options)
        return (yield from enqueue(req, keys, url=url, replicas=replicas))

    rid = options.get("request_id")
    if rid is not None:
        return (yield from attempt(placement.keys.for_request(rid)))
    return (yield from placed(placement, tenant, attempt))


def _listen_from(
    keys: Keys, request_id: str, url: str, timeout_s: float, skip_failed: bool, after: str | None
) -> Op[None]:
    """Listen from the start, or resume after position ``after`` (a position this listener handed out)."""
    if after is None:
        state = StreamState(request_id, skip_failed=skip_failed)
    else:
        state = yield from resume_op(keys, request_id, after, skip_failed=skip_failed)
    yield from listen(keys, state, url=url, timeout_s=timeout_s, check_exists=after is None)


def _wait(keys: Keys, request_id: str, url: str, timeout_s: float) -> Op[RequestState]:
    """Read the audio stream to its end (raising what a listener raises), then the final status."""
    yield from quiet(listen(keys, StreamState(request_id), url=url, timeout_s=timeout_s, check_exists=True))
    return (yield from status(keys, request_id))


class Request:
    """A handle to an enqueued request (sync)."""

    def __init__(self, client: Client, result: EnqueueResult) -> None:
        self.client = client
        self.request_id = result.request_id
        self.segments = result.segments
        self.sample_rate = result.sample_rate
        self.voices = result.voices
        """Each segment's voice (empty for a handle to a request enqueued elsewhere)."""

    def frames(self, *, timeout_s: float = DEFAULT_TIMEOUT_S, skip_failed: bool = False) -> Iterator[AudioFrame]:
        return self.client.frames(self.request_id, timeout_s=timeout_s, skip_failed=skip_failed)

    def status(self) -> RequestState:
        return self.client.status(self.request_id)

    def cancel(self) -> bool:
        return self.client.cancel(self.request_id)

    def wait(self, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> RequestState:
        """Block until the request ends; its final state (RequestFailed, RequestCancelled as a listener)."""
        return self.client.wait(self.request_id, timeout_s=timeout_s)


class Client:
    """A chorus client on a sync redis-py client (redis-py's own retries should be off: chorus
    retries where that is safe)."""

    def __init__(
        self,
        redis_client: redis.Redis,
        *,
        keys: Keys | None = None,
        voices: VoiceResolver | VoiceTable | None = None,
        durability: Durability | str = Durability.NONE,
    ) -> None:
        self.redis = redis_client
        self.keys = keys or Keys()
        self.url = client_url(redis_client)
        self.placement = Placement(self.keys, url=self.url)
        """Where tenants live (the deployment's shards; see :mod:`chorus_client.placement`)."""
        self.voices: Voices = voices if voices is not None else VoiceCache(self.keys, url=self.url)
        """Where voices come from: by default the ``voices`` hash (a named voice read at each enqueue,
        the table for requests without one cached ``VOICES_TTL_S``)."""
        self.durability = Durability(durability)
        """``replica``: ``enqueue`` returns once a replica has the request (``WAIT``)."""

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> Client:
        return cls(redis.Redis.from_url(url), **kwargs)

    def enqueue(self, text: str | list[str], *, tenant: str, voice: str | None = None, **options: Any) -> Request:
        """Enqueue ``text`` (or pre-cut segments); options as :func:`chorus_client.enqueue.prepare` takes
        them (``priority``, ``speed``, ``deadline_s``, ``request_id``). Without ``voice`` each segment
        gets the default voice of its language. Raises what ``prepare`` and ``enqueue`` raise:
        UnknownVoice, InvalidRequest, TextError, QueueFull, RequestTooLarge …"""
        op = _submit(self.placement, self.voices, self.url, text, tenant, voice, options, self.durability.replicas)
        return Request(self, run_sync(self.redis, op))

    def frames(
        self, request_id: str, *, timeout_s: float = DEFAULT_TIMEOUT_S, skip_failed: bool = False
    ) -> Iterator[AudioFrame]:
        """The request's audio frames in order, exactly once, until its end frame. ``skip_failed``: hear
        the segments that did not fail, then RequestFailed (see :class:`~chorus_client.listen.StreamState`)."""
        for frame, _ in self.positions(request_id, timeout_s=timeout_s, skip_failed=skip_failed):
            yield frame

    def positions(
        self,
        request_id: str,
        *,
        after: str | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        skip_failed: bool = False,
    ) -> Iterator[tuple[AudioFrame, str]]:
        """As :meth:`frames`, each frame with its position; ``after`` a position handed out before
        resumes there with no frame twice or missing (a reconnect)."""
        op = _listen_from(self.keys, request_id, self.url, timeout_s, skip_failed, after)
        yield from iterate_sync(self.redis, op)

    def status(self, request_id: str) -> RequestState:
        return run_sync(self.redis, status(self.keys, request_id))

    def cancel(self, request_id: str) -> bool:
        return run_sync(self.redis, cancel(self.keys, request_id))

    def wait(self, request_id: str, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> RequestState:
        return run_sync(self.redis, _wait(self.keys, request_id, self.url, timeout_s))

    def request(self, request_id: str) -> Request:
        """A handle to a request enqueued elsewhere (its segment count and rate from its status)."""
        state = self.status(request_id)
        return Request(self, EnqueueResult(request_id, state.segments, 0))


class AsyncRequest:
    """A handle to an enqueued request (asyncio)."""

    def __init__(self, client: AsyncClient, result: EnqueueResult) -> None:
        self.client = client
        self.request_id = result.request_id
        self.segments = result.segments
        self.sample_rate = result.sample_rate
        self.voices = result.voices
        """Each segment's voice (empty for a handle to a request enqueued elsewhere)."""

    def frames(self, *, timeout_s: float = DEFAULT_TIMEOUT_S, skip_failed: bool = False) -> AsyncIterator[AudioFrame]:
        return self.client.frames(self.request_id, timeout_s=timeout_s, skip_failed=skip_failed)

    async def status(self) -> RequestState:
        return await self.client.status(self.request_id)

    async def cancel(self) -> bool:
        return await self.client.cancel(self.request_id)

    async def wait(self, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> RequestState:
        return await self.client.wait(self.request_id, timeout_s=timeout_s)


class AsyncClient:
    """:class:`Client` for asyncio, on a ``redis.asyncio`` client."""

    def __init__(
        self,
        redis_client: aredis.Redis,
        *,
        keys: Keys | None = None,
        voices: VoiceResolver | VoiceTable | None = None,
        durability: Durability | str = Durability.NONE,
    ) -> None:
        self.redis = redis_client
        self.keys = keys or Keys()
        self.url = client_url(redis_client)
        self.placement = Placement(self.keys, url=self.url)
        """Where tenants live (the deployment's shards; see :mod:`chorus_client.placement`)."""
        self.voices: Voices = voices if voices is not None else VoiceCache(self.keys, url=self.url)
        self.durability = Durability(durability)

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> AsyncClient:
        return cls(aredis.Redis.from_url(url), **kwargs)

    async def enqueue(
        self, text: str | list[str], *, tenant: str, voice: str | None = None, **options: Any
    ) -> AsyncRequest:
        op = _submit(self.placement, self.voices, self.url, text, tenant, voice, options, self.durability.replicas)
        return AsyncRequest(self, await run_async(self.redis, op))

    async def frames(
        self, request_id: str, *, timeout_s: float = DEFAULT_TIMEOUT_S, skip_failed: bool = False
    ) -> AsyncIterator[AudioFrame]:
        async for frame, _ in self.positions(request_id, timeout_s=timeout_s, skip_failed=skip_failed):
            yield frame

    async def positions(
        self,
        request_id: str,
        *,
        after: str | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        skip_failed: bool = False,
    ) -> AsyncIterator[tuple[AudioFrame, str]]:
        op = _listen_from(self.keys, request_id, self.url, timeout_s, skip_failed, after)
        async for item in iterate_async(self.redis, op):
            yield item

    async def status(self, request_id: str) -> RequestState:
        return await run_async(self.redis, status(self.keys, request_id))

    async def cancel(self, request_id: str) -> bool:
        return await run_async(self.redis, cancel(self.keys, request_id))

    async def wait(self, request_id: str, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> RequestState:
        return await run_async(self.redis, _wait(self.keys, request_id, self.url, timeout_s))
