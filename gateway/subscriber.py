"""Subscriber API, sync and asyncio: a request's audio, in order, exactly as the client should hear it.

A Redis outage mid-stream is ridden out: the subscriber reconnects with backoff
and reads on from the last entry id it saw, up to ``timeout_s`` of outage.

Frames are read from the request's audio stream with XREAD BLOCK, reordered by
(segment, index), de-duplicated, and yielded until the end marker. An error
frame raises :class:`~shared.errors.RequestFailed`; silence for longer than the
timeout raises :class:`~shared.errors.StreamTimeout`. Both clients share the
pure :class:`StreamState`; they differ only in how they wait on Redis.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import redis
import redis.asyncio as aredis

from shared.connection import client_url, is_outage, translate
from shared.constants import EndStatus, backoff
from shared.errors import (
    ProtocolError,
    RedisUnavailable,
    RequestCancelled,
    RequestFailed,
    RequestNotFound,
    StreamTimeout,
)
from shared.keys import Keys
from shared.protocol import AudioFrame, EndFrame, ErrorFrame, HeaderFrame, decode_frame

__all__ = ["AsyncSubscriber", "Reorderer", "StreamState", "Subscriber", "stream_entries"]

log = logging.getLogger(__name__)
DEFAULT_TIMEOUT_S = 60.0
BLOCK_MS = 1000
READ_COUNT = 256
LOST_CHECK_S = 2.0
"""A stream quiet this long makes the subscriber check that its request still exists."""


class Reorderer:
    """Puts audio frames back in (segment, index) order, drops duplicates and superseded attempts.

    A segment synthesised again after its worker died (a higher ``attempt``)
    supersedes the earlier attempt: frames of the earlier attempt not yet handed
    out are dropped, and the new attempt continues after the last frame handed
    out, so what the listener hears has no duplicate and no gap.
    """

    def __init__(self) -> None:
        self.segment = 0
        self.index = 0
        self._held: dict[tuple[int, int], AudioFrame] = {}
        self._attempt: dict[int, int] = {}
        self.duplicates = 0
        self.superseded = 0

    def push(self, frame: AudioFrame) -> list[AudioFrame]:
        key = (frame.segment, frame.index)
        if key < (self.segment, self.index):
            self.duplicates += 1
            return []
        current = self._attempt.get(frame.segment, 0)
        if frame.attempt < current:
            self.superseded += 1
            return []
        if frame.attempt > current:
            self._attempt[frame.segment] = frame.attempt
            stale = [k for k, f in self._held.items() if k[0] == frame.segment and f.attempt < frame.attempt]
            for k in stale:
                del self._held[k]
            self.superseded += len(stale)
        elif key in self._held:
            self.duplicates += 1
            return []
        self._held[key] = frame
        ready: list[AudioFrame] = []
        while (nxt := self._held.pop((self.segment, self.index), None)) is not None:
            ready.append(nxt)
            if nxt.last:
                self._attempt.pop(self.segment, None)
                self.segment, self.index = self.segment + 1, 0
            else:
                self.index += 1
        return ready

    @property
    def held(self) -> int:
        return len(self._held)


class StreamState:
    """Everything a subscriber knows about one request's stream so far."""

    def __init__(self, request_id: str) -> None:
        self.request_id = request_id
        self.last_id = "0"
        self.header: HeaderFrame | None = None
        self.end: EndFrame | None = None
        self.order = Reorderer()
        self.error: RequestFailed | None = None
        self.last_progress = time.monotonic()
        self._outage_since: float | None = None
        self._backoff: float | None = None
        self._lost_checked = 0.0

    def feed(self, entries: list[tuple[bytes, dict[bytes, bytes]]]) -> list[AudioFrame]:
        ready: list[AudioFrame] = []
        for entry_id, fields in entries:
            self.last_id = entry_id.decode()
            self.last_progress = time.monotonic()
            raw = fields.get(b"f")
            if raw is None:
                raise ProtocolError("f", f"audio stream entry {self.last_id} has no 'f' field")
            frame = decode_frame(raw)
            if isinstance(frame, AudioFrame):
                ready.extend(self.order.push(frame))
            elif isinstance(frame, HeaderFrame):
                self.header = frame
            elif isinstance(frame, ErrorFrame):
                # deliver what came before the error, then raise (see check_complete)
                self.error = RequestFailed(self.request_id, frame.code, frame.message, frame.segment)
                break
            else:
                self.end = frame
        return ready

    @property
    def finished(self) -> bool:
        # The end marker is written after every segment's frames, so once it is seen
        # the reorderer must have reached the last segment. A cancelled marker ends at once.
        if self.end is not None and self.end.status == EndStatus.CANCELLED:
            return True
        return self.end is not None and self.order.segment >= self.end.segments

    def check_complete(self) -> None:
        """Raise a pending error frame; after the end marker a gap is an error, not a hang."""
        if self.error is not None:
            raise self.error
        if self.end is not None and self.end.status == EndStatus.CANCELLED:
            raise RequestCancelled(self.request_id, self.order.segment)
        if self.end is not None and not self.finished:
            raise RequestFailed(
                self.request_id,
                "incomplete",
                f"end marker after {self.order.segment} of {self.end.segments} segments",
                self.order.segment,
            )

    def outage(self, exc: Exception, url: str, timeout_s: float) -> float:
        """Redis went away mid-stream: how long to wait before reading on from ``last_id``.

        Backs off as :func:`shared.constants.backoff` does (0.1 s doubling to 2 s); raises
        :class:`RedisUnavailable` once the outage has lasted longer than ``timeout_s``.
        """
        now = time.monotonic()
        if self._outage_since is None:  # log once per outage, not once per retry
            self._outage_since, self._backoff = now, None
            log.warning("request %s: redis unavailable (%s); reading on from %s", self.request_id, exc, self.last_id)
        if now - self._outage_since > timeout_s:
            raise RedisUnavailable(url, f"{exc} (for {now - self._outage_since:.1f}s)") from exc
        self._backoff = backoff(self._backoff)
        return self._backoff

    def lost_check_due(self) -> bool:
        """Whether to look for the request itself: no frame for a while (and not since the last look).

        A request whose metadata is gone (a FLUSHALL, a restart without persistence, an
        eviction) will never end; the listener is told so instead of waiting for its timeout.
        """
        now = time.monotonic()
        if now - self.last_progress < LOST_CHECK_S or now - self._lost_checked < LOST_CHECK_S:
            return False
        self._lost_checked = now
        return True

    def lost(self) -> RequestFailed:
        return RequestFailed(
            self.request_id,
            "request_lost",
            "the request is gone from Redis (flushed, evicted, expired or restarted without persistence) "
            "and will not finish",
            None,
        )

    def reconnected(self) -> None:
        if self._outage_since is not None:
            self._outage_since = None
            self.last_progress = time.monotonic()

    def check_timeout(self, timeout_s: float) -> None:
        waited = time.monotonic() - self.last_progress
        if waited > timeout_s:
            raise StreamTimeout(self.request_id, waited)


