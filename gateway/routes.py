"""The HTTP API: one module-level handler per endpoint, and the route table (:data:`ROUTES`).

Endpoints (all under an API key, ``Authorization: Bearer ck_…``, unless the
gateway runs with ``auth=False``; browsers may pass ``?api_key=`` where they
cannot set headers):

* OpenAI-compatible: ``POST /v1/audio/speech``, ``GET /v1/models``,
  ``GET /v1/audio/voices``.
* Native: ``POST /v1/requests`` (request id at once), ``GET
  /v1/requests/{id}/audio`` (any format: chunked while live; a finished request as one
  complete file with exact headers and a Content-Length), ``GET
  /v1/requests/{id}/events`` (Server-Sent Events; ids are stream positions, so
  ``Last-Event-ID`` resumes exactly), ``DELETE /v1/requests/{id}`` (cancel),
  ``WS /v1/ws`` (:mod:`gateway.websocket`).
* Operations: ``/healthz``, ``/readyz``, ``/metrics`` (Prometheus), ``/`` (a page
  that plays a stream).

A client that disconnects before the end cancels its request, unless it asked
to keep it (``keep: true`` or ``?keep=1``). A tenant sees only its own
requests: another tenant's request id is a 404, as is an unknown one.

Handlers read the shared state from ``request.app.state.gateway`` (a
:class:`~gateway.service.Gateway`); the streaming answers are built by
:mod:`gateway.streaming`. Every API handler answers a refusal in OpenAI's error
shape (:func:`answers_errors`): a Redis failure is a 503, never a 500.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Any

import redis
from starlette.exceptions import HTTPException
from starlette.requests import HTTPConnection, Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.websockets import WebSocket

from gateway.auth import bearer_matches
from gateway.http import HttpError, audio_format, error_response, http_error, read_json, stream_position, unavailable
from gateway.service import OPENAI_MODELS, OPENAI_VOICES, Gateway
from gateway.streaming import audio_head, audio_response, complete_audio, events_head, events_response
from gateway.subscriber import StreamState
from gateway.websocket import serve_websocket
from shared.errors import ChorusError

__all__ = ["ROUTES", "gateway", "http_exception", "open_metrics"]

log = logging.getLogger(__name__)

Endpoint = Callable[[Request], Awaitable[Response]]


def gateway(conn: HTTPConnection) -> Gateway:
    """The app's shared state (set by :func:`gateway.app.create_app`)."""
    gw: Gateway = conn.app.state.gateway
    return gw


def answers_errors(fn: Endpoint) -> Endpoint:
    """An API handler whose refusals are error answers: :class:`HttpError` as it says, a chorus
    error by :func:`~gateway.http.http_error`, and any Redis failure a 503 (retry later)."""

    @functools.wraps(fn)
    async def wrapped(request: Request) -> Response:
        try:
            return await fn(request)
        except HttpError as exc:
            gateway(request).metrics.http_errors.labels(status=str(exc.status)).inc()
            return error_response(exc)
        except ChorusError as exc:
            return error_response(http_error(exc))
        except redis.RedisError as exc:
            # an exhausted pool, a lost connection or a server-state error: retry later, not a 500
            log.warning("redis error on %s: %s", request.url.path, exc)
            gateway(request).metrics.http_errors.labels(status="503").inc()
            return error_response(unavailable())

    return wrapped


def _flag(value: Any) -> bool:
    return value in (True, 1, "1", "true", "yes")


# -- synthesis ----------------------------------------------------------------------------


@answers_errors
async def speech(request: Request) -> Response:
    """``POST /v1/audio/speech`` (OpenAI's): enqueue and stream the audio in the one response."""
    gw = gateway(request)
    tenant = await gw.auth.tenant(request)
    async with gw.call(tenant):
        body = await read_json(request, gw.config.max_body_bytes)
        fmt, out_rate = audio_format(body, "mp3")
        gw.streams.take(tenant)  # before anything is enqueued: a refusal (429 / 503) leaves no work behind
        try:
            started = time.perf_counter()
            rid, _, sample_rate = await gw.enqueue(tenant, body)
        except BaseException:
            gw.streams.give(tenant)
            raise
    gw.metrics.requests.labels(endpoint="speech", format=fmt).inc()
    keep = _flag(body.get("keep"))
    return audio_response(gw, rid, tenant, fmt, out_rate, sample_rate, keep=keep, started=started, held=True)


@answers_errors
async def create_request(request: Request) -> Response:
    """``POST /v1/requests``: enqueue; 202 with the request id, its segments, sample rate and each
    segment's voice, and the links to its audio and events."""
    gw = gateway(request)
    tenant = await gw.auth.tenant(request)
    async with gw.call(tenant):
        body = await read_json(request, gw.config.max_body_bytes)
        res = await gw.enqueue_result(tenant, body)
    gw.metrics.requests.labels(endpoint="requests", format="-").inc()
    rid = res.request_id
    links = {"audio": f"/v1/requests/{rid}/audio", "events": f"/v1/requests/{rid}/events"}
    answer = {
        "id": rid,
        "segments": res.segments,
        "sample_rate": res.sample_rate,
        "voices": list(res.voices),
        "links": links,
    }
    return JSONResponse(answer, status_code=202)


