"""The gateway's state and its work, apart from HTTP routing: what every handler shares.

:class:`GatewayConfig` is what an operator sets; :class:`Gateway` holds what it
builds from it, once per app: the two bounded Redis pools, the catalog, the
producer and subscriber, the stream and call slots, the authenticator and the
metrics. Its methods are the gateway's operations on Redis: enqueue a request,
check a request's owner, cancel, read an audio stream, count live workers. The
HTTP handlers (:mod:`gateway.routes`) and the WebSocket (:mod:`gateway.websocket`)
reach it as ``app.state.gateway``.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import redis
import redis.asyncio as aredis

from broker.cancel import async_cancel
from broker.producer import AsyncProducer, EnqueueResult
from chorus_client.constants import DEFAULT_SAMPLE_RATE, WORKER_LIVE_S, Durability, EndStatus
from chorus_client.drive import run_async
from chorus_client.keys import Keys
from chorus_client.listen import resume_op
from chorus_client.protocol import AudioFrame, EndFrame, decode_frame
from gateway.auth import Authenticator
from gateway.http import DEFAULT_MAX_BODY_BYTES, HttpError, SpeechParams, http_error
from gateway.limits import Limits, Slots
from gateway.metrics import GatewayMetrics
from gateway.subscriber import AsyncSubscriber, StreamState
from models.catalog import Catalog, load_catalog
from shared.config import RedisSettings, durability_from_env
from shared.connection import as_str, async_client
from shared.errors import ChorusError, RequestNotFound

__all__ = ["OPENAI_MODELS", "OPENAI_VOICES", "Gateway", "GatewayConfig"]

OPENAI_VOICES = ("alloy", "ash", "ballad", "coral", "echo", "fable", "nova", "onyx", "sage", "shimmer", "verse")
OPENAI_MODELS = ("tts-1", "tts-1-hd", "gpt-4o-mini-tts")


REPLAY_MAX_FRAMES = 6_000
"""A finished request of at most this many frames (10 minutes of 100 ms frames, about 29 MB of
PCM at 24 kHz) is answered as one complete file with exact headers and a Content-Length;
a longer one is streamed, as a live one is."""


@dataclass
class GatewayConfig:
    redis: RedisSettings
    auth: bool = True
    """False: no API keys; every caller is ``open_tenant`` (local development only)."""
    open_tenant: str = "default"
    stream_timeout_s: float = 60.0
    """Longest silence on a request's audio stream before the response ends with an error."""
    workers_ttl_s: float = WORKER_LIVE_S
    """A worker whose heartbeat is older than this is not counted by /readyz."""
    keys: Keys = field(default_factory=Keys)
    limits: Limits = field(default_factory=Limits)
    """Concurrent streams and calls, in total and per tenant (429 / 503 beyond)."""
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    """Largest request body; 413 beyond."""
    pool_timeout_s: float = 5.0
    """Longest wait for a free Redis connection before a 503 (a stream waits and retries instead)."""
    cors_origins: tuple[str, ...] = ()
    """Browser origins (``https://app.example``) allowed to call the API; ``*`` allows any. A request
    whose ``Origin`` is neither this gateway's own nor listed is refused with 403."""
    metrics_token: str | None = field(default=None, repr=False)
    """Bearer token ``/metrics`` requires; without one ``/metrics`` is not served on the API port
    (use :func:`gateway.app.create_metrics_app` on a loopback port)."""
    durability: Durability = field(default_factory=durability_from_env)
    """``replica``: a request is accepted (202 / the stream starts) once a replica has it."""
    key_recheck_s: float = 1.0
    """How often an open WebSocket checks that its API key still exists (revocation takes effect)."""
    ws_queue: int = 8
    """Requests a WebSocket may have waiting behind the one it streams; more are refused with an error event."""


