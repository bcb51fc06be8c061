"""The edge gateway: an ASGI app (Starlette) that enqueues through the broker and streams audio as frames arrive.

Endpoints (all under an API key, ``Authorization: Bearer ck_…``, unless the
gateway runs with ``auth=False``; browsers may pass ``?api_key=`` where they
cannot set headers):

* OpenAI-compatible: ``POST /v1/audio/speech``, ``GET /v1/models``,
  ``GET /v1/audio/voices``.
* Native: ``POST /v1/requests`` (request id at once), ``GET
  /v1/requests/{id}/audio`` (chunked, any format), ``GET
  /v1/requests/{id}/events`` (Server-Sent Events; ids are stream positions, so
  ``Last-Event-ID`` resumes exactly), ``DELETE /v1/requests/{id}`` (cancel),
  ``WS /v1/ws``.
* Operations: ``/healthz``, ``/readyz``, ``/metrics`` (Prometheus), ``/`` (a page
  that plays a stream).

A client that disconnects before the end cancels its request, unless it asked
to keep it (``keep: true`` or ``?keep=1``). A tenant sees only its own
requests: another tenant's request id is a 404, as is an unknown one.

Isolation (see docs/SECURITY.md): bodies are capped (413), streams and calls are
bounded per tenant (429) and in total (503) by :mod:`gateway.limits`, Redis
connections come from bounded pools sized from those limits (streams and control
calls apart, so open streams never starve an enqueue), browsers are checked by
``Origin`` against an allow-list, and ``/metrics`` needs a token (or its own
loopback port, ``chorus gateway --metrics-port``).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hmac
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import redis
import redis.asyncio as aredis
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import HTTPConnection, Request
from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket

from broker.cancel import async_cancel
from broker.producer import AsyncProducer
from gateway.auth import KEY_PREFIX, key_digest
from gateway.encode import make_encoder
from gateway.http import (
    DEFAULT_MAX_BODY_BYTES,
    HttpError,
    SpeechParams,
    audio_format,
    error_response,
    http_error,
    read_json,
    stream_position,
    unavailable,
)
from gateway.limits import Limits, Slots
from gateway.metrics import GatewayMetrics
from gateway.subscriber import AsyncSubscriber, StreamState
from gateway.websocket import serve_websocket
from models.catalog import Catalog, load_catalog
from shared.config import RedisSettings
from shared.connection import as_str, async_client
from shared.errors import ChorusError, RequestCancelled, RequestFailed, RequestNotFound, StreamTimeout
from shared.keys import Keys
from shared.protocol import AudioFrame, EndFrame, HeaderFrame, decode_frame

__all__ = ["GatewayConfig", "create_app", "create_metrics_app"]

log = logging.getLogger(__name__)
OPENAI_VOICES = ("alloy", "ash", "ballad", "coral", "echo", "fable", "nova", "onyx", "sage", "shimmer", "verse")
OPENAI_MODELS = ("tts-1", "tts-1-hd", "gpt-4o-mini-tts")
AUTH_CACHE_S = 1.0
AUTH_CACHE_ENTRIES = 10_000


@dataclass
class GatewayConfig:
    redis: RedisSettings
    auth: bool = True
    """False: no API keys; every caller is ``open_tenant`` (local development only)."""
    open_tenant: str = "default"
    stream_timeout_s: float = 60.0
    """Longest silence on a request's audio stream before the response ends with an error."""
    workers_ttl_s: float = 10.0
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
    (use :func:`create_metrics_app` on a loopback port)."""
    key_recheck_s: float = 1.0
    """How often an open WebSocket checks that its API key still exists (revocation takes effect)."""
    ws_queue: int = 8
    """Requests a WebSocket may have waiting behind the one it streams; more are refused with an error event."""


class Gateway:
    """State shared by the handlers: clients, catalog, metrics."""

    def __init__(self, config: GatewayConfig) -> None:
        self.config = config
        self.keys = config.keys
        self.catalog: Catalog = load_catalog()
        self.metrics = GatewayMetrics()
        lim = config.limits
        # two bounded pools: open streams (one blocking read each) can never take the
        # connections that enqueues, auth and cancels need
        self.r: aredis.Redis = async_client(config.redis, max_connections=lim.max_calls + 16,
                                            pool_timeout_s=config.pool_timeout_s)  # fmt: skip
        self.stream_r: aredis.Redis = async_client(config.redis, max_connections=lim.max_streams + 8,
                                                   pool_timeout_s=config.pool_timeout_s)  # fmt: skip
        self.streams = Slots(lim.max_streams, lim.max_streams_per_tenant, "streams", lim.retry_after_s)
        self.calls = Slots(lim.max_calls, lim.max_calls_per_tenant, "calls", lim.retry_after_s)
        self.producer = AsyncProducer(self.r, keys=self.keys, catalog=self.catalog)
        self._auth_cache: dict[str, tuple[str | None, float]] = {}
        """Key digest -> (tenant or None for an unknown key, until when): a flood of calls, valid keys
        or not, costs one Redis read per key per second; a revocation takes effect within that second."""
        self.subscriber = AsyncSubscriber(self.stream_r, self.keys)

    @contextlib.asynccontextmanager
    async def call(self, tenant: str) -> AsyncIterator[None]:
        """Hold one of the tenant's call slots while a non-streaming call is handled."""
        self.calls.take(tenant)
        try:
            yield
        finally:
            self.calls.give(tenant)

    # -- auth and ownership ----------------------------------------------------------

    async def tenant(self, conn: Request | WebSocket) -> str:
        return (await self.authenticate(conn))[0]

    async def authenticate(self, conn: Request | WebSocket) -> tuple[str, str | None]:
        """(tenant, digest of the API key; None without auth); 401 for a missing or unknown key."""
        if not self.config.auth:
            return self.config.open_tenant, None
        header = conn.headers.get("authorization", "")
        key = header[7:].strip() if header.lower().startswith("bearer ") else conn.query_params.get("api_key", "")
        if not key:
            raise HttpError(401, "missing API key: send Authorization: Bearer <key>", "unauthorized",
                            {"WWW-Authenticate": "Bearer"})  # fmt: skip
        digest = key_digest(key)
        now = time.monotonic()
        cached = self._auth_cache.get(digest)
        if cached is not None and cached[1] > now:
            tenant = cached[0]
        else:
            ok = key.startswith(KEY_PREFIX) and len(key) <= 128
            raw = await self.r.hget(self.keys.api_keys(), digest) if ok else None
            tenant = None if raw is None else str(json.loads(raw)["tenant"])
            if len(self._auth_cache) >= AUTH_CACHE_ENTRIES:
                self._auth_cache.clear()
            self._auth_cache[digest] = (tenant, now + AUTH_CACHE_S)
        if tenant is None:
            raise HttpError(401, "invalid API key", "unauthorized", {"WWW-Authenticate": "Bearer"})
        return tenant, digest

    async def key_valid(self, digest: str | None) -> bool:
        """Whether an API key (by digest) still exists: open WebSockets re-check it (revocation)."""
        return digest is None or bool(await self.r.hexists(self.keys.api_keys(), digest))

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

    def voice_for(self, voice: str | None, text: str) -> str | None:
        """OpenAI's voice names (and no voice) map to the default voice of the text's language."""
        if voice in OPENAI_VOICES or voice is None:
            lang = "zh" if any("\u4e00" <= c <= "\u9fff" for c in text) else "en"
            return self.catalog.default_voices.get(lang) or self.catalog.default_voices.get("zh")
        return voice

    async def enqueue(self, tenant: str, body: dict[str, Any]) -> tuple[str, int, int]:
        """Validate (400) and enqueue (429 / 413 / 403 / 503 on refusal): (request id, segments, sample rate)."""
        params = SpeechParams.parse(body)
        model = body.get("model")
        if model is not None and model not in OPENAI_MODELS and model not in self.catalog.models:
            known = ", ".join([*OPENAI_MODELS, *self.catalog.models])
            raise HttpError(400, f"unknown model {str(model)[:64]!r}; known: {known} (GET /v1/models)", "invalid_model")
        voice = self.voice_for(params.voice, params.text)
        try:
            res = await self.producer.enqueue(params.text, tenant=tenant, voice=voice, priority=params.priority,
                                              speed=params.speed, deadline_s=params.deadline_s)  # fmt: skip
        except ChorusError as exc:
            self.metrics.errors.labels(code=type(exc).__name__).inc()
            raise http_error(exc) from None
        self.metrics.enqueued.labels(tenant=tenant).inc()
        return res.request_id, res.segments, res.sample_rate

    async def cancel(self, keys: Keys, request_id: str) -> bool:
        try:
            if not await async_cancel(self.r, request_id, keys):
                return False
        except RequestNotFound:  # expired meanwhile: nothing left to cancel
            return False
        self.metrics.cancelled.inc()
        return True

    # -- reading a stream --------------------------------------------------------------

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

    async def replay(self, keys: Keys, request_id: str, until: str) -> StreamState:
        """A stream state as it was after entry ``until`` (for Last-Event-ID)."""
        state = StreamState(request_id)
        entries: Any = await self.stream_r.xrange(keys.audio(request_id), "-", until)
        state.feed(entries)
        state.last_id = until
        return state