@answers_errors
async def request_audio(request: Request) -> Response:
    """``GET /v1/requests/{rid}/audio``: the request's audio in ``?format=`` (wav by default)."""
    gw = gateway(request)
    tenant = await gw.auth.tenant(request)
    rid = request.path_params["rid"]
    if request.method != "HEAD":
        gw.streams.check(tenant)  # a refusal (429 / 503) costs no Redis call
    async with gw.call(tenant):
        keys = await gw.owned(tenant, rid)
        fmt, out_rate = audio_format(request.query_params, "wav")
        sample_rate = await gw.sample_rate(keys, rid)
        pcm = await gw.finished_pcm(keys, rid)
        if pcm is not None:  # finished: one complete file, encoded within the tenant's call slot
            if request.method != "HEAD":
                gw.metrics.requests.labels(endpoint="audio", format=fmt).inc()
            return await complete_audio(rid, pcm, fmt, sample_rate, out_rate, head=request.method == "HEAD")
    if request.method == "HEAD":  # players probe first: answer the headers, start nothing, cancel nothing
        return audio_head(rid, fmt, out_rate, sample_rate)
    gw.metrics.requests.labels(endpoint="audio", format=fmt).inc()
    keep = _flag(request.query_params.get("keep", "1"))
    return audio_response(gw, rid, tenant, fmt, out_rate, sample_rate, keep=keep, started=None)


@answers_errors
async def request_events(request: Request) -> Response:
    """``GET /v1/requests/{rid}/events``: Server-Sent Events, resumed after ``Last-Event-ID``."""
    gw = gateway(request)
    tenant = await gw.auth.tenant(request)
    rid = request.path_params["rid"]
    resume = request.headers.get("last-event-id") or request.query_params.get("last_event_id")
    if request.method != "HEAD":
        gw.streams.check(tenant)  # a refusal (429 / 503) costs no Redis call
    async with gw.call(tenant):
        keys = await gw.owned(tenant, rid)
        state = await gw.replay(keys, rid, stream_position(resume)) if resume else StreamState(rid)
    keep = _flag(request.query_params.get("keep", "1"))
    if request.method == "HEAD":
        return events_head()
    response = events_response(gw, rid, tenant, state, resume=bool(resume), keep=keep)
    gw.metrics.requests.labels(endpoint="events", format="sse").inc()
    return response


@answers_errors
async def delete_request(request: Request) -> Response:
    """``DELETE /v1/requests/{rid}``: cancel; ``cancelled`` says whether there was anything to stop."""
    gw = gateway(request)
    tenant = await gw.auth.tenant(request)
    rid = request.path_params["rid"]
    async with gw.call(tenant):
        keys = await gw.owned(tenant, rid)
        return JSONResponse({"id": rid, "cancelled": await gw.cancel(keys, rid)})


async def websocket(ws: WebSocket) -> None:
    await serve_websocket(gateway(ws), ws)


# -- catalog ------------------------------------------------------------------------------


@answers_errors
async def models(request: Request) -> Response:
    """``GET /v1/models``: OpenAI's model names (all served alike) and the catalog's models."""
    gw = gateway(request)
    tenant = await gw.auth.tenant(request)
    async with gw.call(tenant):
        data: list[dict[str, Any]] = [{"id": m, "object": "model", "owned_by": "chorus"} for m in OPENAI_MODELS]
        data += [
            {"id": s.id, "object": "model", "owned_by": "chorus", "version": s.version, "languages": list(s.languages)}
            for s in gw.catalog.models.values()
        ]
        return JSONResponse({"object": "list", "data": data})


@answers_errors
async def voices(request: Request) -> Response:
    """``GET /v1/audio/voices``: the catalog's voices, by name; OpenAI's voice names are aliases."""
    gw = gateway(request)
    tenant = await gw.auth.tenant(request)
    async with gw.call(tenant):
        defaults = set(gw.catalog.default_voices.values())
        ordered = sorted(gw.catalog.voices.values(), key=lambda v: v.name)
        data = [
            {"id": v.name, "language": v.lang, "model": v.model, "gender": v.gender, "default": v.name in defaults}
            for v in ordered
        ]
        return JSONResponse({"object": "list", "data": data, "openai_aliases": list(OPENAI_VOICES)})


# -- operations ---------------------------------------------------------------------------


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    """200 with the number of live workers; 503 when Redis is unreachable or no worker is live."""
    try:
        workers = await gateway(request).live_workers()
    except redis.RedisError as exc:
        return JSONResponse({"status": "unavailable", "redis": str(exc)}, status_code=503)
    if workers == 0:
        return JSONResponse({"status": "no workers", "workers": 0}, status_code=503)
    return JSONResponse({"status": "ready", "workers": workers})


async def metrics(request: Request) -> Response:
    """``/metrics`` on the API port: only with the metrics token, and a 404 when none is configured."""
    token = gateway(request).config.metrics_token
    if token is None:
        raise HTTPException(404)
    if not bearer_matches(request, token):
        unauthorized = HttpError(401, "metrics need the metrics token", "unauthorized", {"WWW-Authenticate": "Bearer"})
        return error_response(unauthorized)
    return await open_metrics(request)


async def open_metrics(request: Request) -> Response:
    """``/metrics`` without a token, for a loopback port (:func:`gateway.app.create_metrics_app`)."""
    body, content_type = await gateway(request).render_metrics()
    return Response(body, media_type=content_type)


async def page(request: Request) -> Response:
    """``/``: a page that plays a stream (it asks for a key unless the gateway runs without auth)."""
    html = resources.files("gateway").joinpath("static/index.html").read_text(encoding="utf-8")
    return HTMLResponse(html.replace("__AUTH__", "true" if gateway(request).config.auth else "false"))


async def http_exception(request: Request, exc: Exception) -> Response:
    """Starlette's own refusals (no such route, a method not allowed) in OpenAI's error shape."""
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    code = {404: "not_found", 405: "method_not_allowed"}.get(status, "http_error")
    detail = exc.detail if isinstance(exc, HTTPException) else "internal error"
    headers = dict(getattr(exc, "headers", None) or {})
    return error_response(HttpError(status, f"{request.method} {request.url.path}: {detail}", code, headers))


ROUTES: tuple[BaseRoute, ...] = (
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
)
"""Every route of the API app, in match order."""