class Gateway:
    """State shared by the handlers: clients, catalog, slots, authenticator, metrics."""

    def __init__(self, config: GatewayConfig) -> None:
        self.config = config
        self.keys = config.keys
        self.catalog: Catalog = load_catalog()
        self.metrics = GatewayMetrics()
        lim = config.limits
        # two bounded pools: open streams (one blocking read each) can never take the
        # connections that enqueues, auth and cancels need
        self.r: aredis.Redis = async_client(
            config.redis, max_connections=lim.max_calls + 16, pool_timeout_s=config.pool_timeout_s
        )
        self.stream_r: aredis.Redis = async_client(
            config.redis, max_connections=lim.max_streams + 8, pool_timeout_s=config.pool_timeout_s
        )
        self.streams = Slots(lim.max_streams, lim.max_streams_per_tenant, "streams", lim.retry_after_s)
        self.calls = Slots(lim.max_calls, lim.max_calls_per_tenant, "calls", lim.retry_after_s)
        self.auth = Authenticator(self.r, self.keys, enabled=config.auth, open_tenant=config.open_tenant)
        self.producer = AsyncProducer(self.r, keys=self.keys, catalog=self.catalog, durability=config.durability)
        self.subscriber = AsyncSubscriber(self.stream_r, self.keys)

    async def close(self) -> None:
        await self.r.aclose()
        await self.stream_r.aclose()

    @contextlib.asynccontextmanager
    async def call(self, tenant: str) -> AsyncIterator[None]:
        """Hold one of the tenant's call slots while a non-streaming call is handled."""
        self.calls.take(tenant)
        try:
            yield
        finally:
            self.calls.give(tenant)

    async def owned(self, tenant: str, request_id: str) -> Keys:
        """The request's keys, when it exists and belongs to ``tenant`` (404 otherwise, not 403: ids do not leak)."""
        try:
            keys = self.keys.for_request(request_id)
            owner = await self.r.hget(keys.request(request_id), "tenant")
        except RequestNotFound:
            owner = None
        if owner is None or as_str(owner) != tenant:
            raise HttpError(404, f"no such request {request_id!r}", "not_found")
        return keys

    # -- enqueue -----------------------------------------------------------------------

    def voice_for(self, voice: str | None) -> str | None:
        """The voice to enqueue with: None for OpenAI's voice names and for no voice, so that each
        segment gets the catalog's default voice of its own language (the producer chooses)."""
        return None if voice in OPENAI_VOICES else voice

    async def enqueue(self, tenant: str, body: dict[str, Any]) -> tuple[str, int, int]:
        """Validate (400) and enqueue (429 / 413 / 403 / 503 on refusal): (request id, segments, sample rate)."""
        res = await self.enqueue_result(tenant, body)
        return res.request_id, res.segments, res.sample_rate

    async def enqueue_result(self, tenant: str, body: dict[str, Any]) -> EnqueueResult:
        """As :meth:`enqueue`, the producer's whole answer (each segment's voice too). Without a voice,
        or with one of OpenAI's names, each segment is read by the catalog's default voice of its
        language, at the first segment's voice's sample rate (workers resample the others)."""
        params = SpeechParams.parse(body)
        model = body.get("model")
        if model is not None and model not in OPENAI_MODELS and model not in self.catalog.models:
            known = ", ".join([*OPENAI_MODELS, *self.catalog.models])
            raise HttpError(400, f"unknown model {str(model)[:64]!r}; known: {known} (GET /v1/models)", "invalid_model")
        voice = self.voice_for(params.voice)
        try:
            res = await self.producer.enqueue(
                params.text,
                tenant=tenant,
                voice=voice,
                priority=params.priority,
                speed=params.speed,
                deadline_s=params.deadline_s,
            )
        except ChorusError as exc:
            self.metrics.errors.labels(code=type(exc).__name__).inc()
            raise http_error(exc) from None
        self.metrics.enqueued.labels(tenant=tenant).inc()
        return res

    async def cancel(self, keys: Keys, request_id: str) -> bool:
        try:
            if not await async_cancel(self.r, request_id, keys):
                return False
        except RequestNotFound:  # expired meanwhile: nothing left to cancel
            return False
        self.metrics.cancelled.inc()
        return True

    # -- reading a stream --------------------------------------------------------------

    async def sample_rate(self, keys: Keys, request_id: str) -> int:
        """The sample rate of the request's audio: its voice's model's (the default for an unknown voice)."""
        voice = await self.r.hget(keys.request(request_id), "voice")
        return self.catalog.model_of(as_str(voice)).sample_rate if voice else DEFAULT_SAMPLE_RATE

    async def frames(self, state: StreamState, started: float | None = None) -> AsyncIterator[tuple[AudioFrame, str]]:
        """The subscriber's frames with their resume positions, timed into the metrics."""
        last_at: float | None = None
        async for frame, position in self.subscriber.positions(state, timeout_s=self.config.stream_timeout_s):
            now = time.perf_counter()
            if last_at is None and started is not None:
                self.metrics.ttfa.observe(now - started)
            elif last_at is not None:
                self.metrics.frame_gap.observe(now - last_at)
            last_at = now
            self.metrics.frames.inc()
            yield frame, position

    async def finished_pcm(self, keys: Keys, request_id: str) -> bytes | None:
        """All of a finished request's audio (PCM16, in order, superseded attempts dropped) when its
        stream ended ``ok`` and holds at most :data:`REPLAY_MAX_FRAMES` frames; None otherwise (a
        live, failed or very long request is streamed instead)."""
        audio = keys.audio(request_id)
        last: Any = await self.stream_r.xrevrange(audio, "+", "-", count=1)
        if not last:
            return None
        try:
            end = decode_frame(last[0][1][b"f"])
        except (ChorusError, KeyError):
            return None
        if not isinstance(end, EndFrame) or end.status != EndStatus.OK:
            return None
        if int(await self.stream_r.xlen(audio)) > REPLAY_MAX_FRAMES:
            return None
        return b"".join([frame.pcm async for frame, _ in self.frames(StreamState(request_id))])

    async def replay(self, keys: Keys, request_id: str, until: str) -> StreamState:
        """A stream state as it was after position ``until`` (a Last-Event-ID): frames sent before are
        not sent again, frames of that entry's release not sent yet are sent first."""
        return await run_async(self.stream_r, resume_op(keys, request_id, until))

    # -- operations --------------------------------------------------------------------

    async def live_workers(self) -> int:
        """Workers whose heartbeat (by the server's clock, as they write it) is within ``workers_ttl_s``."""
        seconds, micros = await self.r.time()
        since = int(seconds) * 1000 + int(micros) // 1000 - int(self.config.workers_ttl_s * 1000)
        return int(await self.r.zcount(self.keys.workers(), since, "+inf"))

    async def render_metrics(self) -> tuple[bytes, str]:
        """The Prometheus exposition (body, content type), with queue depths read now (none when Redis is down)."""
        try:
            depth = await self.r.hgetall(self.keys.depth())
        except redis.RedisError:
            depth = {}
        self.metrics.set_depth({as_str(k): int(v) for k, v in depth.items()})
        for kind, slots in (("streams", self.streams), ("calls", self.calls)):
            self.metrics.in_use.labels(kind=kind).set(slots.in_use)
        return self.metrics.render()