def _flag(value: Any) -> bool:
    return value in (True, 1, "1", "true", "yes")


class _HeldStream(StreamingResponse):
    """A streaming response that gives its stream slot back however it ends (even unstarted)."""

    def __init__(self, content: AsyncIterator[Any], release: Callable[[], None], **kwargs: Any) -> None:
        super().__init__(content, **kwargs)
        self._release = release

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._release()


class OriginGuard:
    """Refuses browser calls from origins that are neither this gateway's own nor allow-listed.

    A browser names the page's origin in ``Origin``; non-browser clients send none and pass.
    Without this a page anywhere could drive a ``--no-auth`` gateway (or one that reads
    ``?api_key=``) from its visitors' browsers, WebSockets included (they are not subject to CORS).
    """

    def __init__(self, app: ASGIApp, allowed: tuple[str, ...]) -> None:
        self.app = app
        self.allowed = {o.rstrip("/").lower() for o in allowed}

    def _ok(self, scope: Scope) -> bool:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        origin = headers.get("origin")
        if origin is None or "*" in self.allowed:
            return True
        origin = origin.rstrip("/").lower()
        if origin in self.allowed:
            return True
        host = headers.get("host", "").lower()
        own = "https" if scope.get("scheme") in ("https", "wss") else "http"
        return bool(host) and origin == f"{own}://{host}"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or self._ok(scope):
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 4403, "reason": "origin not allowed"})
            return
        exc = HttpError(403, "this origin is not allowed to call the API (see --cors-origin)", "origin_not_allowed")
        await error_response(exc)(scope, receive, send)


