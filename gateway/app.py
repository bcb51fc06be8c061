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
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import redis
import redis.asyncio as aredis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from broker.cancel import async_cancel
from broker.producer import PRIORITIES, AsyncProducer
from gateway.auth import KEY_PREFIX, key_digest
from gateway.encode import FORMATS, make_encoder
from gateway.metrics import GatewayMetrics
from gateway.subscriber import AsyncSubscriber, StreamState
from models.catalog import Catalog, load_catalog
from shared.config import RedisSettings
from shared.connection import as_str, async_client
from shared.errors import (
    ChorusError,
    LaneNotAllowed,
    QueueFull,
    RedisUnavailable,
    RequestCancelled,
    RequestFailed,
    RequestNotFound,
    StreamTimeout,
    TextError,
    UnknownTenant,
    UnknownVoice,
)
from shared.keys import Keys
from shared.protocol import AudioFrame, EndFrame, HeaderFrame, decode_frame

__all__ = ["GatewayConfig", "create_app"]

log = logging.getLogger(__name__)
OPENAI_VOICES = ("alloy", "ash", "ballad", "coral", "echo", "fable", "nova", "onyx", "sage", "shimmer", "verse")
OPENAI_MODELS = ("tts-1", "tts-1-hd", "gpt-4o-mini-tts")
BLOCK_MS = 1000


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


