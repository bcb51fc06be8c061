"""The WebSocket endpoint ``/v1/ws``: many requests over one socket, streamed one after another.

Client -> server, JSON text only: a request (the body of ``/v1/requests``) or
``{"cancel": true}`` (cancels the request being streamed). Server -> client: JSON
events (``header`` with the request id, ``end``, ``error``) and binary frames of
PCM16 little-endian mono audio at the header's ``sample_rate``.

A request sent while another streams waits in a small per-socket queue
(:attr:`~gateway.service.GatewayConfig.ws_queue`) and is served in order; a full
queue answers an ``error`` event (code ``ws_queue_full``). The socket holds one
of its tenant's stream slots while open; over the tenant's limit (or the
gateway's) the handshake is refused with HTTP 429 (503) and ``Retry-After``
where the server supports denial responses (uvicorn does), else the socket
closes with 4429 (1013). Close codes: 1003 a binary message, 1007 a message
that is not a JSON object, 1009 one over the body limit, 4401 no or a revoked
API key (re-checked every ``key_recheck_s``). Closing the socket cancels the request being
streamed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import deque
from typing import Any

import redis
from starlette.websockets import WebSocket, WebSocketDisconnect

from chorus_client.constants import EndStatus
from chorus_client.keys import Keys
from gateway.http import MAX_JSON_DEPTH, HttpError, error_response, http_error, json_depth, unavailable
from gateway.service import Gateway
from gateway.subscriber import StreamState
from shared.errors import ChorusError, RequestCancelled, RequestFailed

__all__ = ["serve_websocket"]

log = logging.getLogger(__name__)


async def serve_websocket(gw: Gateway, ws: WebSocket) -> None:
    try:
        tenant, digest = await gw.auth.authenticate(ws)
    except HttpError as exc:  # accepted first: a browser can read a close code, not a refused handshake
        await ws.accept()
        await ws.close(code=4401, reason=exc.message[:120])
        return
    except redis.RedisError:
        await ws.accept()
        await ws.close(code=1013, reason="the queue is unavailable; retry shortly")
        return
    try:
        gw.streams.take(tenant)
    except HttpError as exc:
        # refused at the handshake with the HTTP answer (429 / 503 and Retry-After) where the server
        # supports denial responses: a refusal then costs no upgrade and no close handshake
        if "websocket.http.response" in ws.scope.get("extensions", {}):
            await ws.send_denial_response(error_response(exc))
            return
        await ws.accept()
        await ws.close(code=4429 if exc.status == 429 else 1013, reason=exc.message[:120])
        return
    try:
        await ws.accept()
        await _Session(gw, ws, tenant, digest).run()
    finally:
        gw.streams.give(tenant)


class _Session:
    """One open socket: a reader, a server that streams queued requests in order, a key watcher."""

    def __init__(self, gw: Gateway, ws: WebSocket, tenant: str, digest: str | None) -> None:
        self.gw, self.ws, self.tenant, self.digest = gw, ws, tenant, digest
        self.waiting: deque[dict[str, Any]] = deque()
        self.wakeup = asyncio.Event()
        self.current: tuple[Keys, str] | None = None
        self.closed = False

    async def run(self) -> None:
        tasks = [asyncio.ensure_future(t) for t in (self._read(), self._serve(), self._watch_key())]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if self.current is not None:  # the socket went away mid-request: stop the work
                await asyncio.shield(self.gw.cancel(*self.current))
        for task in done:
            exc = task.exception()
            if exc is not None and not isinstance(exc, (WebSocketDisconnect, RuntimeError, OSError)):
                log.error("websocket session of %s failed: %r", self.tenant, exc)

    async def _close(self, code: int, reason: str) -> None:
        if not self.closed:
            self.closed = True
            with contextlib.suppress(RuntimeError, OSError, WebSocketDisconnect):
                await self.ws.close(code=code, reason=reason[:120])

    async def _send(self, event: dict[str, Any]) -> None:
        await self.ws.send_text(json.dumps(event, separators=(",", ":")))

    async def _read(self) -> None:
        limit = self.gw.config.max_body_bytes
        while True:
            msg = await self.ws.receive()
            if msg["type"] == "websocket.disconnect":
                return
            if msg.get("bytes") is not None:
                await self._close(1003, "binary messages are not accepted: send JSON text")
                return
            text = msg.get("text") or ""
            if len(text) > limit:
                await self._close(1009, f"message larger than {limit} bytes")
                return
            try:
                body = json.loads(text)
            except (ValueError, RecursionError):
                body = None
            if not isinstance(body, dict) or json_depth(body, MAX_JSON_DEPTH) > MAX_JSON_DEPTH:
                await self._close(1007, "each message must be a JSON object")
                return
            if body.get("cancel"):
                if self.current is not None:
                    await self.gw.cancel(*self.current)
                continue
            if len(self.waiting) >= self.gw.config.ws_queue:
                message = f"{len(self.waiting)} requests already wait on this socket"
                await self._send({"event": "error", "status": 429, "code": "ws_queue_full", "message": message})
                continue
            self.waiting.append(body)
            self.wakeup.set()

    async def _watch_key(self) -> None:
        if self.digest is None:
            await asyncio.Event().wait()  # no keys (--no-auth): nothing to re-check
        while True:
            await asyncio.sleep(self.gw.config.key_recheck_s)
            try:
                valid = await self.gw.auth.key_valid(self.digest)
            except redis.RedisError:
                continue  # an outage is not a revocation
            if not valid:
                await self._close(4401, "API key revoked")
                return

    async def _serve(self) -> None:
        gw = self.gw
        while True:
            while not self.waiting:
                self.wakeup.clear()
                await self.wakeup.wait()
            body = self.waiting.popleft()
            try:
                async with gw.call(self.tenant):
                    rid, segments, sample_rate = await gw.enqueue(self.tenant, body)
            except (HttpError, ChorusError, redis.RedisError) as exc:
                if isinstance(exc, HttpError):
                    err = exc
                else:
                    err = http_error(exc) if isinstance(exc, ChorusError) else unavailable()
                await self._send({"event": "error", "status": err.status, "code": err.code, "message": err.message})
                continue
            self.current = (gw.keys.for_request(rid), rid)
            await self._send({"event": "header", "id": rid, "segments": segments, "sample_rate": sample_rate})
            try:
                async for frame, _ in gw.frames(StreamState(rid), time.perf_counter()):
                    await self.ws.send_bytes(frame.pcm)
                await self._send({"event": "end", "id": rid, "status": EndStatus.OK.value})
            except RequestCancelled as exc:
                await self._send({"event": "end", "id": rid, "status": exc.code, "message": exc.message})
            except RequestFailed as exc:
                await self._send({"event": "error", "id": rid, "status": exc.code, "message": exc.message})
            except (ChorusError, redis.RedisError) as exc:
                await self._send({"event": "error", "id": rid, "status": "unavailable", "message": str(exc)})
            self.current = None