def _bearer(conn: HTTPConnection) -> str:
    header = conn.headers.get("authorization", "")
    return header[7:].strip() if header.lower().startswith("bearer ") else ""


def _metrics_endpoint(gw: Gateway, token: str | None) -> Callable[[Request], Awaitable[Response]]:
    async def metrics(request: Request) -> Response:
        if token is not None and not hmac.compare_digest(_bearer(request).encode(), token.encode()):
            return error_response(HttpError(401, "metrics need the metrics token", "unauthorized",
                                            {"WWW-Authenticate": "Bearer"}))  # fmt: skip
        try:
            depth = await gw.r.hgetall(gw.keys.depth())
        except redis.RedisError:
            depth = {}
        gw.metrics.set_depth({as_str(k): int(v) for k, v in depth.items()})
        for kind, slots in (("streams", gw.streams), ("calls", gw.calls)):
            gw.metrics.in_use.labels(kind=kind).set(slots.in_use)
        body, content_type = gw.metrics.render()
        return Response(body, media_type=content_type)

    return metrics


def create_metrics_app(app: Starlette) -> Starlette:
    """``/metrics`` of ``app``'s gateway alone, without a token: serve it on a loopback port only."""
    gw: Gateway = app.state.gateway
    return Starlette(routes=[Route("/metrics", _metrics_endpoint(gw, None))])


