"""Publishing audio: a segment's frames appended to its request's audio stream, each write with its expiry.

A worker writes a segment's audio as the model produces it, in frames of at most
``frame_ms`` (:func:`shared.audio.frame_pcm`), numbered from 0 within the segment
and tagged with the delivery attempt, so a subscriber can drop a superseded
attempt's frames. The newest frame is held back until the next arrives or the
segment ends, so the last one carries ``last``. Every write is XADD plus EXPIRE in
one MULTI on the stream's own slot: no frame can recreate a stream that never expires.
"""

from __future__ import annotations

import time

import redis

from chorus_client.constants import AUDIO_MAXLEN, PENDING_AUDIO_TTL_S
from chorus_client.protocol import AudioFrame, SegmentJob, encode_frame
from shared.audio import frame_pcm

__all__ = ["FrameSink", "append_frames"]


def append_frames(client: redis.Redis, key: str, frames: list[bytes], ttl_s: int) -> None:
    """XADD ``frames`` to an audio stream and set its expiry in one MULTI/EXEC (one hash slot):
    no frame can recreate a stream that never expires."""
    pipe = client.pipeline(transaction=True)
    for frame in frames:
        pipe.xadd(key, {"f": frame}, maxlen=AUDIO_MAXLEN, approximate=True)
    pipe.expire(key, ttl_s)
    pipe.execute()


class FrameSink:
    """Numbers a segment's frames and holds the newest one back so the last can be flagged."""

    def __init__(
        self,
        client: redis.Redis,
        key: str,
        job: SegmentJob,
        sample_rate: int,
        frame_ms: int,
        attempt: int = 1,
        ttl_s: int = PENDING_AUDIO_TTL_S,
    ) -> None:
        self._r, self._key, self._job = client, key, job
        self._sr, self._ms, self._ttl = sample_rate, frame_ms, ttl_s
        self._held: bytes | None = None
        self.attempt = attempt
        self.index = 0
        self.first_frame_at: float | None = None

    def _frame(self, pcm: bytes, last: bool) -> bytes:
        frame = AudioFrame(self._job.seq, self.index, last, self._sr, pcm, self.attempt)
        self.index += 1
        return encode_frame(frame)

    def add(self, pcm: bytes) -> None:
        out: list[bytes] = []
        for chunk in frame_pcm(pcm, self._sr, self._ms):
            if self._held is not None:
                out.append(self._frame(self._held, False))
            self._held = chunk
        if out:
            append_frames(self._r, self._key, out, self._ttl)
            if self.first_frame_at is None:
                self.first_frame_at = time.perf_counter()

    def close(self) -> None:
        append_frames(self._r, self._key, [self._frame(self._held or b"", True)], self._ttl)