class HttpError(Exception):
    def __init__(self, status: int, message: str, code: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.code, self.headers = status, message, code, headers or {}


def _error_response(exc: HttpError) -> JSONResponse:
    body = {"error": {"message": exc.message, "type": "invalid_request_error" if exc.status < 500 else "server_error",
                      "code": exc.code}}  # fmt: skip
    return JSONResponse(body, status_code=exc.status, headers=exc.headers)


def _http_error(exc: ChorusError) -> HttpError:
    if isinstance(exc, QueueFull):
        retry = max(1, round(exc.retry_after_s or 1))
        return HttpError(429, str(exc), "queue_full", {"Retry-After": str(retry)})
    if isinstance(exc, (UnknownTenant, LaneNotAllowed)):
        return HttpError(403, str(exc), "forbidden")
    if isinstance(exc, RequestNotFound):
        return HttpError(404, str(exc), "not_found")
    if isinstance(exc, (TextError, UnknownVoice)):
        return HttpError(400, str(exc), "invalid_input")
    if isinstance(exc, RedisUnavailable):
        return HttpError(503, "the queue is unavailable; retry shortly", "unavailable", {"Retry-After": "1"})
    return HttpError(400, str(exc), "bad_request")


class Gateway:
    """State shared by the handlers: clients, catalog, metrics."""

    def __init__(self, config: GatewayConfig) -> None:
        self.config = config
        self.keys = config.keys
        self.catalog: Catalog = load_catalog()
        self.metrics = GatewayMetrics()
        self.r: aredis.Redis = async_client(config.redis)
        self.producer = AsyncProducer(self.r, keys=self.keys, catalog=self.catalog)
        self.subscriber = AsyncSubscriber(self.r, self.keys)

    # -- auth and ownership ----------------------------------------------------------

    async def tenant(self, conn: Request | WebSocket) -> str:
        if not self.config.auth:
            return self.config.open_tenant
        header = conn.headers.get("authorization", "")
        key = header[7:].strip() if header.lower().startswith("bearer ") else conn.query_params.get("api_key", "")
        if not key:
            raise HttpError(401, "missing API key: send Authorization: Bearer <key>", "unauthorized",
                            {"WWW-Authenticate": "Bearer"})  # fmt: skip
        raw = await self.r.hget(self.keys.api_keys(), key_digest(key)) if key.startswith(KEY_PREFIX) else None
        if raw is None:
            raise HttpError(401, "invalid API key", "unauthorized", {"WWW-Authenticate": "Bearer"})
        return str(json.loads(raw)["tenant"])

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
        """OpenAI's voice names map to the default voice of the text's language."""
        if voice in OPENAI_VOICES or voice is None:
            lang = "zh" if any("\u4e00" <= c <= "\u9fff" for c in text) else "en"
            return self.catalog.default_voices.get(lang) or self.catalog.default_voices.get("zh")
        return voice

    async def enqueue(self, tenant: str, body: dict[str, Any]) -> tuple[str, int, int]:
        text = body.get("input")
        if not isinstance(text, str):
            raise HttpError(400, "'input' must be a string", "invalid_input")
        priority = body.get("priority", "interactive")
        if priority not in PRIORITIES:
            raise HttpError(400, f"'priority' must be one of {PRIORITIES}", "invalid_input")
        speed = body.get("speed", 1.0)
        if not isinstance(speed, (int, float)):
            raise HttpError(400, "'speed' must be a number", "invalid_input")
        deadline = body.get("deadline_s")
        voice = self.voice_for(body.get("voice"), text)
        try:
            res = await self.producer.enqueue(text, tenant=tenant, voice=voice, priority=priority,
                                              speed=float(speed), deadline_s=deadline)  # fmt: skip
        except ChorusError as exc:
            self.metrics.errors.labels(code=type(exc).__name__).inc()
            raise _http_error(exc) from None
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
        entries: Any = await self.r.xrange(keys.audio(request_id), "-", until)
        state.feed(entries)
        state.last_id = until
        return state


def _flag(value: Any) -> bool:
    return value in (True, 1, "1", "true", "yes")


async def _body(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except (ValueError, UnicodeDecodeError):
        raise HttpError(400, "the body must be JSON (UTF-8)", "invalid_json") from None
    if not isinstance(body, dict):
        raise HttpError(400, "the body must be a JSON object", "invalid_json")
    return body


def _format(body_or_query: Any, default: str) -> tuple[str, int | None]:
    fmt = str(body_or_query.get("response_format") or body_or_query.get("format") or default).lower()
    if fmt not in FORMATS:
        raise HttpError(400, f"response_format must be one of {', '.join(FORMATS)}", "invalid_format")
    rate = body_or_query.get("sample_rate")
    try:
        out_rate = int(rate) if rate else None
    except (TypeError, ValueError):
        raise HttpError(400, "sample_rate must be an integer", "invalid_input") from None
    if out_rate is not None and not 8000 <= out_rate <= 48000:
        raise HttpError(400, "sample_rate must be within 8000..48000", "invalid_input")
    return fmt, out_rate


def create_app(config: GatewayConfig) -> Starlette:
    gw = Gateway(config)

    def handler(fn: Any) -> Any:
        async def wrapped(request: Request) -> Response:
            try:
                response: Response = await fn(request)
                return response
            except HttpError as exc:
                gw.metrics.http_errors.labels(status=str(exc.status)).inc()
                return _error_response(exc)
            except ChorusError as exc:
                return _error_response(_http_error(exc))

        return wrapped

    def audio_response(keys: Keys, rid: str, tenant: str, fmt: str, out_rate: int | None, sample_rate: int,
                       keep: bool, started: float | None) -> StreamingResponse:  # fmt: skip
        encoder = make_encoder(fmt, sample_rate, out_rate)

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
            except (RequestFailed, StreamTimeout) as exc:
                log.warning("request %s ended early: %s", rid, exc)
                gw.metrics.errors.labels(code=type(exc).__name__).inc()
                finished = isinstance(exc, RequestCancelled)
            finally:
                if not finished and not keep:
                    await asyncio.shield(gw.cancel(keys, rid))  # the client went away: stop the work

        headers = {"X-Request-Id": rid, "X-Sample-Rate": str(encoder.sample_rate), "Cache-Control": "no-store"}
        return StreamingResponse(body(), media_type=encoder.content_type, headers=headers)

    @handler
    async def speech(request: Request) -> Response:
        tenant = await gw.tenant(request)
        body = await _body(request)
        fmt, out_rate = _format(body, "mp3")
        started = time.perf_counter()
        rid, _, sample_rate = await gw.enqueue(tenant, body)
        gw.metrics.requests.labels(endpoint="speech", format=fmt).inc()
        keys = gw.keys.for_request(rid)
        return audio_response(keys, rid, tenant, fmt, out_rate, sample_rate, _flag(body.get("keep")), started)

    @handler
    async def create_request(request: Request) -> Response:
        tenant = await gw.tenant(request)
        body = await _body(request)
        rid, segments, sample_rate = await gw.enqueue(tenant, body)
        gw.metrics.requests.labels(endpoint="requests", format="-").inc()
        links = {"audio": f"/v1/requests/{rid}/audio", "events": f"/v1/requests/{rid}/events"}
        return JSONResponse({"id": rid, "segments": segments, "sample_rate": sample_rate, "links": links},
                            status_code=202)  # fmt: skip

    @handler
    async def request_audio(request: Request) -> Response:
        tenant = await gw.tenant(request)
        rid = request.path_params["rid"]
        keys = await gw.owned(tenant, rid)
        fmt, out_rate = _format(request.query_params, "wav")
        voice = await gw.r.hget(keys.request(rid), "voice")
        sample_rate = gw.catalog.model_of(as_str(voice or b"")).sample_rate if voice else 24000
        gw.metrics.requests.labels(endpoint="audio", format=fmt).inc()
        return audio_response(keys, rid, tenant, fmt, out_rate, sample_rate,
                              _flag(request.query_params.get("keep", "1")), None)  # fmt: skip

    @handler
    async def request_events(request: Request) -> Response:
        tenant = await gw.tenant(request)
        rid = request.path_params["rid"]
        keys = await gw.owned(tenant, rid)
        resume = request.headers.get("last-event-id") or request.query_params.get("last_event_id")
        state = await gw.replay(keys, rid, resume) if resume else StreamState(rid)
        keep = _flag(request.query_params.get("keep", "1"))
        gw.metrics.requests.labels(endpoint="events", format="sse").inc()

        async def events() -> AsyncIterator[str]:
            finished = False
            header: Any = await gw.r.xrange(keys.audio(rid), "-", "+", count=1)
            if header and not resume:
                frame = decode_frame(header[0][1][b"f"])
                if isinstance(frame, HeaderFrame):
                    yield _sse("header", {"segments": frame.segments, "sample_rate": frame.sample_rate,
                                          "voice": frame.voice}, None)  # fmt: skip
            try:
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
            finally:
                if not finished and not keep:
                    await asyncio.shield(gw.cancel(keys, rid))

        return StreamingResponse(events(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})  # fmt: skip

    @handler
    async def delete_request(request: Request) -> Response:
        tenant = await gw.tenant(request)
        rid = request.path_params["rid"]
        keys = await gw.owned(tenant, rid)
        return JSONResponse({"id": rid, "cancelled": await gw.cancel(keys, rid)})

    @handler
    async def models(request: Request) -> Response:
        await gw.tenant(request)
        data: list[dict[str, Any]] = [{"id": m, "object": "model", "owned_by": "chorus"} for m in OPENAI_MODELS]
        data += [{"id": s.id, "object": "model", "owned_by": "chorus", "version": s.version,
                  "languages": list(s.languages)} for s in gw.catalog.models.values()]  # fmt: skip
        return JSONResponse({"object": "list", "data": data})

    @handler
    async def voices(request: Request) -> Response:
        await gw.tenant(request)
        defaults = set(gw.catalog.default_voices.values())
        ordered = sorted(gw.catalog.voices.values(), key=lambda v: v.name)
        data = [{"id": v.name, "language": v.lang, "model": v.model, "gender": v.gender,
                 "default": v.name in defaults} for v in ordered]  # fmt: skip
        return JSONResponse({"object": "list", "data": data, "openai_aliases": list(OPENAI_VOICES)})

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        try:
            await gw.r.ping()
            since = int((time.time() - config.workers_ttl_s) * 1000)
            workers = int(await gw.r.zcount(gw.keys.workers(), since, "+inf"))
        except redis.RedisError as exc:
            return JSONResponse({"status": "unavailable", "redis": str(exc)}, status_code=503)
        if workers == 0:
            return JSONResponse({"status": "no workers", "workers": 0}, status_code=503)
        return JSONResponse({"status": "ready", "workers": workers})

    async def metrics(request: Request) -> Response:
        try:
            depth = await gw.r.hgetall(gw.keys.depth())
        except redis.RedisError:
            depth = {}
        gw.metrics.set_depth({as_str(k): int(v) for k, v in depth.items()})
        body, content_type = gw.metrics.render()
        return Response(body, media_type=content_type)

    async def page(request: Request) -> Response:
        html = resources.files("gateway").joinpath("static/index.html").read_text(encoding="utf-8")
        return HTMLResponse(html.replace("__AUTH__", "true" if config.auth else "false"))

    async def websocket(ws: WebSocket) -> None:
        await _websocket(gw, ws)

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

    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.gateway = gw
    return app


def _sse(event: str, data: dict[str, Any], event_id: str | None) -> str:
    head = f"id: {event_id}\n" if event_id else ""
    return f"{head}event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


async def _websocket(gw: Gateway, ws: WebSocket) -> None:
    """One request per message: JSON in ({input, voice, …}); JSON events and binary PCM16 frames out.

    ``{"cancel": true}`` cancels the request in progress; closing the socket cancels it too.
    """
    try:
        tenant = await gw.tenant(ws)
    except HttpError as exc:
        await ws.close(code=4401, reason=exc.message)
        return
    await ws.accept()
    try:
        while True:
            body = await ws.receive_json()
            if not isinstance(body, dict) or body.get("cancel"):
                continue
            try:
                rid, segments, sample_rate = await gw.enqueue(tenant, body)
            except HttpError as exc:
                await ws.send_json({"event": "error", "status": exc.status, "code": exc.code, "message": exc.message})
                continue
            await ws.send_json({"event": "header", "id": rid, "segments": segments, "sample_rate": sample_rate})
            keys = gw.keys.for_request(rid)
            stream = _ws_stream(gw, ws, keys, rid)
            try:
                await stream
            except WebSocketDisconnect:
                await asyncio.shield(gw.cancel(keys, rid))
                raise
    except WebSocketDisconnect:
        return


async def _ws_stream(gw: Gateway, ws: WebSocket, keys: Keys, rid: str) -> None:
    cancel_task = asyncio.ensure_future(ws.receive_json())
    try:
        async for frame, _ in gw.frames(StreamState(rid), time.perf_counter()):
            if cancel_task.done():
                msg = cancel_task.result()
                if isinstance(msg, dict) and msg.get("cancel"):
                    await gw.cancel(keys, rid)
                cancel_task = asyncio.ensure_future(ws.receive_json())
            await ws.send_bytes(frame.pcm)
        await ws.send_json({"event": "end", "id": rid, "status": "ok"})
    except RequestFailed as exc:
        await ws.send_json({"event": "end" if isinstance(exc, RequestCancelled) else "error", "id": rid,
                            "status": exc.code, "message": exc.message})  # fmt: skip
    finally:
        if not cancel_task.done():
            cancel_task.cancel()
        elif isinstance(cancel_task.exception(), WebSocketDisconnect):
            raise WebSocketDisconnect()