def create_app(config: GatewayConfig) -> Starlette:
    gw = Gateway(config)

    def handler(fn: Any) -> Any:
        async def wrapped(request: Request) -> Response:
            try:
                response: Response = await fn(request)
                return response
            except HttpError as exc:
                gw.metrics.http_errors.labels(status=str(exc.status)).inc()
                return error_response(exc)
            except ChorusError as exc:
                return error_response(http_error(exc))
            except redis.RedisError as exc:
                # an exhausted pool, a lost connection or a server-state error: retry later, not a 500
                log.warning("redis error on %s: %s", request.url.path, exc)
                gw.metrics.http_errors.labels(status="503").inc()
                return error_response(unavailable())

        return wrapped

    def audio_response(keys: Keys, rid: str, tenant: str, fmt: str, out_rate: int | None, sample_rate: int,
                       keep: bool, started: float | None, held: bool = False) -> Response:  # fmt: skip
        """Stream the request's audio; takes a stream slot unless the caller ``held`` one already."""
        try:
            encoder = make_encoder(fmt, sample_rate, out_rate)
        except Exception:
            if held:
                gw.streams.give(tenant)
            raise
        if not held:
            gw.streams.take(tenant)

        async def body() -> AsyncIterator[bytes]:
            finished = False
            try:
                async for frame, _ in gw.frames(StreamState(rid), started):
                    chunk = encoder.feed(frame.pcm)
                    if chunk:
                        yield chunk
                finished = True
                tail = encoder.close()
                if tail:
                    yield tail
            except (RequestFailed, StreamTimeout, ChorusError) as exc:
                log.warning("request %s ended early: %s", rid, exc)
                gw.metrics.errors.labels(code=type(exc).__name__).inc()
                finished = isinstance(exc, RequestCancelled)
            finally:
                if not finished and not keep:
                    await asyncio.shield(gw.cancel(keys, rid))  # the client went away: stop the work

        headers = {"X-Request-Id": rid, "X-Sample-Rate": str(encoder.sample_rate), "Cache-Control": "no-store"}
        return _HeldStream(body(), lambda: gw.streams.give(tenant), media_type=encoder.content_type,
                           headers=headers)  # fmt: skip

    @handler
    async def speech(request: Request) -> Response:
        tenant = await gw.tenant(request)
        async with gw.call(tenant):
            body = await read_json(request, config.max_body_bytes)
            fmt, out_rate = audio_format(body, "mp3")
            gw.streams.take(tenant)  # before anything is enqueued: a refusal (429 / 503) leaves no work behind
            try:
                started = time.perf_counter()
                rid, _, sample_rate = await gw.enqueue(tenant, body)
            except BaseException:
                gw.streams.give(tenant)
                raise
        gw.metrics.requests.labels(endpoint="speech", format=fmt).inc()
        keys = gw.keys.for_request(rid)
        return audio_response(keys, rid, tenant, fmt, out_rate, sample_rate, _flag(body.get("keep")), started,
                              held=True)  # fmt: skip

    @handler
    async def create_request(request: Request) -> Response:
        tenant = await gw.tenant(request)
        async with gw.call(tenant):
            body = await read_json(request, config.max_body_bytes)
            rid, segments, sample_rate = await gw.enqueue(tenant, body)
        gw.metrics.requests.labels(endpoint="requests", format="-").inc()
        links = {"audio": f"/v1/requests/{rid}/audio", "events": f"/v1/requests/{rid}/events"}
        return JSONResponse({"id": rid, "segments": segments, "sample_rate": sample_rate, "links": links},
                            status_code=202)  # fmt: skip

    @handler
    async def request_audio(request: Request) -> Response:
        tenant = await gw.tenant(request)
        rid = request.path_params["rid"]
        if request.method != "HEAD":
            gw.streams.check(tenant)  # a refusal (429 / 503) costs no Redis call
        async with gw.call(tenant):
            keys = await gw.owned(tenant, rid)
            fmt, out_rate = audio_format(request.query_params, "wav")
            voice = await gw.r.hget(keys.request(rid), "voice")
        sample_rate = gw.catalog.model_of(as_str(voice or b"")).sample_rate if voice else 24000
        if request.method == "HEAD":  # players probe first: answer the headers, start nothing, cancel nothing
            encoder = make_encoder(fmt, sample_rate, out_rate)
            return Response(headers={"X-Request-Id": rid, "X-Sample-Rate": str(encoder.sample_rate),
                                     "Cache-Control": "no-store"}, media_type=encoder.content_type)  # fmt: skip
        gw.metrics.requests.labels(endpoint="audio", format=fmt).inc()
        return audio_response(keys, rid, tenant, fmt, out_rate, sample_rate,
                              _flag(request.query_params.get("keep", "1")), None)  # fmt: skip

    @handler
    async def request_events(request: Request) -> Response:
        tenant = await gw.tenant(request)
        rid = request.path_params["rid"]
        resume = request.headers.get("last-event-id") or request.query_params.get("last_event_id")
        if request.method != "HEAD":
            gw.streams.check(tenant)  # a refusal (429 / 503) costs no Redis call
        async with gw.call(tenant):
            keys = await gw.owned(tenant, rid)
            state = await gw.replay(keys, rid, stream_position(resume)) if resume else StreamState(rid)
        keep = _flag(request.query_params.get("keep", "1"))
        if request.method == "HEAD":
            return Response(media_type="text/event-stream", headers={"Cache-Control": "no-store"})
        gw.streams.take(tenant)
        gw.metrics.requests.labels(endpoint="events", format="sse").inc()

        async def events() -> AsyncIterator[str]:
            finished = False
            try:
                header: Any = await gw.stream_r.xrange(keys.audio(rid), "-", "+", count=1)
                if header and not resume:
                    frame = decode_frame(header[0][1][b"f"])
                    if isinstance(frame, HeaderFrame):
                        yield _sse("header", {"segments": frame.segments, "sample_rate": frame.sample_rate,
                                              "voice": frame.voice}, None)  # fmt: skip
                async for frame, position in gw.frames(state):
                    data = {"seg": frame.segment, "idx": frame.index, "last": frame.last, "sr": frame.sample_rate,
                            "pcm": base64.b64encode(frame.pcm).decode("ascii")}  # fmt: skip
                    yield _sse("audio", data, position)
                finished = True
                end = state.end or EndFrame(0)
                yield _sse("end", {"segments": end.segments, "status": end.status}, state.last_id)
            except RequestFailed as exc:
                finished = True
                yield _sse("error", {"code": exc.code, "message": exc.message, "segment": exc.segment}, state.last_id)
            except StreamTimeout as exc:
                yield _sse("error", {"code": "timeout", "message": str(exc)}, state.last_id)
            except (ChorusError, redis.RedisError) as exc:
                yield _sse("error", {"code": "unavailable", "message": str(exc)}, state.last_id)
            finally:
                if not finished and not keep:
                    await asyncio.shield(gw.cancel(keys, rid))

        return _HeldStream(events(), lambda: gw.streams.give(tenant), media_type="text/event-stream",
                           headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})  # fmt: skip

    @handler
    async def delete_request(request: Request) -> Response:
        tenant = await gw.tenant(request)
        rid = request.path_params["rid"]
        async with gw.call(tenant):
            keys = await gw.owned(tenant, rid)
            return JSONResponse({"id": rid, "cancelled": await gw.cancel(keys, rid)})

    @handler
    async def models(request: Request) -> Response:
        tenant = await gw.tenant(request)
        async with gw.call(tenant):
            data: list[dict[str, Any]] = [{"id": m, "object": "model", "owned_by": "chorus"} for m in OPENAI_MODELS]
            data += [{"id": s.id, "object": "model", "owned_by": "chorus", "version": s.version,
                      "languages": list(s.languages)} for s in gw.catalog.models.values()]  # fmt: skip
            return JSONResponse({"object": "list", "data": data})

    @handler
    async def voices(request: Request) -> Response:
        tenant = await gw.tenant(request)
        async with gw.call(tenant):
            defaults = set(gw.catalog.default_voices.values())
            ordered = sorted(gw.catalog.voices.values(), key=lambda v: v.name)
            data = [{"id": v.name, "language": v.lang, "model": v.model, "gender": v.gender,
                     "default": v.name in defaults} for v in ordered]  # fmt: skip
            return JSONResponse({"object": "list", "data": data, "openai_aliases": list(OPENAI_VOICES)})

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        try:
            seconds, micros = await gw.r.time()  # the server's clock, as the workers' heartbeats
            since = int(seconds) * 1000 + int(micros) // 1000 - int(config.workers_ttl_s * 1000)
            workers = int(await gw.r.zcount(gw.keys.workers(), since, "+inf"))
        except redis.RedisError as exc:
            return JSONResponse({"status": "unavailable", "redis": str(exc)}, status_code=503)
        if workers == 0:
            return JSONResponse({"status": "no workers", "workers": 0}, status_code=503)
        return JSONResponse({"status": "ready", "workers": workers})

    metrics_with_token = _metrics_endpoint(gw, config.metrics_token)

    async def metrics(request: Request) -> Response:
        if config.metrics_token is None:
            raise HTTPException(404)
        return await metrics_with_token(request)

    async def page(request: Request) -> Response:
        html = resources.files("gateway").joinpath("static/index.html").read_text(encoding="utf-8")
        return HTMLResponse(html.replace("__AUTH__", "true" if config.auth else "false"))

    async def websocket(ws: WebSocket) -> None:
        await serve_websocket(gw, ws)

    async def not_found(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        code = {404: "not_found", 405: "method_not_allowed"}.get(status, "http_error")
        detail = exc.detail if isinstance(exc, HTTPException) else "internal error"
        return error_response(HttpError(status, f"{request.method} {request.url.path}: {detail}", code,
                                        dict(getattr(exc, "headers", None) or {})))  # fmt: skip

    routes = [
        Route("/", page),
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/metrics", metrics),
        Route("/v1/models", models),
        Route("/v1/audio/voices", voices),
        Route("/v1/audio/speech", speech, methods=["POST"]),
        Route("/v1/requests", create_request, methods=["POST"]),
        Route("/v1/requests/{rid}/audio", request_audio),
        Route("/v1/requests/{rid}/events", request_events),
        Route("/v1/requests/{rid}", delete_request, methods=["DELETE"]),
        WebSocketRoute("/v1/ws", websocket),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await gw.r.aclose()
        await gw.stream_r.aclose()

    middleware = [
        Middleware(CORSMiddleware, allow_origins=list(config.cors_origins),
                   allow_methods=["GET", "POST", "DELETE", "OPTIONS"],
                   allow_headers=["Authorization", "Content-Type", "Last-Event-ID"],
                   expose_headers=["X-Request-Id", "X-Sample-Rate", "Retry-After"], max_age=600),
        Middleware(OriginGuard, allowed=config.cors_origins),
    ]  # fmt: skip
    app = Starlette(routes=routes, lifespan=lifespan, middleware=middleware,
                    exception_handlers={404: not_found, 405: not_found})  # fmt: skip
    app.state.gateway = gw
    return app


def _sse(event: str, data: dict[str, Any], event_id: str | None) -> str:
    head = f"id: {event_id}\n" if event_id else ""
    return f"{head}event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"
