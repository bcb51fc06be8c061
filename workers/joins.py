"""Segment edges: how one segment's audio meets the next (trim, fades, the pause after it, its level).

Each model call pads its speech with the model's own silence (Kokoro ≈ 0.3 s
before and ≈ 0.6 s after, Piper ≈ 50 / 150 ms) and speaks at the model's own
level (Kokoro ≈ 5 dB louder than Piper). So between two segments a listener
heard about a second of Kokoro's silence whatever the punctuation, and a
Mandarin answer after an English one jumped in loudness. :class:`SegmentEdges`
decides both instead, as the audio streams:

- **Trim**: the model's leading and trailing near-silence (5 ms windows under
  :data:`SILENCE_DB`) is cut (or padded with silence) to :data:`LEAD_MS` before
  the speech and :data:`TRAIL_MS` after it, so the pause between segments is
  chorus's, and no speech comes within :data:`LEAD_MS` of a segment's start.
- **Fades**: :data:`FADE_MS` raised-cosine fade-in and fade-out at each cut, so
  no cut can click, whatever the sample value there.
- **Pause**: after the trailing margin, the silence that the segment's final
  punctuation calls for (:func:`pause_after`) plus the producer's ``<break>``
  (``pause_ms``). Inside a segment (Piper's sentences, Kokoro's 510-token pieces)
  the model's own gap is kept, shortened to at most a sentence pause.
- **Level**: one gain per segment, decided on its first piece (which is whole
  before any of it is published) and kept for the whole segment, so it cannot
  pump: the model's calibrated level (:data:`MODEL_LEVELS`, measured once)
  brings it to :data:`TARGET_LUFS`, and the first piece's own loudness corrects
  that by at most :data:`MAX_CORRECTION_DB`. Then :func:`shared.audio.peak_limit`,
  so a gain can never clip.

Streaming: a piece's speech is published as soon as the piece arrives; only its
trailing silence (plus :data:`FADE_MS` of speech) waits, for the next piece or
the segment's end, since only then is it known to be the segment's edge.

A model with no measured level (a model not yet calibrated, the test doubles) is
published exactly as it comes, plus the ``<break>`` pause, as before.
"""

from __future__ import annotations

import logging
import math
import unicodedata

import numpy as np
import numpy.typing as npt

from chorus_client.protocol import SegmentJob
from shared.audio import loudness_db, peak_limit

__all__ = [
    "CLAUSE_PAUSE_MS",
    "FADE_MS",
    "LEAD_MS",
    "LIST_PAUSE_MS",
    "MAX_CORRECTION_DB",
    "MODEL_LEVELS",
    "SENTENCE_PAUSE_MS",
    "SILENCE_DB",
    "TARGET_LUFS",
    "TRAIL_MS",
    "SegmentEdges",
    "fade_in",
    "fade_out",
    "pause_after",
    "segment_gain_db",
    "voiced_span",
]

log = logging.getLogger(__name__)

SENTENCE_PAUSE_MS = 350
"""Silence after a segment that ends a sentence (``。！？.!?…`` and their full/half-width forms). With the
margins a listener hears ≈ 420 ms between the speech, a little under Kokoro's own 455-615 ms inside a
segment, so a join never sounds slower than the model's own sentence pause."""
CLAUSE_PAUSE_MS = 180
"""Silence after a clause (``，,；;：:`` and dashes): ≈ 250 ms heard, under Kokoro's and Piper's own
230-425 ms at a comma inside a segment: a comma join is a breath, not a stop."""
LIST_PAUSE_MS = 80
"""Silence after the enumeration comma ``、`` (a list of items): ≈ 150 ms heard (Kokoro's own: 85-205 ms)."""
LEAD_MS = 30
"""Audio kept before the first voiced window: the onset of a consonant starts under the threshold."""
TRAIL_MS = 40
"""Audio kept after the last voiced window: the decay of the last syllable."""
FADE_MS = 5
"""Raised-cosine fade at each cut: inside the margins, so speech is not touched; a cut at any sample value
becomes a 5 ms slope, whose energy lies under ≈ 200 Hz, instead of a step, which sounds as a broadband click."""
SILENCE_DB = -50.0
"""A 5 ms window whose RMS is under this (dBFS, after the gain) is silence: 30 dB under speech at
:data:`TARGET_LUFS`, 35 dB and more over the models' own silence (Piper's -85 dBFS, Kokoro's under -120)."""
SILENCE_WINDOW_MS = 5
TARGET_LUFS = -20.0
"""Loudness every segment is brought to (K-weighted, gated: :func:`shared.audio.loudness_db`): Kokoro's own
level, so the default voice is not turned down. Speech peaks sit 12-20 dB over it, so the limiter acts on
the rare peak over -1.4 dBFS (at most 0.04 % of samples in the measured corpus)."""
MAX_CORRECTION_DB = 4.0
"""The most a segment's own loudness moves its gain away from its model's calibrated one: enough to level
a quiet sentence (Piper's segments spread ≈ 3 dB), not enough to lift a breath or a whisper to speech."""
MODEL_LEVELS: dict[str, float] = {"kokoro": -19.9, "piper-joe": -25.5}
"""Model id -> its typical loudness in LUFS: the median over a corpus of its segments (docs/BENCHMARKS.md,
"Segment joins"). A model missing here is published as it comes. Measure again when a model changes."""