def stream_entries(resp: Any) -> list[tuple[bytes, dict[bytes, bytes]]]:
    if not resp:
        return []
    entries: list[tuple[bytes, dict[bytes, bytes]]] = resp[0][1]
    return entries


class Subscriber:
    def __init__(self, client: redis.Redis, keys: Keys | None = None) -> None:
        self._r = client
        self.keys = keys or Keys()

    def frames(self, request_id: str, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> Iterator[AudioFrame]:
        """Yield the request's audio frames in order until its end marker."""
        keys = self.keys.for_request(request_id)
        audio = keys.audio(request_id)
        state = StreamState(request_id)
        try:
            if not self._r.exists(audio, keys.request(request_id)):
                raise RequestNotFound(request_id)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise RedisUnavailable(client_url(self._r), str(exc)) from exc
        while not state.finished:
            try:
                resp = self._r.xread({audio: state.last_id}, count=READ_COUNT, block=BLOCK_MS)
            except redis.RedisError as exc:
                if not is_outage(exc):
                    raise translate(exc, client_url(self._r)) from exc
                time.sleep(state.outage(exc, client_url(self._r), timeout_s))
                continue
            state.reconnected()
            yield from state.feed(stream_entries(resp))
            state.check_complete()
            if not state.finished and state.lost_check_due() and not self._r.exists(keys.request(request_id)):
                raise state.lost()
            state.check_timeout(timeout_s)


class AsyncSubscriber:
    def __init__(self, client: aredis.Redis, keys: Keys | None = None) -> None:
        self._r = client
        self.keys = keys or Keys()

    async def frames(self, request_id: str, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> AsyncIterator[AudioFrame]:
        keys = self.keys.for_request(request_id)
        try:
            if not await self._r.exists(keys.audio(request_id), keys.request(request_id)):
                raise RequestNotFound(request_id)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise RedisUnavailable(client_url(self._r), str(exc)) from exc
        async for frame, _ in self.positions(StreamState(request_id), timeout_s=timeout_s):
            yield frame

    async def positions(
        self, state: StreamState, *, timeout_s: float = DEFAULT_TIMEOUT_S
    ) -> AsyncIterator[tuple[AudioFrame, str]]:
        """Frames in order from ``state`` on (a fresh one, or one replayed to a position), each with
        the stream position after which reading resumes without a frame twice or missing."""
        keys = self.keys.for_request(state.request_id)
        audio, request_key = keys.audio(state.request_id), keys.request(state.request_id)
        while not state.finished:
            try:
                resp = await self._r.xread({audio: state.last_id}, count=READ_COUNT, block=BLOCK_MS)
            except redis.RedisError as exc:
                if not is_outage(exc):
                    raise translate(exc, client_url(self._r)) from exc
                await asyncio.sleep(state.outage(exc, client_url(self._r), timeout_s))
                continue
            state.reconnected()
            for entry in stream_entries(resp):
                for frame in state.feed([entry]):
                    yield frame, state.last_id
                if state.error is not None:
                    break
            state.check_complete()
            if not state.finished and state.lost_check_due() and not await self._r.exists(request_key):
                raise state.lost()
            state.check_timeout(timeout_s)
