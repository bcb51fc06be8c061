"""A request's audio stream as a streaming HTTP response: encoded audio, or Server-Sent Events.

Both responses hold one of the tenant's stream slots until they end, however they
end (:class:`HeldStream`), and cancel the request when the client goes away
before its end, unless the client asked to ``keep`` it. A ``HEAD`` answers the
headers a ``GET`` would send and starts nothing (players probe first).

Events (``text/event-stream``): ``header`` (segments, sample rate, voice), then
one ``audio`` per frame (base64 PCM16) whose id is the stream position after it,
so ``Last-Event-ID`` resumes exactly, then ``end`` or ``error``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import redis
from starlette.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from chorus_client.protocol import EndFrame, HeaderFrame, decode_frame
from gateway.encode import encode_whole, make_encoder
from gateway.service import Gateway
from gateway.subscriber import StreamState
from shared.errors import ChorusError, RequestCancelled, RequestFailed, StreamTimeout

__all__ = ["HeldStream", "audio_head", "audio_response", "complete_audio", "events_head", "events_response", "sse"]

log = logging.getLogger(__name__)
_NO_STORE = {"Cache-Control": "no-store"}


class HeldStream(StreamingResponse):
    """A streaming response that gives its stream slot back however it ends (even unstarted)."""

    def __init__(self, content: AsyncIterator[Any], release: Callable[[], None], **kwargs: Any) -> None:
        super().__init__(content, **kwargs)
        self._release = release

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._release()


def audio_head(rid: str, fmt: str, out_rate: int | None, sample_rate: int) -> Response:
    """The headers of :func:`audio_response`, without a body."""
    encoder = make_encoder(fmt, sample_rate, out_rate)
    headers = {"X-Request-Id": rid, "X-Sample-Rate": str(encoder.sample_rate), **_NO_STORE}
    return Response(headers=headers, media_type=encoder.content_type)


async def complete_audio(
    rid: str, pcm: bytes, fmt: str, sample_rate: int, out_rate: int | None, *, head: bool
) -> Response:
    """A finished request's audio (all of ``pcm``) as one complete file of ``fmt`` that describes
    itself (:func:`gateway.encode.encode_whole`, off the event loop), with its Content-Length;
    ``head``: the same headers, no body."""
    body, media_type, rate = await asyncio.to_thread(encode_whole, fmt, pcm, sample_rate, out_rate)
    headers = {"X-Request-Id": rid, "X-Sample-Rate": str(rate), **_NO_STORE}
    if head:
        return Response(media_type=media_type, headers={**headers, "Content-Length": str(len(body))})
    return Response(body, media_type=media_type, headers=headers)


def audio_response(
    gw: Gateway,
    rid: str,
    tenant: str,
    fmt: str,
    out_rate: int | None,
    sample_rate: int,
    *,
    keep: bool,
    started: float | None,
    held: bool = False,
) -> Response:
    """Stream the request's audio encoded as ``fmt``; takes a stream slot unless the caller ``held`` one already.

    ``started`` (a ``time.perf_counter()``) times the first frame into the metrics.
    """
    keys = gw.keys.for_request(rid)
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
        except ChorusError as exc:
            log.warning("request %s ended early: %s", rid, exc)
            gw.metrics.errors.labels(code=type(exc).__name__).inc()
            finished = isinstance(exc, RequestCancelled)
        finally:
            if not finished and not keep:
                await asyncio.shield(gw.cancel(keys, rid))  # the client went away: stop the work

    headers = {"X-Request-Id": rid, "X-Sample-Rate": str(encoder.sample_rate), **_NO_STORE}
    return HeldStream(body(), lambda: gw.streams.give(tenant), media_type=encoder.content_type, headers=headers)


def events_head() -> Response:
    """The headers of :func:`events_response`, without a body."""
    return Response(media_type="text/event-stream", headers=_NO_STORE)


def events_response(gw: Gateway, rid: str, tenant: str, state: StreamState, *, resume: bool, keep: bool) -> Response:
    """Stream the request's frames from ``state`` on as Server-Sent Events; takes a stream slot.

    ``resume``: ``state`` was replayed to a Last-Event-ID, so the ``header`` event is not sent again.
    """
    keys = gw.keys.for_request(rid)
    gw.streams.take(tenant)

    async def events() -> AsyncIterator[str]:
        finished = False
        try:
            header: Any = await gw.stream_r.xrange(keys.audio(rid), "-", "+", count=1)
            if header and not resume:
                frame = decode_frame(header[0][1][b"f"])
                if isinstance(frame, HeaderFrame):
                    data = {"segments": frame.segments, "sample_rate": frame.sample_rate, "voice": frame.voice}
                    yield sse("header", data, None)
            async for frame, position in gw.frames(state):
                data = {
                    "seg": frame.segment,
                    "idx": frame.index,
                    "last": frame.last,
                    "sr": frame.sample_rate,
                    "pcm": base64.b64encode(frame.pcm).decode("ascii"),
                }
                yield sse("audio", data, position)
            finished = True
            end = state.end or EndFrame(0)
            yield sse("end", {"segments": end.segments, "status": end.status}, state.last_id)
        except RequestFailed as exc:
            finished = True
            yield sse("error", {"code": exc.code, "message": exc.message, "segment": exc.segment}, state.last_id)
        except StreamTimeout as exc:
            yield sse("error", {"code": "timeout", "message": str(exc)}, state.last_id)
        except (ChorusError, redis.RedisError) as exc:
            yield sse("error", {"code": "unavailable", "message": str(exc)}, state.last_id)
        finally:
            if not finished and not keep:
                await asyncio.shield(gw.cancel(keys, rid))

    headers = {**_NO_STORE, "X-Accel-Buffering": "no"}
    return HeldStream(events(), lambda: gw.streams.give(tenant), media_type="text/event-stream", headers=headers)


def sse(event: str, data: dict[str, Any], event_id: str | None) -> str:
    """One Server-Sent Event (``id:`` only when ``event_id`` is given)."""
    head = f"id: {event_id}\n" if event_id else ""
    return f"{head}event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"
