"""Listening to one request: its audio frames in order, exactly once, as the listener should hear them.

Frames are read from the request's audio stream (``chorus:{r:<id>}:audio``) with
XREAD BLOCK, put back in (segment, index) order, de-duplicated, and emitted until
the end frame. A segment synthesised again (a higher ``attempt``) supersedes the
earlier attempt without a gap or a repeat (:class:`Reorderer`). An error frame
raises :class:`~chorus_client.errors.RequestFailed` once the frames before it are
out; a cancelled end raises :class:`~chorus_client.errors.RequestCancelled`; silence
longer than the timeout raises :class:`~chorus_client.errors.StreamTimeout`; a request
that vanished from Redis raises ``RequestFailed("request_lost")``. A Redis outage is
ridden out with backoff, reading on from the last entry id, for up to the timeout.

:func:`listen` is the sans-I/O operation (see :mod:`chorus_client.drive`); the sync
and asyncio subscribers run it with their driver.
"""

from __future__ import annotations

import logging
import re
import time
from typing import Any

import redis

from chorus_client.constants import EndStatus, backoff
from chorus_client.drive import Command, Emit, Op, Sleep
from chorus_client.errors import (
    ProtocolError,
    RedisUnavailable,
    RequestCancelled,
    RequestFailed,
    RequestNotFound,
    StreamTimeout,
)
from chorus_client.keys import Keys
from chorus_client.outage import is_outage, translate
from chorus_client.protocol import AudioFrame, EndFrame, ErrorFrame, HeaderFrame, decode_frame

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "Reorderer",
    "StreamState",
    "listen",
    "parse_position",
    "position_of",
    "resume",
    "resume_op",
    "stream_entries",
]

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
        self._failed: set[int] = set()
        self.duplicates = 0
        self.superseded = 0
        self.skipped = 0
        """Frames dropped because their segment failed (skip mode)."""

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
        return self._release()

    def skip(self, segment: int) -> list[AudioFrame]:
        """Segment ``segment`` failed (an error frame names it): drop its frames not handed out yet and
        continue after it once the segments before it are out; returns the frames now ready."""
        if segment < self.segment:
            return []
        self._failed.add(segment)
        mine = [k for k in self._held if k[0] == segment]
        for k in mine:
            del self._held[k]
        self.skipped += len(mine)
        return self._release()

    def _release(self) -> list[AudioFrame]:
        ready: list[AudioFrame] = []
        while True:
            if self.segment in self._failed:
                self._failed.discard(self.segment)
                self._attempt.pop(self.segment, None)
                self.segment, self.index = self.segment + 1, 0
                continue
            nxt = self._held.pop((self.segment, self.index), None)
            if nxt is None:
                return ready
            ready.append(nxt)
            if nxt.last:
                self._attempt.pop(self.segment, None)
                self.segment, self.index = self.segment + 1, 0
            else:
                self.index += 1

    @property
    def held(self) -> int:
        return len(self._held)


