"""Subscriber API, sync and asyncio: a request's audio, in order, exactly as the client should hear it.

Both run the one sans-I/O operation :func:`chorus_client.listen.listen` with their
driver (:mod:`chorus_client.drive`); they differ only in how they wait on Redis.
See :mod:`chorus_client.listen` for the semantics (order, retries, errors, outages).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import redis
import redis.asyncio as aredis

from chorus_client.drive import iterate_async, iterate_sync
from chorus_client.keys import Keys
from chorus_client.listen import DEFAULT_TIMEOUT_S, Reorderer, StreamState, listen, stream_entries
from chorus_client.outage import client_url
from chorus_client.protocol import AudioFrame

__all__ = ["AsyncSubscriber", "Reorderer", "StreamState", "Subscriber", "stream_entries"]


class Subscriber:
    def __init__(self, client: redis.Redis, keys: Keys | None = None) -> None:
        self._r = client
        self.keys = keys or Keys()

    def frames(self, request_id: str, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> Iterator[AudioFrame]:
        """Yield the request's audio frames in order until its end marker."""
        for frame, _ in self.positions(StreamState(request_id), timeout_s=timeout_s, check_exists=True):
            yield frame

    def positions(
        self, state: StreamState, *, timeout_s: float = DEFAULT_TIMEOUT_S, check_exists: bool = False
    ) -> Iterator[tuple[AudioFrame, str]]:
        """Frames in order from ``state`` on, each with the stream position to resume after."""
        op = listen(self.keys, state, url=client_url(self._r), timeout_s=timeout_s, check_exists=check_exists)
        yield from iterate_sync(self._r, op)


class AsyncSubscriber:
    def __init__(self, client: aredis.Redis, keys: Keys | None = None) -> None:
        self._r = client
        self.keys = keys or Keys()

    async def frames(self, request_id: str, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> AsyncIterator[AudioFrame]:
        async for frame, _ in self.positions(StreamState(request_id), timeout_s=timeout_s, check_exists=True):
            yield frame

    async def positions(
        self, state: StreamState, *, timeout_s: float = DEFAULT_TIMEOUT_S, check_exists: bool = False
    ) -> AsyncIterator[tuple[AudioFrame, str]]:
        """Frames in order from ``state`` on (a fresh one, or one replayed to a position), each with
        the stream position after which reading resumes without a frame twice or missing."""
        op = listen(self.keys, state, url=client_url(self._r), timeout_s=timeout_s, check_exists=check_exists)
        async for item in iterate_async(self._r, op):
            yield item