def fade_in(audio: npt.NDArray[np.float32], samples: int) -> npt.NDArray[np.float32]:
    """``audio`` (float32 [n]) with its first ``samples`` (at most n) raised from 0 by a half cosine (a copy)."""
    out = np.array(audio, dtype=np.float32)
    k = min(samples, out.size)
    out[:k] *= _ramp(k)
    return out


def fade_out(audio: npt.NDArray[np.float32], samples: int) -> npt.NDArray[np.float32]:
    """``audio`` (float32 [n]) with its last ``samples`` (at most n) lowered to 0 by a half cosine (a copy)."""
    out = np.array(audio, dtype=np.float32)
    k = min(samples, out.size)
    if k:
        out[-k:] *= _ramp(k)[::-1]
    return out


def _ramp(k: int) -> npt.NDArray[np.float32]:
    """``k`` points of sin², strictly between 0 and 1, rising (a raised cosine)."""
    ramp: npt.NDArray[np.float32] = (np.sin(0.5 * np.pi * (np.arange(k) + 0.5) / k) ** 2).astype(np.float32)
    return ramp


def voiced_span(
    audio: npt.NDArray[np.float32], sample_rate: int, threshold_db: float = SILENCE_DB
) -> tuple[int, int] | None:
    """Sample range ``[start, end)`` from the first to the last 5 ms window of ``audio`` (float32 [n] at
    ``sample_rate`` Hz) whose RMS is at least ``threshold_db`` dBFS; ``None`` when every window is under it."""
    x = np.asarray(audio, dtype=np.float32)
    width = max(1, sample_rate * SILENCE_WINDOW_MS // 1000)
    windows = -(-x.size // width)
    if not windows:
        return None
    padded = np.zeros(windows * width, dtype=np.float64)
    padded[: x.size] = x
    power = np.mean(padded.reshape(windows, width) ** 2, axis=1)
    loud = np.flatnonzero(power >= 10 ** (threshold_db / 10))
    if not loud.size:
        return None
    return int(loud[0]) * width, min(x.size, (int(loud[-1]) + 1) * width)


_CLOSERS = "\"'”’」』）)]】》〉>»"
_SENTENCE_ENDS = ".!?。…‼⁇⁈⁉"
_CLAUSE_ENDS = ",;:—–"
_LIST_ENDS = "、"


def pause_after(text: str) -> int:
    """Milliseconds of silence after a segment whose text is ``text``, by its final punctuation.

    Closing quotes and brackets are looked through; full-width and half-width
    forms count as their ASCII marks (``，`` is ``,``, ``｡`` is ``。``). A sentence end
    gets :data:`SENTENCE_PAUSE_MS`, a clause mark :data:`CLAUSE_PAUSE_MS`, ``、``
    :data:`LIST_PAUSE_MS`; anything else (a long sentence cut in the middle, a
    word) gets none, so the sentence runs on.
    """
    tail = unicodedata.normalize("NFKC", text[-16:]).rstrip()
    tail = tail.rstrip(_CLOSERS + " \t\n")
    if not tail:
        return 0
    last = tail[-1]
    if last in _SENTENCE_ENDS:
        return SENTENCE_PAUSE_MS
    if last in _CLAUSE_ENDS:
        return CLAUSE_PAUSE_MS
    if last in _LIST_ENDS:
        return LIST_PAUSE_MS
    return 0


def segment_gain_db(measured_lufs: float, model_lufs: float) -> float:
    """Gain in dB for a segment whose first piece measures ``measured_lufs`` from a model whose calibrated
    level is ``model_lufs``: to :data:`TARGET_LUFS`, at most :data:`MAX_CORRECTION_DB` from the model's gain
    (the model's gain alone when the piece has nothing to measure: ``-inf``)."""
    calibrated = TARGET_LUFS - model_lufs
    if not math.isfinite(measured_lufs):
        return calibrated
    correction = TARGET_LUFS - measured_lufs - calibrated
    return calibrated + max(-MAX_CORRECTION_DB, min(MAX_CORRECTION_DB, correction))


class SegmentEdges:
    """Shapes one segment's audio as it streams: :meth:`push` each model piece, publish what it returns,
    then publish :meth:`finish` and :attr:`pause_ms` of silence. All audio is float32 mono at ``sample_rate``."""

    def __init__(self, sample_rate: int, *, model_lufs: float | None, text: str = "", pause_ms: int = 0) -> None:
        self.sample_rate = sample_rate
        self.shaped = model_lufs is not None
        """Whether edges and level are shaped (the model has a calibrated level)."""
        self._model_lufs = model_lufs
        self.pause_ms = pause_ms + (pause_after(text) if self.shaped else 0)
        """Silence to publish after :meth:`finish`: the punctuation's pause (shaped only) plus ``<break>``'s."""
        self.gain_db: float | None = None
        """The segment's gain, once its first piece with sound has decided it."""
        self._started = False
        self._held = np.zeros(0, dtype=np.float32)
        """Audio not published yet: the end of the last voiced window's fade, then silence."""
        self._held_voiced = 0
        """How many of the held samples (at their start) are speech: the fade-out region."""

    @classmethod
    def for_job(cls, job: SegmentJob, sample_rate: int, model_id: str | None) -> SegmentEdges:
        """The edges of ``job``'s segment from the model ``model_id`` (shaped when :data:`MODEL_LEVELS` has it)."""
        level = MODEL_LEVELS.get(model_id) if model_id is not None else None
        return cls(sample_rate, model_lufs=level, text=job.text, pause_ms=job.pause_ms)

    def _samples(self, ms: float) -> int:
        return int(self.sample_rate * ms // 1000)

    def push(self, piece: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """Take the model's next piece (float32 [n]); returns the audio that can be published now."""
        x = np.asarray(piece, dtype=np.float32)
        if not self.shaped:
            return x
        if self.gain_db is None:
            self._decide_gain(x)
        if self.gain_db:
            x = (x * np.float32(10 ** (self.gain_db / 20))).astype(np.float32)
        x = peak_limit(x, self.sample_rate)
        span = voiced_span(x, self.sample_rate)
        if span is None:  # silence: before the speech it is dropped, after it it waits with the tail
            if self._started:
                self._held = np.concatenate((self._held, x))
            return np.zeros(0, dtype=np.float32)
        start, end = span
        lead = max(0, start - self._samples(LEAD_MS))
        head = fade_in(x[lead:], self._samples(FADE_MS))
        if self._started:  # a join inside the segment: the model's gap, at most a sentence pause
            gap = len(self._held) - self._held_voiced + start - self._samples(TRAIL_MS + LEAD_MS)
            pause = np.zeros(max(0, min(gap, self._samples(SENTENCE_PAUSE_MS))), dtype=np.float32)
            head = np.concatenate((self._tail(), pause, head))
        else:  # the segment's start: the whole lead margin, even when the model left less
            head = np.concatenate((np.zeros(self._samples(LEAD_MS) - (start - lead), dtype=np.float32), head))
        self._started = True
        keep = len(head) - (len(x) - end) - min(self._samples(FADE_MS), end - lead)  # up to the last fade
        self._held, self._held_voiced = head[keep:], len(head) - keep - (len(x) - end)
        return head[:keep]

    def _decide_gain(self, x: npt.NDArray[np.float32]) -> None:
        """The segment's gain from its first piece with speech, measured on the speech alone (what is heard)."""
        assert self._model_lufs is not None
        calibrated = TARGET_LUFS - self._model_lufs
        span = voiced_span(x, self.sample_rate, SILENCE_DB - calibrated)
        if span is None:
            return
        level = loudness_db(x[span[0] : span[1]], self.sample_rate)
        if math.isfinite(level):
            self.gain_db = segment_gain_db(level, self._model_lufs)
            log.debug("segment gain %.1f dB (its first piece: %.1f LUFS)", self.gain_db, level)

    def _tail(self) -> npt.NDArray[np.float32]:
        """The held audio cut to :data:`TRAIL_MS` after the speech, faded out."""
        kept = self._held[: self._held_voiced + self._samples(TRAIL_MS)]
        return fade_out(kept, self._samples(FADE_MS))

    def finish(self) -> npt.NDArray[np.float32]:
        """The segment's end: what is still held, trimmed and faded, padded with silence to the whole trailing
        margin (then publish :attr:`pause_ms` of silence)."""
        if not self._started:
            return np.zeros(0, dtype=np.float32)
        tail = self._tail()
        short = self._held_voiced + self._samples(TRAIL_MS) - len(tail)
        self._held, self._held_voiced, self._started = np.zeros(0, dtype=np.float32), 0, False
        return np.concatenate((tail, np.zeros(short, dtype=np.float32)))