class StreamState:
    """Everything a subscriber knows about one request's stream so far.

    ``skip_failed`` False (the default): the first error frame ends the stream, after the frames
    ready before it (RequestFailed). True: a segment an error frame names is skipped, the listener
    hears every other segment in order, and RequestFailed (the first failure; ``failures`` holds
    them all) is raised once the stream has ended. An error frame without a segment always ends it.
    """

    def __init__(self, request_id: str, *, skip_failed: bool = False) -> None:
        self.request_id = request_id
        self.skip_failed = skip_failed
        self.failures: list[ErrorFrame] = []
        """Every error frame seen, in stream order."""
        self.redeliver: list[tuple[AudioFrame, str]] = []
        """Frames (with positions) to hand out before reading on: set by :func:`resume`."""
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
                self.failures.append(frame)
                if self.skip_failed and frame.segment is not None:
                    ready.extend(self.order.skip(frame.segment))
                    continue
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
        if self.finished and self.failures:  # skip mode: the segments that failed, reported at the end
            first = self.failures[0]
            raise RequestFailed(self.request_id, first.code, first.message, first.segment)

    def outage(self, exc: Exception, url: str, timeout_s: float) -> float:
        """Redis went away mid-stream: how long to wait before reading on from ``last_id``.

        Backs off as :func:`chorus_client.constants.backoff` does (0.1 s doubling to 2 s); raises
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


_POSITION_RE = re.compile(r"(\d{1,20}-\d{1,20})(?:/(\d{1,6}))?")


def position_of(entry_id: str, i: int, released: int) -> str:
    """The position of the ``i``-th (0-based) of ``released`` frames that entry ``entry_id`` released:
    the entry id for the last of them, else ``<entry id>/<i + 1>`` (frames of that release handed out)."""
    return entry_id if i == released - 1 else f"{entry_id}/{i + 1}"


def parse_position(position: str) -> tuple[str, int | None]:
    """``<ms>-<seq>`` or ``<ms>-<seq>/<k>`` -> (entry id, k or None); ProtocolError for anything else."""
    m = _POSITION_RE.fullmatch(position) if isinstance(position, str) else None
    if m is None or any(int(part) >= 2**64 for part in m.group(1).split("-")) or m.group(2) == "0":
        raise ProtocolError("position", f"{position!r} is not a stream position (<ms>-<seq> or <ms>-<seq>/<k>)")
    return m.group(1), int(m.group(2)) if m.group(2) else None


def resume(
    request_id: str, entries: list[tuple[bytes, dict[bytes, bytes]]], position: str, *, skip_failed: bool = False
) -> StreamState:
    """The listener's state after ``position``, rebuilt from the audio stream's entries up to its entry
    (XRANGE ``-`` to it): frames handed out before are not handed out again, and frames the position's
    entry released after the ``k`` already handed out are handed out first (:func:`listen` does)."""
    entry_id, handed = parse_position(position)
    state = StreamState(request_id, skip_failed=skip_failed)
    for n, entry in enumerate(entries):
        released = state.feed([entry])
        if n == len(entries) - 1 and entry[0].decode() == entry_id and handed is not None:
            state.redeliver = [(f, position_of(entry_id, i, len(released))) for i, f in enumerate(released)][handed:]
        if state.error is not None:
            break
    state.last_id = entry_id
    return state


def resume_op(keys: Keys, request_id: str, position: str, *, skip_failed: bool = False) -> Op[StreamState]:
    """:func:`resume` with the entries read from Redis."""
    entry_id, _ = parse_position(position)
    entries = yield Command(("XRANGE", keys.for_request(request_id).audio(request_id), "-", entry_id))
    return resume(request_id, list(entries or []), position, skip_failed=skip_failed)


def listen(
    keys: Keys, state: StreamState, *, url: str, timeout_s: float = DEFAULT_TIMEOUT_S, check_exists: bool = True
) -> Op[None]:
    """Emit ``(frame, position)`` for each audio frame of ``state``'s request in order, from ``state``
    on (a fresh one, or one :func:`resume` rebuilt); after ``position`` (:func:`position_of`: the
    stream entry id, with ``/<k>`` when the entry released several frames and only ``k`` of them are
    handed out) reading resumes with no frame twice or missing. ``url`` names the server in errors.

    Raises RequestNotFound (``check_exists`` and neither the request nor its stream exist),
    RequestFailed, RequestCancelled, StreamTimeout, RedisUnavailable (an outage longer than the
    timeout) or the translated error of any other Redis error."""
    keys = keys.for_request(state.request_id)
    audio, request_key = keys.audio(state.request_id), keys.request(state.request_id)
    if check_exists:
        try:  # two calls: the audio stream and the request hash are in different slots (Redis Cluster)
            found = (yield Command(("EXISTS", audio))) or (yield Command(("EXISTS", request_key)))
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise RedisUnavailable(url, str(exc)) from exc
        if not found:
            raise RequestNotFound(state.request_id)
    redeliver, state.redeliver = state.redeliver, []
    for item in redeliver:
        yield Emit(item)
    if state.error is not None or state.finished:
        state.check_complete()
    while not state.finished:
        try:
            resp = yield Command(("XREAD", "COUNT", READ_COUNT, "BLOCK", BLOCK_MS, "STREAMS", audio, state.last_id))
        except redis.RedisError as exc:
            if not is_outage(exc):
                raise translate(exc, url) from exc
            yield Sleep(state.outage(exc, url, timeout_s))
            continue
        state.reconnected()
        for entry in stream_entries(resp):
            released = state.feed([entry])
            for i, frame in enumerate(released):
                yield Emit((frame, position_of(state.last_id, i, len(released))))
            if state.error is not None:
                break
        state.check_complete()
        if not state.finished and state.lost_check_due():
            exists = yield Command(("EXISTS", request_key))
            if not exists:
                raise state.lost()
        state.check_timeout(timeout_s)
